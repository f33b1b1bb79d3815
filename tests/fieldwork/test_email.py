"""E-mail deliveries against a real SMTP server (aiosmtpd, started by the test): the
message as received (From, To, Subject encoded per RFC 2047, text and HTML parts, charset,
the participant's own link), one message per delivery; 4xx retried with a backoff, 5xx
failed with the server's words; a claimed row never sent twice; a row left "sending" by a
dead worker sent again with the same Message-ID."""

from __future__ import annotations

import datetime as dt
from email.header import decode_header
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from config.celery import app
from fieldwork import sending, services
from fieldwork.channels import email as email_channel
from fieldwork.models import Delivery
from fieldwork.tasks import send_email_deliveries
from surveys import services as survey_services
from surveys.links import participant_link
from surveys.models import Response
from tests.factories import complete_answers

from .conftest import with_contact

pytestmark = pytest.mark.django_db(transaction=False)


def queue(*participants, kind=Delivery.Kind.INVITATION):  # type: ignore[no-untyped-def]
    return services.email_deliveries_queue(participants=participants, kind=kind)


def test_a_japanese_invitation_arrives_as_written(
    smtp, sender, site, django_capture_on_commit_callbacks
):
    participant = with_contact(site, email="hanako@example.jp", language="ja")

    with django_capture_on_commit_callbacks(execute=True):
        queued = queue(participant)

    assert len(smtp.received) == 1
    envelope = smtp.received[0]
    assert envelope.mail_from == "kodomo@city.example.jp"
    assert envelope.rcpt_tos == ["hanako@example.jp"]
    headers = envelope.original_content.split(b"\r\n\r\n", 1)[0].decode("ascii")  # 7-bit
    unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ")
    subject_line = next(line for line in unfolded.splitlines() if line.startswith("Subject:"))
    assert "=?utf-8?" in subject_line.lower()  # RFC 2047 encoded words
    message = smtp.messages()[0]
    expected_subject = f"【横浜市 子ども家庭課】{site.study.name_ja} アンケートご協力のお願い"
    # Django folds the encoded subject right after "Subject:"; the fold's blank is not
    # part of the subject (mail clients drop it, as strip() does).
    assert str(message["Subject"]).strip() == expected_subject
    decoded = "".join(
        part.decode(charset or "ascii") if isinstance(part, bytes) else part
        for part, charset in decode_header(subject_line.removeprefix("Subject:").strip())
    )
    assert decoded.strip() == expected_subject
    assert message["From"].addresses[0].display_name == "横浜市 子ども家庭課"
    assert message["From"].addresses[0].addr_spec == "kodomo@city.example.jp"
    assert str(message["To"]) == "hanako@example.jp"
    assert str(message["Reply-To"]) == "toiawase@city.example.jp"
    assert message["Message-ID"] == email_channel.message_id(queued.ids[0])
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    link = participant_link(participant)
    assert link in text.get_content() and "アンケート" in text.get_content()
    assert f'href="{link}"' in html.get_content() and '<html lang="ja">' in html.get_content()
    # The link in the message opens the participant's own questionnaire.
    page = Client().get(urlsplit(link).path, headers={"Accept-Language": "ja"})
    assert page.status_code == 200
    delivery = Delivery.objects.get(pk=queued.ids[0])
    assert delivery.status == Delivery.Status.SENT
    assert delivery.attempts == 1
    assert delivery.provider_message_id == message["Message-ID"]


def test_an_english_contact_gets_the_english_message(smtp, sender, site):
    participant = with_contact(site, email="jane@example.org", language="en")
    queued = queue(participant)

    sending.email_deliveries_send(ids=queued.ids)

    message = smtp.messages()[0]
    sender_name = "Yokohama City, Children and Families"
    assert str(message["Subject"]).strip() == (
        f"{site.study.name_en}: please answer our questionnaire ({sender_name})"
    )
    assert message["From"].addresses[0].display_name == "Yokohama City, Children and Families"
    assert participant_link(participant) in message.get_body(("plain",)).get_content()
    assert '<html lang="en">' in message.get_body(("html",)).get_content()


def test_each_delivery_is_one_message_to_its_own_participant(smtp, sender, site):
    people = [with_contact(site, email=f"p{n}@example.jp") for n in range(5)]
    queued = queue(*people)

    report = sending.email_deliveries_send(ids=queued.ids)

    assert len(report.sent) == 5
    received = {str(m["To"]): m for m in smtp.messages()}
    assert len(smtp.received) == 5 and len(received) == 5
    for n, participant in enumerate(people):
        body = received[f"p{n}@example.jp"].get_body(("plain",)).get_content()
        assert participant_link(participant) in body
        others = [participant_link(p) for p in people if p != participant]
        assert not any(other in body for other in others)
    assert len({str(m["Message-ID"]) for m in smtp.messages()}) == 5


