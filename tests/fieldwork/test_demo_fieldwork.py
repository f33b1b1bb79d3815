"""``manage.py demo_fieldwork`` on the reference study: every participant who has not
answered and has an e-mail address gets one invitation from the demo's campaign (through a
real SMTP server; LINE is off, so those with a LINE id get theirs by e-mail), the
letters PDF has a page for each participant with only a postal address whose QR code is
that participant's own link, and a second run adds nothing and prints the same."""

from __future__ import annotations

import io
from pathlib import Path

from django.core.management import call_command

from fieldwork.models import Campaign, Contact, Delivery, Sender
from surveys.links import participant_link
from surveys.models import Participant, Response

from .letters.test_render import decoded


def run(out: Path) -> str:
    stdout = io.StringIO()
    call_command("demo_fieldwork", "--letters-out", str(out), stdout=stdout)
    return stdout.getvalue()


def waiting(study) -> list[Participant]:  # type: ignore[no-untyped-def]
    """Computed here, not by the command: active, not submitted, by site and reference."""
    submitted = set(
        Response.objects.filter(
            participant__site__study=study, status=Response.Status.SUBMITTED
        ).values_list("participant_id", flat=True)
    )
    return [
        p
        for p in Participant.objects.filter(site__study=study).order_by("site__code", "reference")
        if p.pk not in submitted and p.status == Participant.Status.ACTIVE
    ]


def test_the_demo_invites_by_e_mail_prints_letters_and_adds_nothing_the_second_time(
    reference_study, smtp, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.LINE_ENABLED = False  # as in the embedded mode without a LINE channel
    out = tmp_path / "letters.pdf"
    with django_capture_on_commit_callbacks(execute=True):
        first = run(out)

    silent = waiting(reference_study)
    assert len(silent) == 352 - 229
    contacts = {c.participant_id: c for c in Contact.objects.all()}
    assert set(contacts) == {p.pk for p in silent}  # the respondents get no contact details
    by_email = {contacts[p.pk].email: p for p in silent if contacts[p.pk].email}
    postal_only = [p for p in silent if not contacts[p.pk].email]
    assert by_email and postal_only
    assert all(address.endswith("@example.com") for address in by_email)
    assert all(contacts[p.pk].postal_address for p in postal_only)

    # One e-mail to each address, carrying its participant's link.
    messages = smtp.messages()
    assert sorted(m["To"] for m in messages) == sorted(by_email)
    for message in messages:
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert participant_link(by_email[message["To"]]) in body
    assert Sender.objects.filter(site__study=reference_study).count() == 3

    # One letter page per postal-only participant, in site and reference order, each QR
    # code decoding to that participant's link.
    assert decoded(out) == [[participant_link(p)] for p in postal_only]
    assert str(out.resolve()) in first
    assert f"E-mails sent: {len(by_email)} " in first

    # Through one campaign: LINE first (off here: it failed and e-mail took over), then
    # e-mail; the postal-only participants are on the letter list, still to be printed.
    (campaign,) = Campaign.objects.filter(study=reference_study)
    with_line = {p.pk for p in silent if contacts[p.pk].line_user_id}
    assert with_line
    rows = Delivery.objects.filter(campaign=campaign, kind=Delivery.Kind.INVITATION)
    assert (
        set(rows.filter(channel="line", status="failed").values_list("participant_id", flat=True))
        == with_line
    )
    assert sorted(
        rows.filter(channel="email", status="sent").values_list("participant_id", flat=True)
    ) == sorted(p.pk for p in by_email.values())
    assert sorted(
        rows.filter(channel="letter", status="queued").values_list("participant_id", flat=True)
    ) == sorted(p.pk for p in postal_only)
    assert rows.count() == len(by_email) + len(with_line) + len(postal_only)

    deliveries = sorted(Delivery.objects.values_list("pk", "status"))
    with django_capture_on_commit_callbacks(execute=True):
        second = run(out)
    assert second == first
    assert sorted(Delivery.objects.values_list("pk", "status")) == deliveries
    assert len(smtp.messages()) == len(by_email)
    assert Contact.objects.count() == len(silent)
    assert Sender.objects.count() == 3
    assert Campaign.objects.count() == 1
