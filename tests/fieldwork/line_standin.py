"""A local stand-in of the LINE Messaging API: a real HTTP server on 127.0.0.1 that the SDK
talks to (``LINE_API_HOST``), so that tests send real requests and no call leaves the
machine.

It implements ``POST /v2/bot/message/push`` and ``POST /v2/bot/message/reply`` as LINE
documents them: ``Authorization: Bearer <token>`` (401 otherwise), a JSON body whose shape
is checked (``to`` a user id, or a ``replyToken``; 1 to 5 messages; a text of 1 to 5,000
characters; a buttons template with 1 to 4 URI actions, labels of at most 20 characters),
400 with LINE's error shape for anything else, and the ``X-Line-Retry-Key`` (a UUID; a key
already accepted answers 409 with ``X-Line-Accepted-Request-Id``). It records every request
(``received``; the accepted ones in ``pushed`` and ``replied``) and can be told to answer
an error for the next N calls (``fail_next``).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER_ID = re.compile(r"U[0-9a-f]{32}")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class StandIn:
    token: str
    host: str = ""
    received: list[Received] = field(default_factory=list)
    pushed: list[dict[str, Any]] = field(default_factory=list)
    replied: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _accepted_keys: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, times: int = 1, message: str = "") -> None:
        """Answer ``status`` to the next ``times`` well-authenticated calls."""
        body = {
            "message": message
            or {429: "Too Many Requests", 500: "Internal error"}.get(
                status, "The request was refused"
            )
        }
        with self._lock:
            self._failures.extend([(status, body)] * times)

    def texts_to(self, user_id: str) -> list[str]:
        """The texts of every message pushed to ``user_id``, in order."""
        return [
            m["text"]
            for p in self.pushed
            if p["to"] == user_id
            for m in p["messages"]
            if m["type"] == "text"
        ]

    # --- What the server does with one request ---------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict]:
        with self._lock:
            status, body, extra = self._answer(path, headers, raw)
            try:
                parsed: Any = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            self.received.append(Received(path, headers, parsed, status))
            return status, body, extra

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict]:
        if path not in ("/v2/bot/message/push", "/v2/bot/message/reply"):
            return 404, {"message": "Not found"}, {}
        if headers.get("authorization") != f"Bearer {self.token}":
            return (
                401,
                {
                    "message": "Authentication failed. Confirm that the access token in "
                    "the authorization header is valid."
                },
                {},
            )
        if self._failures:
            status, body = self._failures.pop(0)
            return status, body, {}
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, {"message": "The request body must be JSON"}, {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return (
                400,
                {
                    "message": "The request body has 1 error(s)",
                    "details": [{"message": "invalid JSON", "property": ""}],
                },
                {},
            )
        push = path.endswith("/push")
        errors = validate(body, push=push)
        if errors:
            return (
                400,
                {
                    "message": f"The request body has {len(errors)} error(s)",
                    "details": [{"message": m, "property": p} for p, m in errors],
                },
                {},
            )
        key = headers.get("x-line-retry-key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                return 400, {"message": "The retry key is not a UUID"}, {}
            if key in self._accepted_keys:
                return (
                    409,
                    {"message": "The retry key is already accepted"},
                    {"X-Line-Accepted-Request-Id": self._accepted_keys[key]},
                )
        request_id = str(uuid.uuid4())
        if key is not None:
            self._accepted_keys[key] = request_id
        (self.pushed if push else self.replied).append(body)
        sent = [
            {"id": str(10**17 + len(self.received) * 10 + i), "quoteToken": "q"}
            for i in range(len(body["messages"]))
        ]
        return 200, {"sentMessages": sent}, {"X-Line-Request-Id": request_id}


def validate(body: Any, *, push: bool) -> list[tuple[str, str]]:
    """Every way ``body`` departs from LINE's documented shape, as (property, message)."""
    errors: list[tuple[str, str]] = []
    if not isinstance(body, dict):
        return [("", "must be an object")]
    allowed = {"messages", "notificationDisabled", "customAggregationUnits"}
    allowed.add("to" if push else "replyToken")
    for extra in sorted(set(body) - allowed):
        errors.append((extra, "unknown property"))
    if push:
        to = body.get("to")
        if not isinstance(to, str) or not USER_ID.fullmatch(to):
            errors.append(("to", "must be a user id"))
    elif not isinstance(body.get("replyToken"), str) or not body["replyToken"]:
        errors.append(("replyToken", "must be a reply token"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        errors.append(("messages", "must be 1 to 5 messages"))
        return errors
    for i, message in enumerate(messages):
        errors.extend((f"messages[{i}].{p}".rstrip("."), m) for p, m in _message(message))
    return errors


def _text(value: Any, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high


def _message(message: Any) -> list[tuple[str, str]]:
    if not isinstance(message, dict):
        return [("", "must be an object")]
    kind = message.get("type")
    if kind == "text":
        return [] if _text(message.get("text"), 1, 5000) else [("text", "1 to 5000 characters")]
    if kind != "template":
        return [("type", f"unsupported message type {kind!r}")]
    errors = []
    if not _text(message.get("altText"), 1, 400):
        errors.append(("altText", "1 to 400 characters"))
    template = message.get("template")
    if not isinstance(template, dict) or template.get("type") != "buttons":
        return [*errors, ("template", "must be a buttons template")]
    if not _text(template.get("text"), 1, 160):
        errors.append(("template.text", "1 to 160 characters"))
    actions = template.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= 4:
        return [*errors, ("template.actions", "1 to 4 actions")]
    for j, action in enumerate(actions):
        if not isinstance(action, dict) or action.get("type") != "uri":
            errors.append((f"template.actions[{j}]", "must be a URI action"))
            continue
        if not _text(action.get("label"), 1, 20):
            errors.append((f"template.actions[{j}].label", "1 to 20 characters"))
        uri = action.get("uri")
        if not isinstance(uri, str) or not re.match(r"https?://", uri) or len(uri) > 1000:
            errors.append((f"template.actions[{j}].uri", "an http or https URL"))
    return errors


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.server.standin.handle(self.path, headers, raw)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandIn


@contextmanager
def running(token: str) -> Iterator[StandIn]:
    """A stand-in listening on a free port of 127.0.0.1 until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    standin = StandIn(token=token, host=f"http://127.0.0.1:{server.server_address[1]}")
    server.standin = standin
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
