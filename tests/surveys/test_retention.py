"""The retention period per study: once a study is closed and its period ended
``retention_months`` ago, a daily task erases its participants' personal data through the
erasure service, and records and logs what it purged. The clock is the service's ``now``."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from surveys import erasure, services
from surveys.models import ErasureRecord, Participant, RetentionPurge, Study, add_months
from surveys.tasks import purge_expired_personal_data
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, complete_answers

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

TOKYO = dt.timezone(dt.timedelta(hours=9))


def at(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A moment in Tokyo (the project's time zone)."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)


@pytest.fixture
def closed(study) -> Study:  # type: ignore[no-untyped-def]
    """A closed study (period ending 2021-12-31, kept 12 months) with three participants,
    one of whom answered."""
    site = SiteFactory(study=study)
    people = [ParticipantFactory(site=site, reference=f"R-{n}") for n in range(3)]
    services.response_submit(participant=people[0], answers=complete_answers(), language="ja")
    study.status = Study.Status.CLOSED
    study.save()
    return study


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2021, 12, 31), 12, dt.date(2022, 12, 31)),
        (dt.date(2021, 8, 31), 6, dt.date(2022, 2, 28)),  # February is shorter
        (dt.date(2023, 8, 31), 6, dt.date(2024, 2, 29)),  # a leap year
        (dt.date(2021, 1, 15), 1, dt.date(2021, 2, 15)),
        (dt.date(2021, 11, 30), 120, dt.date(2031, 11, 30)),
    ],
)
def test_the_retention_period_counts_calendar_months(day, months, expected):
    assert add_months(day, months) == expected


def test_nothing_is_purged_the_day_before_and_everything_on_the_day(closed, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    assert closed.personal_data_expires_on == dt.date(2022, 12, 31)

    # 23:59 on 30 December in Tokyo is already the 31st nowhere that matters here.
    assert erasure.studies_purge_expired(now=at(dt.date(2022, 12, 30), 23, 59)) == []
    assert not ErasureRecord.objects.exists()

    # 00:00 on 31 December in Tokyo is still the 30th in UTC: the day is Tokyo's.
    (purge,) = erasure.studies_purge_expired(now=at(dt.date(2022, 12, 31)))

    assert (purge.study, purge.participants, purge.expired_on) == (closed, 3, dt.date(2022, 12, 31))
    records = ErasureRecord.objects.filter(participant__site__study=closed)
    assert records.count() == 3
    assert {(r.erased_by, r.purge) for r in records} == {(None, purge)}
    assert records.first().reason == erasure.purge_reason(closed)  # type: ignore[union-attr]
    assert "retention period ended: 12 months after 2021-12-31" in erasure.purge_reason(closed)
    assert not Participant.objects.filter(reference__startswith="R-").exists()


def test_the_purge_is_idempotent_and_counts_only_whom_it_erased(closed):
    first = Participant.objects.filter(site__study=closed).order_by("pk").first()
    erasure.participant_erase(participant=first, by=None, reason="asked before")  # type: ignore[arg-type]
    later = timezone.now()

    (purge,) = erasure.studies_purge_expired(now=later)
    assert purge.participants == 2
    assert erasure.studies_purge_expired(now=later) == []
    assert erasure.studies_purge_expired(now=later + dt.timedelta(days=400)) == []
    assert RetentionPurge.objects.count() == 1
    assert ErasureRecord.objects.count() == 3


@pytest.mark.parametrize("status", [Study.Status.OPEN, Study.Status.SETUP])
def test_a_study_not_closed_is_never_purged(closed, status):
    closed.status = status
    closed.save()
    assert erasure.studies_purge_expired(now=timezone.now() + dt.timedelta(days=3650)) == []
    assert not ErasureRecord.objects.exists()


def test_a_longer_retention_period_waits_longer(closed):
    closed.retention_months = 36
    closed.save()
    assert erasure.studies_purge_expired(now=at(dt.date(2024, 12, 30), 12)) == []
    assert len(erasure.studies_purge_expired(now=at(dt.date(2024, 12, 31), 12))) == 1


def test_only_the_expired_study_is_purged(closed):
    other = StudyFactory(status=Study.Status.CLOSED, period_end=dt.date(2023, 3, 31))
    kept = ParticipantFactory(site=SiteFactory(study=other), reference="KEEP")
    purges = erasure.studies_purge_expired(now=at(dt.date(2023, 6, 1), 12))
    assert [p.study for p in purges] == [closed]
    assert Participant.objects.get(pk=kept.pk).reference == "KEEP"


def test_the_purge_is_logged(closed, caplog):
    with caplog.at_level(logging.INFO, logger="surveys.erasure"):
        (purge,) = erasure.studies_purge_expired(now=timezone.now())
    messages = [r.getMessage() for r in caplog.records if r.name == "surveys.erasure"]
    assert (
        f"retention purge of study {closed.code}: personal data of 3 participants erased"
        in (messages[-1])
    )
    assert f"purge {purge.pk}" in messages[-1]


def test_the_daily_task_is_scheduled_and_calls_the_service(closed):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-personal-data-daily"]
    assert entry["task"] == purge_expired_personal_data.name
    assert entry["schedule"].hour == {3}  # daily, at night

    assert purge_expired_personal_data.delay().get() == 1
    assert purge_expired_personal_data.delay().get() == 0  # run again: nothing left
    assert RetentionPurge.objects.get().participants == 3


def test_the_purges_are_shown_in_the_admin(closed):
    (purge,) = erasure.studies_purge_expired(now=timezone.now())
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-retention-1234"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    listing = client.get(reverse("admin:surveys_retentionpurge_changelist")).content.decode()
    assert closed.name in listing
    page = client.get(reverse("admin:surveys_retentionpurge_change", args=[purge.pk]))
    assert page.status_code == 200
    study = client.get(reverse("admin:surveys_study_change", args=[closed.pk])).content.decode()
    assert "Keep personal data (months)" in study
    with translation.override("en"):
        due = date_format(dt.date(2022, 12, 31), "SHORT_DATE_FORMAT")
    assert due in study  # the day it was due


@pytest.mark.parametrize("months", ["0", "121", "abc", "99999999999"])
def test_a_retention_period_out_of_range_is_refused_in_the_admin(closed, months):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-retention-1234"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    url = reverse("admin:surveys_study_change", args=[closed.pk])
    data = {
        "code": closed.code,
        "name_ja": closed.name_ja,
        "status": closed.status,
        "default_language": "ja",
        "period_start": "2021-04-01",
        "period_end": "2021-12-31",
        "retention_months": months,
        "sites-TOTAL_FORMS": "0",
        "sites-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["retention_months"]
    closed.refresh_from_db()
    assert closed.retention_months == 12
