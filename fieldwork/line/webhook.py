"""The webhook LINE calls (``POST /line/webhook/``), read top to bottom.

1. **LINE off** (no secret and token): 503 with a body that says so; nothing is read.
2. **Signature**: ``X-Line-Signature`` must be the base64 HMAC-SHA256 of the raw body under
   the channel secret (the SDK's ``WebhookParser``). Missing or wrong: 400, nothing
   changed. A signed body that is not a webhook body: 400.
3. Each **event**, once: an event older than ``HYOKA_LINE_EVENT_MAX_AGE`` is ignored, and
   the ids of the events handled (``webhookEventId``) are remembered in the cache for
   twice as long, so a replayed or redelivered event (``deliveryContext.isRedelivery``)
   that was handled before changes nothing. A redelivered event that was never handled
   (the first delivery failed) is handled: that is what redelivery is for. The handlers
   are idempotent besides.
4. **Events**: ``follow`` (a welcome asking for the link code), ``message`` with a text (a
   link code: ``codes.py``, slowed down per LINE user by ``attempts.py``), ``accountLink``
   (LINE's account-link flow), ``unfollow`` (unlinks: no more pushes). Everything else
   (groups, rooms, stickers, unknown events) is ignored.
5. **Replies** are sent after every event is handled and committed, each at most once; a
   reply that fails is logged, never an error: LINE would send the events again.

Always 200 once the signature is right, so that LINE does not redeliver what was handled.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import attempts, client, codes, linking, texts

# The SDK is imported when a webhook call comes, not with the URLconf (see client.py).
if TYPE_CHECKING:
    from linebot.v3.webhooks import AccountLinkEvent, Event

logger = logging.getLogger(__name__)

EVENT_KEY = "fieldwork:line:event:"


@dataclass(frozen=True)
class Reply:
    token: str
    text: str


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    if not client.enabled():
        return _plain(
            "LINE is not configured on this server (LINE_CHANNEL_SECRET and "
            "LINE_CHANNEL_ACCESS_TOKEN are not set).",
            503,
        )
    signature = request.headers.get("X-Line-Signature", "")
    if not signature:
        return _plain("Refused: no X-Line-Signature.", 400)
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return _plain("Refused: the body is not UTF-8.", 400)
    from linebot.v3.exceptions import InvalidSignatureError
    from linebot.v3.webhook import WebhookParser

    parser = WebhookParser(settings.LINE_CHANNEL_SECRET)
    try:
        payload = parser.parse(body, signature, as_payload=True)
    except InvalidSignatureError:
        logger.warning("LINE webhook refused: wrong X-Line-Signature")
        return _plain("Refused: wrong X-Line-Signature.", 400)
    except (ValueError, KeyError, TypeError, AttributeError):
        return _plain("Refused: not a LINE webhook body.", 400)
    replies: list[Reply] = []
    for event in payload.events or []:
        replies.extend(_once(request, event))
    _send(replies)
    return _plain("OK", 200)


def _once(request: HttpRequest, event: Event) -> list[Reply]:
    """Handle ``event`` unless it is stale or was handled before."""
    event_id = getattr(event, "webhook_event_id", None)
    timestamp = getattr(event, "timestamp", None)
    if not isinstance(event_id, str) or not isinstance(timestamp, int):
        return []  # not an event LINE documents: nothing to do
    if timestamp / 1000 < time.time() - settings.HYOKA_LINE_EVENT_MAX_AGE:
        logger.info("LINE webhook event %s ignored: older than the maximum age", event_id)
        return []
    key = EVENT_KEY + event_id
    try:
        first = cache.add(key, 1, timeout=2 * settings.HYOKA_LINE_EVENT_MAX_AGE)
    except Exception:  # the cache is down: handle it (the handlers are idempotent)
        logger.warning("LINE webhook events cannot be remembered", exc_info=True)
        first = True
    if not first:
        logger.info("LINE webhook event %s was handled before: ignored", event_id)
        return []
    try:
        return _handle(request, event)
    except BaseException:
        # Not handled after all (the database failed): a redelivery may try again.
        with contextlib.suppress(Exception):
            cache.delete(key)
        raise


def _user_id(event: Event) -> str | None:
    from linebot.v3.webhooks import UserSource

    source = event.source
    if (
        isinstance(source, UserSource)
        and source.user_id
        and client.USER_ID.fullmatch(source.user_id)
    ):
        return source.user_id
    return None  # a group, a room, or no user: Hyoka talks to single users only


def _handle(request: HttpRequest, event: Event) -> list[Reply]:
    from linebot.v3.webhooks import (
        AccountLinkEvent,
        FollowEvent,
        MessageEvent,
        TextMessageContent,
        UnfollowEvent,
    )

    user_id = _user_id(event)
    if user_id is None:
        return []
    if isinstance(event, UnfollowEvent):
        linking.line_user_unlink(line_user_id=user_id)
        return []
    if isinstance(event, FollowEvent):
        return [Reply(event.reply_token, texts.both(texts.WELCOME))]
    if isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
        if not event.reply_token:
            return []
        return [Reply(event.reply_token, _on_text(request, user_id, event.message.text))]
    if isinstance(event, AccountLinkEvent):
        return _on_account_link(user_id, event)
    return []


def _on_text(request: HttpRequest, user_id: str, text: str) -> str:
    code = codes.normalize(text)
    if code is None:
        linked = linking.linked_contacts(user_id)
        if linked:
            return texts.one(texts.NO_CONVERSATION, linked[0].language)
        return texts.both(texts.NOT_A_CODE)
    wait = attempts.wait_seconds(request, user_id)
    if wait is not None:
        return texts.both(texts.TOO_MANY, minutes=max(1, -(-wait // 60)))
    try:
        participant = codes.check(code)
    except codes.CodeRefused as refused:
        attempts.failed(request, user_id)
        return texts.both(refused.message)
    outcome = linking.line_user_link(participant=participant, line_user_id=user_id)
    if outcome is linking.Outcome.USED:
        attempts.failed(request, user_id)
        return texts.both(texts.USED)
    language = participant.contact.language
    if outcome is linking.Outcome.ALREADY_LINKED:
        return texts.one(texts.ALREADY_LINKED, language)
    return texts.one(texts.LINKED, language)


def _on_account_link(user_id: str, event: AccountLinkEvent) -> list[Reply]:
    if event.link.result != "ok":
        return []
    participant = linking.participant_for_nonce(event.link.nonce)
    if participant is None:
        logger.warning("LINE account-link event with an unknown or expired nonce: ignored")
        return []
    outcome = linking.line_user_link(participant=participant, line_user_id=user_id)
    if not event.reply_token or outcome is linking.Outcome.USED:
        return []
    return [Reply(event.reply_token, texts.one(texts.LINKED, participant.contact.language))]


def _send(replies: list[Reply]) -> None:
    if not replies:
        return
    try:
        with client.Client() as line:
            for reply in replies:
                try:
                    line.reply(reply_token=reply.token, messages=[client.text_message(reply.text)])
                except client.SendFailed as exc:
                    logger.warning("LINE reply not sent: %s", exc.failure.reason)
    except client.LineOff:
        pass
