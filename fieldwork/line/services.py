"""Queueing LINE deliveries: the LINE twin of ``fieldwork/services.py``'s
``email_deliveries_queue``, for the campaigns (their channel order: LINE if linked, else
e-mail, else a letter) and the admin. One transaction; the task enqueued after commit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from surveys.models import ErasureRecord, Participant, Response

from ..models import Contact, Delivery
from ..services import Queued, Skip
from ..tasks import send_line_deliveries
from .sending import BATCH

NOT_LINKED = "no linked LINE account"


def line_deliveries_queue(
    *,
    participants: Iterable[Participant],
    kind: str = Delivery.Kind.INVITATION,
    due_at: datetime | None = None,
) -> Queued:
    """Queue one LINE message of ``kind`` for each of ``participants`` who can get one
    (active, not erased, not yet submitted, with a linked LINE account, nothing of that
    kind already queued for LINE), and have it sent after commit."""
    now = timezone.now()
    rows = list(
        Participant.objects.filter(pk__in=[p.pk for p in participants])
        .annotate(
            erased=Exists(ErasureRecord.objects.filter(participant_id=OuterRef("pk"))),
            submitted=Exists(
                Response.objects.filter(
                    participant_id=OuterRef("pk"), status=Response.Status.SUBMITTED
                )
            ),
            pending=Exists(
                Delivery.objects.filter(
                    participant_id=OuterRef("pk"),
                    channel=Delivery.Channel.LINE,
                    kind=kind,
                    status__in=Delivery.PENDING,
                )
            ),
            # The index is set exactly when a LINE account is linked: nothing to decrypt.
            linked=Exists(
                Contact.objects.filter(participant_id=OuterRef("pk")).exclude(line_user_index="")
            ),
        )
        .order_by("pk")
    )
    result = Queued()
    new = []
    for p in rows:
        reason = (
            Skip.NOT_ACTIVE
            if p.status != Participant.Status.ACTIVE
            else Skip.ERASED
            if p.erased  # type: ignore[attr-defined]
            else Skip.SUBMITTED
            if p.submitted  # type: ignore[attr-defined]
            else Skip.PENDING
            if p.pending  # type: ignore[attr-defined]
            else NOT_LINKED
            if not p.linked  # type: ignore[attr-defined]
            else None
        )
        if reason is not None:
            result.skipped[reason] += 1
            continue
        new.append(
            Delivery(
                participant_id=p.pk, channel=Delivery.Channel.LINE, kind=kind, due_at=due_at or now
            )
        )
    with transaction.atomic():
        created = Delivery.objects.bulk_create(new, batch_size=1000)
        result.ids = [d.pk for d in created]
        if due_at is None or due_at <= now:
            for start in range(0, len(result.ids), BATCH):
                send_line_deliveries.delay_on_commit(result.ids[start : start + BATCH])
    return result
