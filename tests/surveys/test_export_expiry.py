"""Stored export files expire: deleted after ``HYOKA_EXPORT_FILE_DAYS`` (the record stays,
"expired"), deleted at once when a participant whose data they may hold is erased (on
request or by the retention purge), and an export left "being written" by a dead worker
is failed so that its requester asks again. The clock is the sweep's ``now``."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from surveys import erasure, services
from surveys.exports import expiry, running
from surveys.exports.records import export_begin, export_finish, export_path
from surveys.exports.running import export_run
from surveys.exports.services import export_request
from surveys.models import Membership, ResponseExport, Study
from surveys.tasks import sweep_exports
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, complete_answers

Status = ResponseExport.Status
Expiry = ResponseExport.Expiry

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

JOIN_TIMEOUT = 30  # seconds; a deadlock fails the test instead of hanging it


@pytest.fixture
def world(study, tmp_path: Path, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The study with two sites, a response on each and a participant without one; a
    manager of both sites who may export."""
    settings.MEDIA_ROOT = tmp_path / "media"
    sites = [SiteFactory(study=study, code=f"site-{n}") for n in "ab"]
    people = [ParticipantFactory(site=site, reference=f"R-{site.code}") for site in sites]
    for person in people:
        services.response_submit(participant=person, answers=complete_answers(), language="ja")
    silent = ParticipantFactory(site=sites[0], reference="R-silent")
    user = User.objects.create_user("manager", password="pw-12345-long", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="surveys",
            codename__in=["view_study", "view_response", "view_participant", "view_site"],
        )
    )
    for site in sites:
        Membership.objects.create(user=user, site=site, role="manager")
    return {"study": study, "sites": sites, "people": people, "silent": silent, "user": user}


def written(world: dict[str, Any], study: Study | None = None, **filters: Any) -> ResponseExport:
    """An export asked for and written by its task: a stored CSV file."""
    export = export_request(
        user=world["user"], study=study or world["study"], format="csv", language="en",
        filters=filters,
    )  # fmt: skip
    assert export_run(export_id=export.pk) is not None
    export.refresh_from_db()
    assert export.status == Status.SUCCEEDED and export_path(export) is not None
    return export


def stored(export: ResponseExport) -> Path:
    return Path(settings.MEDIA_ROOT) / export.file.name


# --- Kept for a number of days --------------------------------------------------------


def test_a_file_is_deleted_after_its_days_and_its_record_stays(world, settings):  # type: ignore[no-untyped-def]
    settings.HYOKA_EXPORT_FILE_DAYS = 7
    export = written(world)
    path = stored(export)
    assert "R-site-a" in path.read_text(encoding="utf-8")
    finished = export.finished_at
    assert finished is not None

    assert expiry.exports_sweep(now=finished + dt.timedelta(days=6, hours=23)).expired == 0
    assert path.is_file()

    sweep = expiry.exports_sweep(now=finished + dt.timedelta(days=7, minutes=1))
    assert sweep == expiry.Sweep(expired=1, failed=0)
    assert not path.exists()
    export.refresh_from_db()
    assert (export.status, export.expired_because, export.rows) == (
        Status.EXPIRED, Expiry.KEPT_DAYS, 2,
    )  # fmt: skip
    assert export.requested_by == world["user"] and export_path(export) is None
    # The history says it was written, then that its file went.
    statuses = list(export.history.order_by("history_date").values_list("status", flat=True))
    assert statuses[-2:] == [Status.SUCCEEDED, Status.EXPIRED]
    # Running it again changes nothing.
    assert expiry.exports_sweep(now=finished + dt.timedelta(days=30)).expired == 0


def test_an_export_sent_in_the_request_has_no_file_to_delete_and_no_download(world):  # type: ignore[no-untyped-def]
    sent = export_begin(user=world["user"], study=world["study"], format="xlsx", language="en")
    export_finish(export=sent, rows=2)
    assert sent.finished_at is not None
    assert expiry.exports_sweep(now=sent.finished_at + dt.timedelta(days=30)).expired == 0
    sent.refresh_from_db()
    assert sent.status == Status.SUCCEEDED  # what it was: sent, never stored
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world["user"])
    assert client.get(f"/api/v1/exports/{sent.pk}/").json()["download_url"] is None
    page = client.get(reverse("admin:surveys_study_export", args=[world["study"].pk]))
    assert "Download" not in page.content.decode()