def test_a_4xx_answer_is_retried_later_and_then_sent(smtp, sender, site):
    participant = with_contact(site, email="busy@example.jp")
    smtp.answers["busy@example.jp"] = "451 4.7.1 greylisted, try again later"
    queued = queue(participant)
    start = timezone.now()

    report = sending.email_deliveries_send(ids=queued.ids, now=start)

    delivery = Delivery.objects.get(pk=queued.ids[0])
    assert report.retrying == queued.ids and smtp.received == []
    assert delivery.status == Delivery.Status.QUEUED
    assert delivery.attempts == 1
    assert "451 4.7.1 greylisted" in delivery.last_error
    assert delivery.due_at == start + dt.timedelta(minutes=1)
    # Not due yet: nothing is sent before the backoff.
    assert sending.email_deliveries_send(ids=queued.ids, now=start).sent == []

    del smtp.answers["busy@example.jp"]
    later = start + dt.timedelta(minutes=1)
    assert sending.email_deliveries_send(ids=queued.ids, now=later).sent == queued.ids
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)
    assert len(smtp.received) == 1


def test_transient_errors_give_up_after_the_last_attempt(smtp, sender, site, settings):
    settings.HYOKA_DELIVERY_MAX_ATTEMPTS = 3
    participant = with_contact(site, email="busy@example.jp")
    smtp.answers["busy@example.jp"] = "452 4.2.2 mailbox full"
    queued = queue(participant)
    when = timezone.now()

    for _attempt in range(3):
        sending.email_deliveries_send(ids=queued.ids, now=when)
        when += dt.timedelta(hours=1)

    delivery = Delivery.objects.get(pk=queued.ids[0])
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 3)
    assert delivery.last_error.startswith("gave up after 3 attempts: 452 4.2.2 mailbox full")
    assert smtp.received == []


def test_a_5xx_answer_fails_at_once_with_the_reason_and_the_batch_goes_on(smtp, sender, site):
    bad = with_contact(site, email="nobody@example.jp")
    good = with_contact(site, email="someone@example.jp")
    smtp.answers["nobody@example.jp"] = "550 5.1.1 no such user"
    queued = queue(bad, good)

    report = sending.email_deliveries_send(ids=queued.ids)

    failed = Delivery.objects.get(participant=bad)
    assert report.failed == [failed.pk]
    assert (failed.status, failed.attempts) == (Delivery.Status.FAILED, 1)
    assert failed.last_error == "550 5.1.1 no such user"
    assert Delivery.objects.get(participant=good).status == Delivery.Status.SENT
    assert [str(m["To"]) for m in smtp.messages()] == ["someone@example.jp"]


def test_a_server_that_does_not_answer_is_a_transient_error(sender, site, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    participant = with_contact(site, email="hanako@example.jp")
    queued = queue(participant)

    report = sending.email_deliveries_send(ids=queued.ids)

    delivery = Delivery.objects.get(pk=queued.ids[0])
    assert report.retrying == queued.ids
    assert delivery.status == Delivery.Status.QUEUED
    assert delivery.last_error.startswith("connection:")


def test_a_row_claimed_twice_is_sent_once(smtp, sender, site):
    participant = with_contact(site, email="hanako@example.jp")
    queued = queue(participant)
    pk = queued.ids[0]

    assert sending.claim(pk) is True
    assert sending.claim(pk) is False  # a second worker finds it taken
    report = sending.email_deliveries_send(ids=[pk])  # a redelivered task

    assert report.sent == [] and smtp.received == []
    assert Delivery.objects.get(pk=pk).status == Delivery.Status.SENDING


def test_sending_twice_sends_each_message_once(smtp, sender, site):
    people = [with_contact(site, email=f"p{n}@example.jp") for n in range(3)]
    queued = queue(*people)

    sending.email_deliveries_send(ids=queued.ids)
    sending.email_deliveries_send(ids=queued.ids)
    sending.email_deliveries_send()

    assert len(smtp.received) == 3


def test_a_row_left_sending_by_a_dead_worker_is_sent_again_with_the_same_message_id(
    smtp, sender, site, settings
):
    participant = with_contact(site, email="hanako@example.jp")
    queued = queue(participant)
    pk = queued.ids[0]
    claimed = timezone.now()
    assert sending.claim(pk, now=claimed)
    # The worker sent the message, then died before recording it.
    message = email_channel.build(sending.selectors.deliveries_for_sending([pk])[0])
    with email_channel.Transport() as transport:
        transport.send(message)

    timeout = dt.timedelta(seconds=settings.HYOKA_DELIVERY_SENDING_TIMEOUT)
    early = sending.email_deliveries_send(now=claimed + timeout - dt.timedelta(seconds=1))
    assert early.recovered == 0 and len(smtp.received) == 1  # still within its timeout
    late = sending.email_deliveries_send(now=claimed + timeout + dt.timedelta(seconds=1))

    assert late.recovered == 1 and late.sent == [pk]
    first, second = smtp.messages()
    assert first["Message-ID"] == second["Message-ID"] == email_channel.message_id(pk)
    delivery = Delivery.objects.get(pk=pk)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)


