"""Slows down whoever tries invitation tokens that do not work.

A token carries 256 random bits, so guessing one is hopeless; what a scan of ``/r/<token>/``
or ``/api/v1/invitations/<token>/`` does achieve is load and noise. So each *failed*
lookup (unknown, replaced, withdrawn or malformed token) is counted per client address
(``config/client_ip.py``) with django-ratelimit, and past ``HYOKA_TOKEN_FAILURE_RATE``
(10 a minute by default) a failed lookup answers 429 with ``Retry-After`` instead of 404.

Only failures are counted, and only after the lookup failed: a participant whose link
works never waits and their request makes no cache round trip at all (the submission path
is tuned for hundreds of requests a second). The price is that a client over the limit is
refused only on its failures; that is enough, since a failure is all a guesser ever gets.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

GROUP = "surveys.invitation-token"


def failed_lookup(request: HttpRequest) -> int | None:
    """Count a failed token lookup from this request's client. Returns the seconds the
    client must wait when it is over the limit, else ``None``.

    The count lives in the cache (Redis in production, shared by every worker). If the
    cache cannot be reached the lookup is not limited: an outage of the cache must not
    turn "this link is not valid" into an error page."""
    try:
        usage = get_usage(
            request,
            group=GROUP,
            key="ip",
            rate=settings.HYOKA_TOKEN_FAILURE_RATE,
            increment=True,
        )
    except Exception:  # the cache is down: fail open, loudly
        logger.warning("Invitation-token attempts could not be counted", exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["count"] == usage["limit"] + 1:
        logger.warning("Too many invalid invitation tokens from one client; slowing it down")
    return max(1, int(usage["time_left"]))


def too_many_attempts_page(request: HttpRequest, wait: int) -> HttpResponse:
    """The questionnaire's 429: in the participant's language, as the 404 would be."""
    response = render(request, "surveys/too_many_attempts.html", status=429)
    response["Retry-After"] = str(wait)
    return response