def test_the_admin_and_the_api_say_expired_and_offer_no_download(world):  # type: ignore[no-untyped-def]
    export = written(world)
    assert export.finished_at is not None
    expiry.exports_sweep(now=export.finished_at + dt.timedelta(days=8))
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world["user"])
    page = client.get(reverse("admin:surveys_study_export", args=[world["study"].pk]))
    assert page.status_code == 200
    assert "Expired: kept for its retention period" in page.content.decode()
    assert "Download" not in page.content.decode()
    download = reverse("admin:surveys_study_export_download", args=[world["study"].pk, export.pk])
    assert client.get(download).status_code == 404

    api = client.get(f"/api/v1/exports/{export.pk}/")
    assert api.status_code == 200
    body = api.json()
    assert (body["status"], body["expired_because"], body["download_url"]) == (
        "expired", "kept_days", None,
    )  # fmt: skip
    assert client.get(f"/api/v1/exports/{export.pk}/download/").status_code == 404


def test_the_beat_runs_the_sweep_every_quarter_of_an_hour(world, settings):  # type: ignore[no-untyped-def]
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-response-exports"]
    assert entry["task"] == sweep_exports.name
    assert entry["schedule"].minute == set(range(0, 60, 15))

    export = written(world)
    settings.HYOKA_EXPORT_FILE_DAYS = 1
    ResponseExport.objects.filter(pk=export.pk).update(
        finished_at=timezone.now() - dt.timedelta(days=1, minutes=1)
    )
    assert sweep_exports.delay().get() == {"expired": 1, "failed": 0}
    assert not stored(export).exists()


def test_stray_files_are_deleted_and_a_file_being_written_is_not(world):  # type: ignore[no-untyped-def]
    kept = written(world)
    being_written = export_request(
        user=world["user"], study=world["study"], format="sav", language="en"
    )
    folder = Path(settings.MEDIA_ROOT) / "exports"
    # Left by a worker killed mid-write, before its export was written again.
    stray = folder / f"{kept.pk}-0badc0de.csv"
    stray.write_text("R-site-a", encoding="utf-8")
    part = folder / f"{being_written.pk}-1234abcd.sav"
    part.write_bytes(b"half a file")

    expiry.exports_sweep()

    assert not stray.exists()
    assert stored(kept).is_file() and part.is_file()


# --- Erasure --------------------------------------------------------------------------


def test_erasing_a_participant_deletes_every_file_that_may_hold_them(world):  # type: ignore[no-untyped-def]
    site_a, site_b = world["sites"]
    whole = written(world)
    only_a = written(world, site=site_a.pk)
    only_b = written(world, site=site_b.pk)
    other_study = StudyFactory(code="other")
    SiteFactory(study=other_study)
    elsewhere = export_begin(user=world["user"], study=other_study, format="csv", language="en")
    paths = {e.pk: stored(e) for e in (whole, only_a, only_b)}

    erasure.participant_erase(participant=world["people"][0], by=None, reason="asked by her")

    for export, gone in [(whole, True), (only_a, True), (only_b, False)]:
        export.refresh_from_db()
        assert paths[export.pk].exists() is not gone
        assert export.status == (Status.EXPIRED if gone else Status.SUCCEEDED)
        assert export.expired_because == (Expiry.ERASURE if gone else "")
    last = whole.history.order_by("-history_date").first()
    assert last is not None and last.history_change_reason == "personal data erased"
    elsewhere.refresh_from_db()
    assert elsewhere.status == Status.RUNNING


def test_erasing_someone_without_a_response_deletes_no_file(world):  # type: ignore[no-untyped-def]
    export = written(world)
    erasure.participant_erase(participant=world["silent"], by=None, reason="asked")
    export.refresh_from_db()
    assert export.status == Status.SUCCEEDED and stored(export).is_file()


def test_the_retention_purge_deletes_the_studys_files(world):  # type: ignore[no-untyped-def]
    export = written(world)
    path = stored(export)
    study = world["study"]
    study.status = Study.Status.CLOSED
    study.save()
    purge = erasure.study_purge(study=study)
    assert purge is not None and purge.participants == 3
    export.refresh_from_db()
    assert not path.exists()
    assert (export.status, export.expired_because) == (Status.EXPIRED, Expiry.PURGE)