def test_a_participant_without_an_address_or_a_site_without_a_sender_gets_nothing(
    smtp, site, sender
):
    no_mail = with_contact(site, postal_name="山田", postal_address="横浜市")
    result = queue(no_mail)
    assert result.ids == [] and result.skipped == {services.Skip.NO_ADDRESS: 1}

    sender.delete()
    with pytest.raises(services.NoSender):
        queue(with_contact(site, email="a@example.jp"))
    assert Delivery.objects.count() == 0


def test_queueing_twice_queues_one_message(smtp, sender, site):
    participant = with_contact(site, email="hanako@example.jp")

    first, second = queue(participant), queue(participant)

    assert len(first.ids) == 1 and second.ids == []
    assert second.skipped == {services.Skip.PENDING: 1}


def test_a_submitted_participant_is_not_invited_and_not_sent_a_queued_message(smtp, sender, site):
    participant = with_contact(site, email="hanako@example.jp")
    queued = queue(participant)
    # Submitted without the after-commit receiver running (the process died in between):
    # the claim still refuses the row.
    survey_services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    assert Response.objects.get(participant=participant).is_submitted

    report = sending.email_deliveries_send(ids=queued.ids)

    assert report.sent == [] and smtp.received == []
    assert Delivery.objects.get(pk=queued.ids[0]).status == Delivery.Status.CANCELLED
    assert queue(participant).skipped == {services.Skip.SUBMITTED: 1}


def test_the_task_is_scheduled_and_sends_what_is_due(smtp, sender, site, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["send-due-email-deliveries"]
    assert entry["task"] == "fieldwork.send_email_deliveries"
    assert "fieldwork.send_email_deliveries" in app.tasks
    queued = queue(with_contact(site, email="hanako@example.jp"))

    result = send_email_deliveries.delay()  # beat's call: no ids, every due row

    assert result.get() == {
        "sent": 1,
        "retrying": 0,
        "failed": 0,
        "skipped": 0,
        "recovered": 0,
        "cancelled": 0,
    }
    assert Delivery.objects.get(pk=queued.ids[0]).status == Delivery.Status.SENT


def test_the_embedded_mode_writes_each_message_to_a_file(sender, site, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    participant = with_contact(site, email="hanako@example.jp")
    queued = queue(participant)

    assert sending.email_deliveries_send(ids=queued.ids).sent == queued.ids

    (written,) = tmp_path.iterdir()
    text = written.read_bytes()
    assert b"To: hanako@example.jp" in text
    assert participant_link(participant).encode() in text


def test_the_rate_limit_spaces_the_sends(monkeypatch):
    clock = {"now": 100.0, "slept": []}
    monkeypatch.setattr(sending.time, "monotonic", lambda: clock["now"])

    def sleep(seconds: float) -> None:
        clock["slept"].append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(sending.time, "sleep", sleep)
    pace = sending.Pacer(4.0)  # four messages a second

    for _message in range(5):
        pace.wait()

    assert clock["slept"] == [0.25, 0.25, 0.25, 0.25]
    unlimited = sending.Pacer(0)
    unlimited.wait()
    unlimited.wait()
    assert len(clock["slept"]) == 4


def test_a_message_that_stops_its_worker_every_time_fails_after_the_last_attempt(
    smtp, sender, site, settings, monkeypatch
):
    settings.HYOKA_DELIVERY_MAX_ATTEMPTS = 2
    queued = queue(with_contact(site, email="hanako@example.jp"))
    timeout = dt.timedelta(seconds=settings.HYOKA_DELIVERY_SENDING_TIMEOUT + 1)

    def dies(self, message):  # type: ignore[no-untyped-def]
        raise MemoryError("the worker ran out of memory")  # not an SMTP answer

    monkeypatch.setattr(email_channel.Transport, "send", dies)
    when = timezone.now()
    for _attempt in range(2):
        with pytest.raises(MemoryError):
            sending.email_deliveries_send(ids=queued.ids, now=when)
        when += timeout
    report = sending.email_deliveries_send(ids=queued.ids, now=when)

    delivery = Delivery.objects.get(pk=queued.ids[0])
    assert report.sent == [] and smtp.received == []
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 2)
    assert delivery.last_error == "gave up after 2 attempts: the worker stopped while sending"
