"""Fieldwork listens to ``surveys`` (which never imports fieldwork):

- ``participant_erasing`` (inside the erasure's transaction, and for each participant of a
  retention purge): the contact row is deleted, the queued deliveries cancelled and the
  failure reasons of the others dropped (they may quote the address), in that same
  transaction; if this fails, the erasure is rolled back.
- ``participant_withdrawing`` (inside the withdrawal's transaction): queued deliveries
  cancelled.
- ``response_submitted`` (after the submission committed): queued deliveries cancelled.
  The submission itself is never held up or failed by this; and the claim of every
  delivery checks again that its participant has not submitted (``sending.claim``), so a
  message is never sent after a submission even if this receiver did not run.
"""

from __future__ import annotations

import logging
from typing import Any

from surveys.models import Participant, Response

from .contacts import contacts_erase
from .services import deliveries_cancel, deliveries_cancel_one, deliveries_erase

logger = logging.getLogger(__name__)

ERASED = "personal data erased"
WITHDRAWN = "cancelled: the participant withdrew"
SUBMITTED = "cancelled: the participant submitted"


def on_participant_erasing(*, participant: Participant, **kwargs: Any) -> None:
    contacts_erase(participant_id=participant.pk)
    deliveries_erase(participant_id=participant.pk, reason=ERASED)


def on_participant_withdrawing(*, participant: Participant, **kwargs: Any) -> None:
    deliveries_cancel(participant_ids=[participant.pk], reason=WITHDRAWN)


def on_response_submitted(
    *, response_id: int | None, participant_id: int | None, site_id: int, **kwargs: Any
) -> None:
    try:
        if participant_id is not None:  # one submission: one UPDATE, no read first
            deliveries_cancel_one(participant_id=participant_id, reason=SUBMITTED)
            return
        # A bulk import: one announcement per site.
        ids = Response.objects.filter(site_id=site_id, status=Response.Status.SUBMITTED)
        deliveries_cancel(
            participant_ids=ids.values_list("participant_id", flat=True), reason=SUBMITTED
        )
    except Exception:
        logger.exception("could not cancel the deliveries after response %s", response_id)
