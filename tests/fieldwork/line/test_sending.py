"""LINE deliveries pushed to the stand-in (fieldwork/line/sending.py): the participant's
own link arrives, only linked participants get anything, LINE's answers decide between a
retry and a failure, and a retry carries the same retry key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from fieldwork.line import linking, texts
from fieldwork.line.sending import LINE_OFF, line_deliveries_send
from fieldwork.line.services import NOT_LINKED, line_deliveries_queue
from fieldwork.models import Delivery
from surveys.links import participant_link
from tests.fieldwork.conftest import with_contact

pytestmark = pytest.mark.django_db

ALICE = "U" + "a" * 32


def _linked(site, language: str = "ja"):  # type: ignore[no-untyped-def]
    participant = with_contact(site, email="parent@example.jp", language=language)
    linking.line_user_link(participant=participant, line_user_id=ALICE)
    return participant


def _queue(participant, kind: str = Delivery.Kind.INVITATION) -> Delivery:  # type: ignore[no-untyped-def]
    return Delivery.objects.create(
        participant=participant, channel=Delivery.Channel.LINE, kind=kind, due_at=timezone.now()
    )


def test_an_invitation_arrives_on_line_with_the_participants_own_link(line_api, site):
    participant = _linked(site)
    delivery = _queue(participant)

    report = line_deliveries_send()

    assert report.sent == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.provider_message_id
    [push] = line_api.pushed
    assert push["to"] == ALICE
    link = participant_link(participant)
    text, button = push["messages"]
    assert text["text"].endswith("\n\n" + link)
    assert site.name_ja in text["text"]
    assert button["template"]["actions"][0]["uri"] == link
    assert button["template"]["actions"][0]["label"] == texts.one(texts.BUTTON_LABEL, "ja")


def test_a_reminder_in_english_for_an_english_speaking_participant(line_api, site):
    participant = _linked(site, language="en")
    _queue(participant, Delivery.Kind.REMINDER)

    line_deliveries_send()

    [push] = line_api.pushed
    assert push["messages"][0]["text"].startswith("A reminder from")
    assert push["messages"][1]["template"]["actions"][0]["label"] == "Answer"


def test_a_participant_without_a_linked_account_gets_nothing(line_api, site):
    participant = with_contact(site, email="a@example.jp")
    delivery = _queue(participant)

    line_deliveries_send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "not linked a LINE account" in delivery.last_error
    assert line_api.received == []


def test_after_unfollow_nothing_more_is_pushed(line_api, site):
    participant = _linked(site)
    linking.line_user_unlink(line_user_id=ALICE)
    delivery = _queue(participant)

    line_deliveries_send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert line_api.received == []


def test_a_429_waits_and_the_retry_carries_the_same_retry_key(line_api, site):
    delivery = _queue(_linked(site))
    line_api.fail_next(429)

    line_deliveries_send()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED and delivery.attempts == 1
    assert "429" in delivery.last_error
    assert delivery.due_at > timezone.now()

    line_deliveries_send(now=delivery.due_at + dt.timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    keys = [r.headers["x-line-retry-key"] for r in line_api.received]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(line_api.pushed) == 1


def test_a_push_sent_again_after_a_worker_died_is_not_delivered_twice(line_api, site):
    delivery = _queue(_linked(site))
    line_deliveries_send()
    # The worker died after LINE accepted the push, before the row was marked sent.
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.QUEUED)

    line_deliveries_send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert [r.status for r in line_api.received] == [200, 409]
    assert len(line_api.pushed) == 1


def test_a_wrong_token_fails_the_delivery_with_the_reason(line_api, site, settings):
    settings.LINE_CHANNEL_ACCESS_TOKEN = "wrong"
    delivery = _queue(_linked(site))

    line_deliveries_send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "401" in delivery.last_error and "LINE_CHANNEL_ACCESS_TOKEN" in delivery.last_error


def test_a_blocked_account_fails_the_delivery_with_lines_words(line_api, site):
    delivery = _queue(_linked(site))
    line_api.fail_next(403, message="The user has blocked the official account")

    line_deliveries_send()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "blocked the official account" in delivery.last_error


def test_with_line_off_due_line_deliveries_fail_with_that_reason(settings, site):
    settings.LINE_CHANNEL_SECRET = settings.LINE_CHANNEL_ACCESS_TOKEN = ""
    settings.LINE_ENABLED = False
    delivery = _queue(_linked(site))

    line_deliveries_send()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (Delivery.Status.FAILED, LINE_OFF)


def test_queueing_reaches_only_linked_participants_and_sends_after_commit(
    line_api, site, django_capture_on_commit_callbacks
):
    linked = _linked(site)
    unlinked = with_contact(site, email="other@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        queued = line_deliveries_queue(participants=[linked, unlinked])

    assert queued.skipped == {NOT_LINKED: 1}
    [delivery] = Delivery.objects.filter(pk__in=queued.ids)
    assert delivery.participant == linked
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert [p["to"] for p in line_api.pushed] == [ALICE]

    again = line_deliveries_queue(participants=[linked])  # sent: a second one may be queued
    assert again.skipped == {} and len(again.ids) == 1
