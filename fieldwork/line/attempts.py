"""Slows down whoever sends link codes that do not work, as ``surveys/token_attempts.py``
slows down invalid links. Every webhook comes from LINE's servers, so a client address
says nothing: wrong codes are counted per **LINE user** (a LINE account needs a phone
number, so accounts are not free). Past ``HYOKA_LINE_CODE_FAILURE_RATE`` the codes that
account sends are not even looked at until the period ends, right or wrong.

Only failures are counted, and a message that is not shaped like a code is not one. If
the cache cannot be reached nothing is limited (failing open, loudly), as for links.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

GROUP = "fieldwork.line-link-code"


def _usage(request: HttpRequest, line_user_id: str, *, increment: bool) -> dict | None:
    try:
        return get_usage(
            request,
            group=GROUP,
            key=lambda _group, _request: line_user_id,  # hashed into the cache key
            rate=settings.HYOKA_LINE_CODE_FAILURE_RATE,
            increment=increment,
        )
    except Exception:  # the cache is down: fail open, loudly
        logger.warning("LINE link-code attempts could not be counted", exc_info=True)
        return None


def wait_seconds(request: HttpRequest, line_user_id: str) -> int | None:
    """The seconds this LINE user must wait before a code of theirs is checked, or
    ``None`` if it may be checked now (nothing is counted)."""
    usage = _usage(request, line_user_id, increment=False)
    if usage is None or usage["count"] <= usage["limit"]:
        return None
    return max(1, int(usage["time_left"]))


def failed(request: HttpRequest, line_user_id: str) -> None:
    """Count a wrong (or used, or expired) code from this LINE user."""
    usage = _usage(request, line_user_id, increment=True)
    if usage is not None and usage["count"] == usage["limit"] + 1:
        logger.warning("Too many wrong LINE link codes from one LINE user; slowing it down")
