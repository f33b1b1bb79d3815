"""Printing letters: ``manage.py letters`` writes one PDF whose every QR code decodes to its
own participant's link; ``--queued`` prints the queued letter deliveries once and marks
exactly them sent; the admin's actions print only the manager's own sites' letters, up to
a maximum."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fieldwork.management.commands import letters as command
from fieldwork.models import Delivery, Sender
from surveys import services as survey_services
from surveys.links import participant_link
from surveys.models import Membership
from tests.factories import SiteFactory, complete_answers

from ..conftest import with_contact
from .test_render import decoded

TOKYO = ZoneInfo("Asia/Tokyo")
CLOSES_AT = dt.datetime.combine(
    timezone.localdate() + dt.timedelta(days=30), dt.time(0, 0), tzinfo=TOKYO
)


@pytest.fixture
def letter_site(site, sender):  # type: ignore[no-untyped-def]
    site.survey_closes_at = CLOSES_AT
    site.save()
    return site


def addressed(site, n: int = 1, **values):  # type: ignore[no-untyped-def]
    values.setdefault("postal_name", f"山田 花子{n}")
    values.setdefault("postal_address", f"〒231-000{n % 10}\n横浜市中区新港{n}-1")
    return with_contact(site, **values)


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("letters", *args, stdout=out, stderr=err)
    return out.getvalue()


def queue_letter(participant, kind: str = Delivery.Kind.INVITATION) -> Delivery:  # type: ignore[no-untyped-def]
    return Delivery.objects.create(
        participant=participant,
        channel=Delivery.Channel.LETTER,
        kind=kind,
        due_at=timezone.now() - dt.timedelta(minutes=1),
    )


# --- the command -------------------------------------------------------------------------


def test_the_command_prints_one_pdf_of_each_non_respondents_own_link(letter_site, tmp_path):
    people = [addressed(letter_site, n) for n in range(1, 4)]
    answered = addressed(letter_site, 4)
    survey_services.response_submit(participant=answered, answers=complete_answers(), language="ja")
    with_contact(letter_site, email="no-post@example.jp")
    out = tmp_path / "letters.pdf"

    # Batches of two: the three letters come in two PDFs, joined into one file.
    printed = run("--study", letter_site.study.code, "--out", str(out), "--batch-size", "2")

    assert decoded(out) == [[participant_link(p)] for p in people]
    assert printed.splitlines() == [
        str(out),
        "letters: 3",
        "skipped (no postal address): 1",
    ]
    assert Delivery.objects.count() == 0  # printing on demand queues nothing
    assert list(tmp_path.glob(".*.part")) == []


def test_the_command_prints_the_chosen_sites_in_the_chosen_language(
    letter_site, tmp_path, settings
):
    mine = addressed(letter_site)
    other = SiteFactory(study=letter_site.study, survey_closes_at=CLOSES_AT)
    Sender.objects.create(
        site=other,
        display_name_ja="別の区",
        from_address="b@city.example.jp",
        postal_block_ja="区役所",
    )
    addressed(other)
    out = tmp_path / "letters.pdf"

    printed = run(
        "--study", letter_site.study.code, "--site", letter_site.code, "--language", "en",
        "--out", str(out),
    )  # fmt: skip

    assert "letters: 1" in printed
    assert decoded(out) == [[participant_link(mine)]]
    from pypdf import PdfReader

    text = " ".join(PdfReader(out).pages[0].extract_text().split())
    last_day = CLOSES_AT.date() - dt.timedelta(days=1)  # closes at midnight: the day before
    assert f"Please answer by {last_day.strftime('%A')} {last_day.day} " in text
    assert f"{last_day.strftime('%B')} {last_day.year}" in text


def test_the_command_refuses_unknown_studies_sites_and_dates(letter_site, tmp_path):
    out = str(tmp_path / "x.pdf")
    with pytest.raises(CommandError, match="no study"):
        run("--study", "nope", "--out", out)
    with pytest.raises(CommandError, match="no site nope"):
        run("--study", letter_site.study.code, "--site", "nope", "--out", out)
    with pytest.raises(CommandError, match="--deadline"):
        run("--study", letter_site.study.code, "--deadline", "15/1/2027", "--out", out)
    assert not Path(out).exists()


def test_queued_prints_exactly_the_queued_letters_marks_them_sent_and_once(letter_site, tmp_path):
    first, second = addressed(letter_site, 1), addressed(letter_site, 2)
    not_queued = addressed(letter_site, 3)
    invitation, reminder = queue_letter(first), queue_letter(first, Delivery.Kind.REMINDER)
    other = queue_letter(second)
    no_address = queue_letter(with_contact(letter_site, email="a@example.jp"))
    answered = queue_letter(addressed(letter_site, 4))
    survey_services.response_submit(
        participant=answered.participant, answers=complete_answers(), language="ja"
    )
    email = Delivery.objects.create(
        participant=not_queued,
        channel=Delivery.Channel.EMAIL,
        kind=Delivery.Kind.INVITATION,
        due_at=timezone.now() + dt.timedelta(days=1),  # not due: left to the e-mail sender
    )
    out = tmp_path / "queued.pdf"

    printed = run("--study", letter_site.study.code, "--queued", "--out", str(out))

    # One letter per participant, even with an invitation and a reminder both queued.
    assert decoded(out) == [[participant_link(first)], [participant_link(second)]]
    status = dict(Delivery.objects.values_list("pk", "status"))
    assert status == {
        invitation.pk: Delivery.Status.SENT,
        reminder.pk: Delivery.Status.SENT,
        other.pk: Delivery.Status.SENT,
        no_address.pk: Delivery.Status.FAILED,
        answered.pk: Delivery.Status.CANCELLED,
        email.pk: Delivery.Status.QUEUED,
    }
    assert "no postal address" in Delivery.objects.get(pk=no_address.pk).last_error
    assert "letters: 2" in printed and "deliveries marked sent: 3, failed: 1" in printed

    before = out.read_bytes()
    again = run("--study", letter_site.study.code, "--queued", "--out", str(out))

    assert "No letters to print" in again and "letters: 0" in again
    assert out.read_bytes() == before


def test_queued_letters_stay_queued_when_the_pdf_cannot_be_written(
    letter_site, tmp_path, monkeypatch
):
    delivery = queue_letter(addressed(letter_site))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("No space left on device")

    monkeypatch.setattr(command, "letters_pdf_file", broken)
    with pytest.raises(OSError, match="No space"):
        run("--study", letter_site.study.code, "--queued", "--out", str(tmp_path / "q.pdf"))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.claimed_at) == (
        Delivery.Status.QUEUED,
        0,
        None,
    )


def test_queued_skips_rows_another_run_holds_and_recovers_a_killed_runs_rows(
    letter_site, tmp_path, settings
):
    held = queue_letter(addressed(letter_site, 1))
    stuck = queue_letter(addressed(letter_site, 2))
    now = timezone.now()
    # Another run is printing "held"; a run killed long ago left "stuck" sending.
    Delivery.objects.filter(pk=held.pk).update(status=Delivery.Status.SENDING, claimed_at=now)
    Delivery.objects.filter(pk=stuck.pk).update(
        status=Delivery.Status.SENDING,
        claimed_at=now - dt.timedelta(seconds=settings.HYOKA_DELIVERY_SENDING_TIMEOUT + 60),
    )
    out = tmp_path / "q.pdf"

    printed = run("--study", letter_site.study.code, "--queued", "--out", str(out))

    assert "letters: 1" in printed
    assert decoded(out) == [[participant_link(stuck.participant)]]
    assert Delivery.objects.get(pk=held.pk).status == Delivery.Status.SENDING
    assert Delivery.objects.get(pk=stuck.pk).status == Delivery.Status.SENT


# --- the admin's actions -----------------------------------------------------------------

PASSWORD = "pw-letters-1234"


def manager_of(site, *permissions: str) -> Client:  # type: ignore[no-untyped-def]
    user = User.objects.create_user(f"kodomo-{site.code}", password=PASSWORD, is_staff=True)
    for codename in (
        "surveys.view_participant",
        "surveys.change_participant",
        "fieldwork.view_delivery",
        *permissions,
    ):
        app, name = codename.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=name)
        )
    Membership.objects.create(user=user, site=site, role=Membership.Role.MANAGER)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def itabashi(letter_site):  # type: ignore[no-untyped-def]
    site = SiteFactory(study=letter_site.study, survey_closes_at=CLOSES_AT, code="itabashi")
    Sender.objects.create(
        site=site,
        display_name_ja="板橋区",
        from_address="i@city.example.jp",
        postal_block_ja="板橋区役所",
    )
    return site


def print_letters(client: Client, *participants, follow: bool = False):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("admin:surveys_participant_changelist"),
        {"action": "print_letters", helpers.ACTION_CHECKBOX_NAME: [p.pk for p in participants]},
        follow=follow,
    )


def pdf_of(response, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="letters-')
    path = tmp_path / "download.pdf"
    path.write_bytes(response.content)
    return path


def test_a_manager_prints_their_own_sites_letters_only(letter_site, itabashi, tmp_path):
    setagaya = manager_of(letter_site, "fieldwork.view_contact")
    mine = addressed(letter_site)
    theirs = addressed(itabashi)

    both = print_letters(setagaya, mine, theirs)
    only_theirs = print_letters(setagaya, theirs, follow=True)

    assert decoded(pdf_of(both, tmp_path)) == [[participant_link(mine)]]
    assert only_theirs.status_code == 200
    assert only_theirs["Content-Type"].startswith("text/html")
    assert "No letters to print." in only_theirs.content.decode()
    assert participant_link(theirs) not in only_theirs.content.decode()


def test_a_viewer_of_another_site_cannot_print_its_letters(letter_site, itabashi):
    setagaya = manager_of(letter_site, "fieldwork.view_contact")
    # Seeing Itabashi's participants (a viewer there) is not printing their letters.
    Membership.objects.create(
        user=User.objects.get(username=f"kodomo-{letter_site.code}"),
        site=itabashi,
        role=Membership.Role.VIEWER,
    )
    mine, theirs = addressed(letter_site), addressed(itabashi)

    assert print_letters(setagaya, mine, theirs).status_code == 403
    assert print_letters(setagaya, theirs).status_code == 403


def test_printing_needs_the_right_to_read_contacts(letter_site, tmp_path):
    without = manager_of(letter_site)  # no fieldwork.view_contact
    participant = addressed(letter_site)

    page = without.get(reverse("admin:surveys_participant_changelist")).content.decode()
    response = print_letters(without, participant)

    assert "print_letters" not in page
    assert response.get("Content-Type", "").startswith("application/pdf") is False


def test_above_the_maximum_the_manager_is_sent_to_the_command(letter_site, settings, tmp_path):
    settings.HYOKA_LETTERS_ADMIN_MAX = 2
    client = manager_of(letter_site, "fieldwork.view_contact")
    people = [addressed(letter_site, n) for n in range(1, 4)]

    refused = print_letters(client, *people, follow=True)
    allowed = print_letters(client, *people[:2])

    assert refused["Content-Type"].startswith("text/html")
    assert "manage.py letters" in refused.content.decode()
    assert len(decoded(pdf_of(allowed, tmp_path))) == 2


def test_the_delivery_list_prints_the_selected_queued_letters_and_marks_them_sent(
    letter_site, itabashi, tmp_path
):
    client = manager_of(letter_site, "fieldwork.view_contact")
    mine, also_mine = (
        queue_letter(addressed(letter_site, 1)),
        queue_letter(addressed(letter_site, 2)),
    )
    theirs = queue_letter(addressed(itabashi, 3))

    response = client.post(
        reverse("admin:fieldwork_delivery_changelist"),
        {
            "action": "print_queued_letters",
            helpers.ACTION_CHECKBOX_NAME: [mine.pk, theirs.pk],
        },
    )

    assert response["Content-Type"] == "application/pdf"
    path = tmp_path / "queued.pdf"
    path.write_bytes(response.content)
    assert decoded(path) == [[participant_link(mine.participant)]]
    status = dict(Delivery.objects.values_list("pk", "status"))
    assert status == {
        mine.pk: Delivery.Status.SENT,
        also_mine.pk: Delivery.Status.QUEUED,
        theirs.pk: Delivery.Status.QUEUED,
    }

    again = client.post(
        reverse("admin:fieldwork_delivery_changelist"),
        {"action": "print_queued_letters", helpers.ACTION_CHECKBOX_NAME: [mine.pk]},
        follow=True,
    )
    assert "None of the selected deliveries is a queued letter." in again.content.decode()
