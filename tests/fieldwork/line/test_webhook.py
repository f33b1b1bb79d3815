"""LINE's webhook (fieldwork/line/webhook.py) as LINE calls it: signed bodies, the link-code
flow, unfollow, and every way a request can be bad (unsigned, forged, replayed, stale,
malformed, guessed codes). Replies go to the stand-in of the Messaging API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.utils import translation

from fieldwork import crypto
from fieldwork.line import codes, linking, texts
from fieldwork.models import Contact
from surveys.models import Participant
from surveys.tokens import new_token
from tests.factories import ParticipantFactory
from tests.fieldwork.line.conftest import SECRET

pytestmark = pytest.mark.django_db

URL = "/line/webhook/"
ALICE = "U" + "a" * 32
BOB = "U" + "b" * 32


def _event(kind: str, user: str = ALICE, *, age: float = 0, **extra: object) -> dict:
    event = {
        "type": kind,
        "mode": "active",
        "timestamp": int((time.time() - age) * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
        **extra,
    }
    if kind in ("follow", "message", "accountLink"):
        event.setdefault("replyToken", uuid.uuid4().hex)
    if kind == "follow":
        event.setdefault("follow", {"isUnblocked": False})
    return event


def _text(text: str, user: str = ALICE, **extra: object) -> dict:
    message = {"type": "text", "id": "1", "text": text, "quoteToken": "q"}
    return _event("message", user, message=message, **extra)


def _body(*events: dict) -> bytes:
    return json.dumps({"destination": "U" + "f" * 32, "events": list(events)}).encode()


def _signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _post(body: bytes, signature: str | None = "sign"):  # type: ignore[no-untyped-def]
    headers = {}
    if signature == "sign":
        signature = _signature(body)
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return Client().post(URL, data=body, content_type="application/json", headers=headers)


def _send(*events: dict):  # type: ignore[no-untyped-def]
    response = _post(_body(*events))
    assert response.status_code == 200, response.content
    return response


def _linked_user(participant) -> str:  # type: ignore[no-untyped-def]
    contact = Contact.objects.filter(participant=participant).first()
    return contact.line_user_id if contact else ""


def _replies(line_api) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["text"] for r in line_api.replied for m in r["messages"]]


def test_following_and_sending_the_code_links_the_account(line_api, participant):
    code = codes.display(codes.code_for(participant))
    _send(_event("follow"))
    _send(_text(code.lower()))  # as typed on a phone

    assert _linked_user(participant) == ALICE
    contact = Contact.objects.get(participant=participant)
    assert contact.line_user_index == crypto.line_user_index(ALICE)
    welcome, linked = _replies(line_api)
    assert welcome == texts.both(texts.WELCOME)
    assert "10" in welcome and "ABCDE-FGHJK" in welcome
    assert linked == texts.one(texts.LINKED, "ja")
    # The link is stored encrypted: the plain id is nowhere in the row.
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Contact._meta.db_table)
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [contact.pk])  # noqa: S608
        row = cursor.fetchone()
    assert ALICE not in " ".join(str(value) for value in row)


def test_sending_the_same_code_again_links_nothing_new(line_api, participant):
    code = codes.code_for(participant)
    _send(_text(code))
    _send(_text(code))

    assert _linked_user(participant) == ALICE
    assert _replies(line_api)[1] == texts.one(texts.ALREADY_LINKED, "ja")


def test_a_code_already_used_by_another_account_is_refused(line_api, participant):
    code = codes.code_for(participant)
    _send(_text(code, ALICE))
    _send(_text(code, BOB))

    assert _linked_user(participant) == ALICE
    assert _replies(line_api)[1] == texts.both(texts.USED)


def test_unfollow_unlinks_every_participant_of_that_account(line_api, site):
    first, second = ParticipantFactory(site=site), ParticipantFactory(site=site)
    _send(_text(codes.code_for(first)), _text(codes.code_for(second)))
    assert _linked_user(first) == _linked_user(second) == ALICE

    _send(_event("unfollow"))

    assert _linked_user(first) == _linked_user(second) == ""
    assert linking.linked_contacts(ALICE) == []
    assert Contact.objects.filter(line_user_index=crypto.line_user_index(ALICE)).count() == 0


def test_a_replayed_event_changes_nothing_a_second_time(line_api, participant):
    code = codes.code_for(participant)
    unfollow = _event("unfollow")
    _send(_text(code))
    _send(unfollow)
    _send(_text(code))  # followed again and linked again, with a new event
    assert _linked_user(participant) == ALICE

    _send(unfollow)  # the same body again: a replay
    redelivered = {**unfollow, "deliveryContext": {"isRedelivery": True}}
    _send(redelivered)  # LINE's redelivery of the same event

    assert _linked_user(participant) == ALICE


def test_a_replayed_code_message_does_not_reply_twice(line_api, participant):
    message = _text(codes.code_for(participant))
    _send(message)
    _send(message)
    assert len(line_api.replied) == 1


def test_an_event_older_than_the_maximum_age_is_ignored(line_api, participant, settings):
    _send(_text(codes.code_for(participant), age=settings.HYOKA_LINE_EVENT_MAX_AGE + 60))
    assert _linked_user(participant) == ""
    assert line_api.replied == []


@pytest.mark.parametrize(
    "signature",
    [
        None,  # unsigned
        "",
        "not base64 at all",
        "forged with another secret",
        "the signature of another body",
    ],
)
def test_a_webhook_without_the_right_signature_is_refused_and_changes_nothing(
    line_api, participant, signature
):
    _send(_text(codes.code_for(participant)))
    body = _body(_event("unfollow"))
    if signature == "forged with another secret":
        signature = _signature(body, "another-secret-another-secret-00")
    elif signature == "the signature of another body":
        signature = _signature(_body(_event("unfollow", BOB)))

    response = _post(body, signature)

    assert response.status_code == 400
    assert b"X-Line-Signature" in response.content
    assert _linked_user(participant) == ALICE
    assert len(line_api.received) == 1  # the reply to the code, nothing since


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"events": 3}', b'{"no": "events"}', b"\xff\xfe"]
)
def test_a_signed_body_that_is_not_a_webhook_is_refused(line_api, body):
    response = _post(body)
    assert response.status_code == 400
    assert line_api.received == []


def test_events_that_are_not_for_hyoka_are_ignored(line_api, participant):
    code = codes.code_for(participant)
    group = _text(code, source={"type": "group", "groupId": "C" + "1" * 32, "userId": ALICE})
    sticker = _event(
        "message",
        message={
            "type": "sticker",
            "id": "2",
            "packageId": "1",
            "stickerId": "1",
            "stickerResourceType": "STATIC",
            "quoteToken": "q",
        },
    )
    unknown = _event("somethingNew")
    _send(group, sticker, unknown)
    assert _linked_user(participant) == ""
    assert line_api.replied == []


def test_a_guessed_code_is_refused_and_guessing_is_slowed_down(line_api, participant, settings):
    settings.HYOKA_LINE_CODE_FAILURE_RATE = "3/h"
    code = codes.code_for(participant)
    wrong = [c for c in ("ABCDEFGHJK", "2345678923", "ZZZZZZZZZZ", "MNPQRSTUVW") if c != code]
    for guess in wrong:
        _send(_text(guess))
    _send(_text(code))  # the right code, but from an account that guessed too often

    answers = _replies(line_api)
    assert answers[:4] == [texts.both(codes.WRONG)] * 4
    # The wait is what is left of the hour the guesses are counted in.
    assert answers[4] in {texts.both(texts.TOO_MANY, minutes=m) for m in range(1, 61)}
    assert _linked_user(participant) == ""
    # Another account is not slowed down by this one.
    _send(_text(code, BOB))
    assert _linked_user(participant) == BOB


def test_chat_that_is_not_a_code_is_answered_without_counting_as_a_guess(
    line_api, participant, settings
):
    settings.HYOKA_LINE_CODE_FAILURE_RATE = "1/h"
    for text in ("こんにちは", "ありがとう", "?"):
        _send(_text(text))
    _send(_text(codes.code_for(participant)))

    assert _replies(line_api)[:3] == [texts.both(texts.NOT_A_CODE)] * 3
    assert _linked_user(participant) == ALICE
    _send(_text("ありがとう"))
    assert _replies(line_api)[-1] == texts.one(texts.NO_CONVERSATION, "ja")


def test_the_account_link_event_links_the_participant_its_nonce_was_made_for(line_api, participant):
    nonce = linking.account_link_nonce(participant)
    _send(_event("accountLink", link={"result": "ok", "nonce": nonce}))
    assert _linked_user(participant) == ALICE


@pytest.mark.parametrize("nonce", ["forged-nonce-0123456789", "", "1.abc:xyz:sig"])
def test_an_account_link_event_with_a_forged_nonce_links_nobody(line_api, participant, nonce):
    _send(_event("accountLink", link={"result": "ok", "nonce": nonce}))
    _send(_event("accountLink", link={"result": "failed", "nonce": nonce}))
    assert Contact.objects.exclude(line_user_index="").count() == 0


def test_with_line_off_the_webhook_says_so_and_reads_nothing(settings, participant):
    settings.LINE_CHANNEL_SECRET = settings.LINE_CHANNEL_ACCESS_TOKEN = ""
    settings.LINE_ENABLED = False
    body = _body(_text(codes.code_for(participant)))
    response = _post(body, _signature(body))
    assert response.status_code == 503
    assert b"LINE_CHANNEL_SECRET" in response.content
    assert _linked_user(participant) == ""


def test_the_consoles_verify_request_is_answered_200(line_api):
    response = _post(_body())  # "Verify" in the LINE Developers console: no events
    assert (response.status_code, response.content) == (200, b"OK")


def test_replies_to_someone_not_linked_are_in_japanese_then_english(line_api):
    _send(_text("こんにちは"))
    with translation.override("ja"):
        japanese = str(texts.NOT_A_CODE)
    with translation.override("en"):
        english = str(texts.NOT_A_CODE)
    [reply] = _replies(line_api)
    assert reply.startswith(japanese) and reply.endswith(english)


def test_the_webhook_takes_only_post(line_api):
    assert Client().get(URL).status_code == 405


def test_a_reply_line_refuses_does_not_undo_the_link_or_fail_the_webhook(line_api, participant):
    line_api.fail_next(500)
    response = _send(_text(codes.code_for(participant)))
    assert response.status_code == 200
    assert _linked_user(participant) == ALICE


def test_an_account_link_nonce_dies_with_the_link_it_was_made_for(line_api, participant):
    nonce = linking.account_link_nonce(participant)
    _token, new_hash = new_token()  # the manager replaced the participant's link
    Participant.objects.filter(pk=participant.pk).update(token_hash=new_hash)
    _send(_event("accountLink", link={"result": "ok", "nonce": nonce}))
    assert _linked_user(participant) == ""
