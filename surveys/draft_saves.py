"""How often one invitation link may save a draft.

A link needs no login, and every draft save writes the response and its answers: without a
bound, one link could keep a worker and the database busy for as long as the survey is
open. So draft saves are counted per link (the token's stored hash, never the token) with
django-ratelimit, and past ``HYOKA_DRAFT_SAVE_RATE`` (60 a minute by default, above what
the questionnaire's autosave ever sends) a save answers 429 with ``Retry-After`` and
stores nothing. Submissions are not counted: each link submits once, and the submission
path stays free of a cache round trip.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from .models import Participant

logger = logging.getLogger(__name__)

GROUP = "surveys.draft-save"


def draft_save_wait(request: HttpRequest, participant: Participant) -> int | None:
    """Count a draft save of ``participant``'s link. Returns the seconds to wait when the
    link is over the limit, else ``None``. An unreachable cache does not stop a
    participant's save (fail open, logged)."""
    try:
        usage = get_usage(
            request,
            group=GROUP,
            key=lambda _group, _request: participant.token_hash,
            rate=settings.HYOKA_DRAFT_SAVE_RATE,
            increment=True,
        )
    except Exception:  # the cache is down: fail open, loudly
        logger.warning("Draft saves could not be counted", exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["count"] == usage["limit"] + 1:
        logger.warning("Too many draft saves from one invitation link; slowing it down")
    return max(1, int(usage["time_left"]))