def test_a_file_being_written_while_someone_is_erased_is_thrown_away(world, monkeypatch):  # type: ignore[no-untyped-def]
    export = export_request(user=world["user"], study=world["study"], format="csv", language="en")
    write = running.WRITERS["csv"]
    folder = Path(settings.MEDIA_ROOT) / "exports"

    def erase_meanwhile(reader: Any, path: Path) -> int:
        rows = write(reader, path)  # the file holds her reference by now
        erasure.participant_erase(participant=world["people"][0], by=None, reason="asked")
        return rows

    monkeypatch.setitem(running.WRITERS, "csv", erase_meanwhile)
    export_run(export_id=export.pk)

    export.refresh_from_db()
    assert export.status == Status.FAILED
    assert "erased while the file was being written" in export.error
    assert export_path(export) is None and list(folder.glob(f"{export.pk}-*")) == []


# --- Left "being written" -------------------------------------------------------------


def test_an_export_whose_worker_died_is_failed_and_its_part_deleted(world, settings):  # type: ignore[no-untyped-def]
    export = export_request(user=world["user"], study=world["study"], format="sav", language="en")
    # Claimed by a worker that wrote part of its file and died.
    assert running._claim(export.pk)
    export.refresh_from_db()
    started = export.started_at
    assert started is not None
    part = Path(settings.MEDIA_ROOT) / "exports" / f"{export.pk}-0123abcd.sav"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half a file")
    stuck_after = dt.timedelta(seconds=settings.HYOKA_EXPORT_STUCK_AFTER)

    assert expiry.exports_sweep(now=started + stuck_after - dt.timedelta(seconds=1)).failed == 0
    export.refresh_from_db()
    assert export.status == Status.RUNNING and part.exists()

    sweep = expiry.exports_sweep(now=started + stuck_after + dt.timedelta(seconds=1))
    assert sweep == expiry.Sweep(expired=0, failed=1)
    export.refresh_from_db()
    assert export.status == Status.FAILED
    assert export.error.startswith("The export was not finished")
    assert not part.exists()
    # A late redelivery of its task does nothing; the requester asks again and gets it.
    assert export_run(export_id=export.pk) is None
    again = written(world)
    assert again.status == Status.SUCCEEDED


def test_an_export_that_is_still_within_its_time_is_left_alone(world):  # type: ignore[no-untyped-def]
    export = export_begin(user=world["user"], study=world["study"], format="csv", language="en")
    assert export.started_at is not None
    assert expiry.exports_sweep(now=export.started_at + dt.timedelta(minutes=30)).failed == 0
    export.refresh_from_db()
    assert export.status == Status.RUNNING


# --- An erasure and an export at the same moment (PostgreSQL) --------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_export_finishing_during_an_erasure_waits_for_it_and_throws_its_file_away(
    world, monkeypatch
):  # type: ignore[no-untyped-def]
    """The worker has read her row and wants to finish while her erasure is not yet
    committed (so it could not see the file): it waits on its row's lock, then sees the
    erasure and deletes the file."""
    export = export_begin(
        user=world["user"], study=world["study"], format="csv", language="en", queued=True
    )
    written_ = threading.Event()
    erased_not_committed = threading.Event()
    write = running.WRITERS["csv"]

    def write_then_wait(reader: Any, path: Path) -> int:
        rows = write(reader, path)  # her reference is in the file
        written_.set()
        assert erased_not_committed.wait(JOIN_TIMEOUT)
        return rows

    monkeypatch.setitem(running.WRITERS, "csv", write_then_wait)

    def worker() -> None:
        try:
            export_run(export_id=export.pk)
        finally:
            connections.close_all()

    def erase() -> None:
        try:
            assert written_.wait(JOIN_TIMEOUT)
            with transaction.atomic():
                erasure.participant_erase(participant=world["people"][0], by=None, reason="asked")
                erased_not_committed.set()
                # Commit only once the worker waits for a lock (or, were there no lock to
                # wait for, has finished).
                for _ in range(JOIN_TIMEOUT * 10):
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            break
                    if not ResponseExport.objects.filter(pk=export.pk, status="running"):
                        break
                    time.sleep(0.1)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker), threading.Thread(target=erase)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "deadlock?"

    export.refresh_from_db()
    assert export.status == Status.FAILED, export.status
    assert "erased while the file was being written" in export.error
    folder = Path(settings.MEDIA_ROOT) / "exports"
    assert list(folder.glob(f"{export.pk}-*")) == []
