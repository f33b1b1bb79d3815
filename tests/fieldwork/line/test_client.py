"""Pushing to LINE through the SDK, against the stand-in: what arrives, the retry key, and
what each of LINE's answers means (fieldwork/line/client.py)."""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest

from fieldwork.line import client
from fieldwork.line.client import Client, LineOff, SendFailed

USER = "U" + "0123456789abcdef" * 2
LINK = "https://hyoka.example.jp/r/" + "A" * 43 + "/"
KEY = str(uuid.UUID(int=7))


def _link_messages() -> list:
    return client.link_messages(
        text="アンケートへのご協力をお願いします。",
        link=LINK,
        button_text="下のボタンから回答できます。",
        label="回答する",
    )


def test_a_pushed_message_arrives_with_the_link_the_token_and_the_retry_key(line_api):
    with Client() as line:
        message_id = line.push(to=USER, messages=_link_messages(), retry_key=KEY)

    assert message_id
    [request] = line_api.received
    assert request.status == 200
    assert request.headers["authorization"] == "Bearer stand-in-channel-access-token"
    assert request.headers["x-line-retry-key"] == KEY
    [push] = line_api.pushed
    assert push["to"] == USER
    text, template = push["messages"]
    assert text == {"type": "text", "text": f"アンケートへのご協力をお願いします。\n\n{LINK}"}
    assert template["type"] == "template"
    assert template["template"]["actions"] == [{"type": "uri", "label": "回答する", "uri": LINK}]


def test_a_retried_push_with_the_same_retry_key_is_not_delivered_twice(line_api):
    with Client() as line:
        line.push(to=USER, messages=[client.text_message("一度だけ")], retry_key=KEY)
        again = line.push(to=USER, messages=[client.text_message("一度だけ")], retry_key=KEY)

    assert again  # counted as sent: LINE had accepted it
    assert [r.status for r in line_api.received] == [200, 409]
    assert line_api.texts_to(USER) == ["一度だけ"]


def test_each_delivery_has_its_own_retry_key_the_same_on_every_attempt():
    queued = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert client.retry_key(5, queued) == client.retry_key(5, queued)
    assert client.retry_key(5, queued) != client.retry_key(6, queued)
    assert client.retry_key(5, queued) != client.retry_key(5, queued.replace(hour=10))
    uuid.UUID(client.retry_key(5, queued))  # LINE wants a UUID


def test_a_wrong_token_is_a_permanent_failure_naming_the_setting(line_api, settings):
    settings.LINE_CHANNEL_ACCESS_TOKEN = "not-the-token"
    with Client() as line, pytest.raises(SendFailed) as refused:
        line.push(to=USER, messages=[client.text_message("x")], retry_key=KEY)

    failure = refused.value.failure
    assert (failure.status, failure.transient) == (401, False)
    assert "LINE_CHANNEL_ACCESS_TOKEN" in failure.reason
    assert line_api.pushed == []


@pytest.mark.parametrize(
    ("status", "transient"), [(429, True), (500, True), (503, True), (400, False), (403, False)]
)
def test_lines_answers_are_sorted_into_transient_and_permanent(line_api, status, transient):
    line_api.fail_next(status, message="The user blocked the account" if status < 429 else "")
    with Client() as line, pytest.raises(SendFailed) as refused:
        line.push(to=USER, messages=[client.text_message("x")], retry_key=KEY)

    failure = refused.value.failure
    assert (failure.status, failure.transient) == (status, transient)
    if not transient:
        assert "The user blocked the account" in failure.reason
    assert line_api.pushed == []


def test_after_a_429_the_next_attempt_goes_through(line_api):
    line_api.fail_next(429)
    with Client() as line:
        with pytest.raises(SendFailed):
            line.push(to=USER, messages=[client.text_message("後で")], retry_key=KEY)
        line.push(to=USER, messages=[client.text_message("後で")], retry_key=KEY)

    assert line_api.texts_to(USER) == ["後で"]


def test_no_connection_is_a_transient_failure(line_api, settings):
    with socket.socket() as sock:  # a port on 127.0.0.1 nobody listens on
        sock.bind(("127.0.0.1", 0))
        settings.LINE_API_HOST = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with Client() as line, pytest.raises(SendFailed) as refused:
            line.push(to=USER, messages=[client.text_message("x")], retry_key=KEY)

    assert refused.value.failure.transient
    assert "could not be reached" in refused.value.failure.reason


def test_only_a_user_id_can_be_pushed_to(line_api):
    for not_a_user in ("C" + "0" * 32, "R" + "0" * 32, "U123", ""):  # a group, a room…
        with Client() as line, pytest.raises(SendFailed) as refused:
            line.push(to=not_a_user, messages=[client.text_message("x")], retry_key=KEY)
        assert not refused.value.failure.transient
    assert line_api.received == []


def test_the_client_pushes_only_and_never_broadcasts():
    assert not hasattr(Client, "broadcast")
    assert not hasattr(Client, "multicast")


def test_a_text_longer_than_line_allows_is_refused_before_sending():
    client.text_message("あ" * 5000)
    with pytest.raises(ValueError):
        client.text_message("あ" * 5001)


def test_with_line_off_there_is_no_client(settings):
    settings.LINE_CHANNEL_SECRET = settings.LINE_CHANNEL_ACCESS_TOKEN = ""
    settings.LINE_ENABLED = False
    with pytest.raises(LineOff):
        Client()


def test_the_stand_in_refuses_a_payload_out_of_shape(line_api):
    bad = {"to": USER, "messages": [{"type": "text", "text": "x" * 5001}] * 6}
    request = urllib.request.Request(  # noqa: S310 (the stand-in on 127.0.0.1)
        f"{line_api.host}/v2/bot/message/push",
        data=json.dumps(bad).encode(),
        headers={
            "Authorization": "Bearer stand-in-channel-access-token",
            "Content-Type": "application/json",
        },
    )
    with pytest.raises(urllib.request.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 (127.0.0.1)
    refused.value.close()
    assert refused.value.code == 400
    assert line_api.pushed == []
