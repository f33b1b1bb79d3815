"""Talking to the LINE Messaging API (line-bot-sdk v3): a push to one LINE user, a reply
to a webhook event, and what LINE's answer means for the delivery.

Only ``push`` to one user id (``U`` and 32 hex digits) and ``reply`` exist here: Hyoka never
broadcasts, multicasts or pushes to a group. Every push carries an ``X-Line-Retry-Key``
that is the same on every attempt of one delivery (``retry_key``): if a push timed out
after LINE accepted it, the retry is answered 409 and counted as sent, never delivered
twice (LINE keeps a retry key for 24 hours).

LINE's answers: 429 (rate or monthly limit), 5xx, a timeout or no connection are
**transient** (the delivery waits and is tried again); 400, 401, 403, 404 (a user who
blocked the account, a bad token, a malformed message) are **permanent**, with LINE's own
words as the reason. The SDK's urllib3 retries are off: retrying is the sender's job,
with backoff and a cap.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import urllib3
from django.conf import settings

# The SDK is imported where a message is built or sent, not here: importing it takes
# about 1.5 s of CPU (pydantic models for the whole API), which every process that never
# speaks to LINE would pay at start (web workers, `manage.py` commands, Celery workers,
# each subprocess of the tests), since the tasks and the URLconf import this module.
if TYPE_CHECKING:
    from linebot.v3.messaging import Message, TextMessage

USER_ID = re.compile(r"U[0-9a-f]{32}")
TEXT_MAX = 5000  # characters of a text message
BUTTONS_TEXT_MAX = 160  # a buttons template's text, without a title or an image
LABEL_MAX = 20  # an action's label
ALT_TEXT_MAX = 400
# A stable namespace for the retry keys of this application's deliveries.
_RETRY_NAMESPACE = uuid.UUID("6a1f0d43-4c55-4a8e-9d2b-9b6f5c0e7a11")


class LineOff(Exception):
    """LINE is not configured (``LINE_CHANNEL_SECRET`` and ``LINE_CHANNEL_ACCESS_TOKEN``):
    the channel is skipped and the message falls through to the next one."""


@dataclass(frozen=True)
class Failure:
    """Why a message was not sent: ``transient`` (try again later) or permanent."""

    reason: str
    transient: bool
    status: int | None = None


class SendFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def enabled() -> bool:
    return bool(settings.LINE_ENABLED)


def retry_key(delivery_id: int, created_at: datetime) -> str:
    """The delivery's ``X-Line-Retry-Key``: a UUID that is the same on every attempt of this
    delivery and differs from every other delivery's (the time it was queued tells a row
    apart from one with the same id in an earlier database, e.g. a reset demo)."""
    return str(uuid.uuid5(_RETRY_NAMESPACE, f"{delivery_id}:{created_at.isoformat()}"))


# --- Messages ----------------------------------------------------------------------------


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_message(text: str) -> TextMessage:
    from linebot.v3.messaging import TextMessage

    if not text.strip():
        raise ValueError("a LINE text message cannot be empty")
    if len(text) > TEXT_MAX:
        raise ValueError(f"a LINE text message has at most {TEXT_MAX} characters")
    return TextMessage(text=text)  # type: ignore[call-arg]


def link_messages(*, text: str, link: str, button_text: str, label: str) -> list[Message]:
    """A message with the participant's link: the text with the link typed out (it is what
    every LINE app shows, and what a participant can copy), then a button that opens it."""
    from linebot.v3.messaging import ButtonsTemplate, TemplateMessage, URIAction

    buttons = ButtonsTemplate(  # type: ignore[call-arg]
        text=_fit(button_text, BUTTONS_TEXT_MAX),
        actions=[URIAction(label=_fit(label, LABEL_MAX), uri=link)],  # type: ignore[call-arg]
    )
    return [
        text_message(f"{text}\n\n{link}"),
        TemplateMessage(altText=_fit(f"{button_text} {link}", ALT_TEXT_MAX), template=buttons),  # type: ignore[call-arg]
    ]


# --- LINE's answers ----------------------------------------------------------------------


def _line_words(body: Any) -> str:
    """LINE's error body (``{"message": ..., "details": [{"message", "property"}]}``) in
    one line; anything else as text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body or "")
    except ValueError:
        return str(body or "").strip()[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    words = str(data.get("message", ""))
    details = data.get("details") or []
    if isinstance(details, list):
        words += "".join(
            f"; {d.get('property', '')}: {d.get('message', '')}"
            for d in details[:5]
            if isinstance(d, dict)
        )
    return words


def classify(exc: BaseException) -> Failure:
    """An exception of the SDK or of the connection, as a ``Failure``."""
    from linebot.v3.messaging.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status:
        status = int(exc.status)
        words = _line_words(exc.body)
        if status == 429:
            return Failure(f"LINE: too many requests (429): {words}", transient=True, status=429)
        if status >= 500:
            return Failure(f"LINE: server error ({status}): {words}", transient=True, status=status)
        if status == 401:
            return Failure(
                f"LINE refused the channel access token (401): {words} "
                f"(check LINE_CHANNEL_ACCESS_TOKEN)",
                transient=False,
                status=401,
            )
        return Failure(f"LINE refused the message ({status}): {words}", False, status)
    if isinstance(exc, ApiException | urllib3.exceptions.HTTPError | OSError):
        # status 0: the SDK's wrapping of a TLS error; the rest: no connection, a timeout.
        detail = getattr(exc, "reason", None) or exc
        return Failure(f"LINE could not be reached: {detail}", transient=True)
    raise exc


# --- The client --------------------------------------------------------------------------


class Client:
    """One connection pool to the Messaging API; use it as a context manager, for one push
    or a whole batch."""

    def __init__(self) -> None:
        if not enabled():
            raise LineOff("LINE is not configured (LINE_CHANNEL_ACCESS_TOKEN)")
        from linebot.v3.messaging import ApiClient, Configuration, MessagingApi

        configuration = Configuration(
            host=settings.LINE_API_HOST, access_token=settings.LINE_CHANNEL_ACCESS_TOKEN
        )
        configuration.retries = False  # retrying is the sender's job
        self._api_client = ApiClient(configuration)
        self._api = MessagingApi(self._api_client)
        self._timeout = (settings.LINE_API_TIMEOUT, settings.LINE_API_TIMEOUT)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._api_client.close()
        # The SDK leaves its urllib3 connections open until they are garbage-collected.
        self._api_client.rest_client.pool_manager.clear()

    def push(self, *, to: str, messages: Sequence[Message], retry_key: str) -> str:
        """Push ``messages`` (1 to 5) to the one LINE user ``to``. Returns LINE's id of the
        first message sent (or of the request it had already accepted under this retry
        key); raises ``SendFailed``."""
        if not USER_ID.fullmatch(to):
            raise SendFailed(Failure("not a LINE user id", transient=False))
        from linebot.v3.messaging import PushMessageRequest
        from linebot.v3.messaging.exceptions import ApiException

        request = PushMessageRequest(to=to, messages=list(messages))  # type: ignore[call-arg]
        try:
            response = self._api.push_message_with_http_info(
                request, x_line_retry_key=retry_key, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 409:  # accepted before under this retry key: already sent
                headers = exc.headers or {}
                return str(headers.get("x-line-accepted-request-id", "")) or "accepted"
            raise SendFailed(classify(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SendFailed(classify(exc)) from exc
        sent = response.data.sent_messages if response.data else []
        return sent[0].id if sent else ""

    def reply(self, *, reply_token: str, messages: Sequence[Message]) -> None:
        """Answer a webhook event (free of charge, once, within a minute of the event)."""
        from linebot.v3.messaging import ReplyMessageRequest
        from linebot.v3.messaging.exceptions import ApiException

        request = ReplyMessageRequest(replyToken=reply_token, messages=list(messages))  # type: ignore[call-arg]
        try:
            self._api.reply_message_with_http_info(request, _request_timeout=self._timeout)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise SendFailed(classify(exc)) from exc
