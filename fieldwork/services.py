"""Writes of fieldwork's deliveries: queueing messages and cancelling them. Keyword-only,
one transaction each, the sending task enqueued after commit. (Contacts: ``contacts.py``;
sending itself, which the task runs: ``sending.py``.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from surveys.models import ErasureRecord, Participant, Response

from .errors import NoSender
from .models import Contact, Delivery, Sender
from .tasks import send_email_deliveries


class Skip:
    """Why a selected participant got no delivery (``Queued.skipped`` counts them)."""

    NOT_ACTIVE = "withdrawn"
    ERASED = "erased"
    SUBMITTED = "submitted"
    NO_ADDRESS = "no e-mail address"
    PENDING = "already queued"


@dataclass
class Queued:
    ids: list[int] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def email_deliveries_queue(
    *,
    participants: Iterable[Participant],
    kind: str = Delivery.Kind.INVITATION,
    due_at: datetime | None = None,
) -> Queued:
    """Queue one e-mail of ``kind`` for each of ``participants`` who can get one (active,
    not erased, not yet submitted, with an e-mail address, nothing of that kind already
    queued), and have it sent after commit. Every site concerned needs a sender
    (``NoSender`` otherwise, and nothing is queued)."""
    ids = [p.pk for p in participants]
    now = timezone.now()
    rows = list(
        Participant.objects.filter(pk__in=ids)
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
                    channel=Delivery.Channel.EMAIL,
                    kind=kind,
                    status__in=Delivery.PENDING,
                )
            ),
        )
        .order_by("pk")
    )
    site_ids = {p.site_id for p in rows}
    if site_ids - set(
        Sender.objects.filter(site_id__in=site_ids).values_list("site_id", flat=True)
    ):
        raise NoSender()
    # Decrypting only to know whether there is an address: the few hundred of a study.
    with_email = {
        c.participant_id
        for c in Contact.objects.filter(participant_id__in=[p.pk for p in rows]).only(
            "participant_id", "email"
        )
        if c.email
    }
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
            else Skip.NO_ADDRESS
            if p.pk not in with_email
            else None
        )
        if reason is not None:
            result.skipped[reason] += 1
            continue
        new.append(
            Delivery(
                participant_id=p.pk,
                channel=Delivery.Channel.EMAIL,
                kind=kind,
                due_at=due_at or now,
            )
        )
    with transaction.atomic():
        created = Delivery.objects.bulk_create(new, batch_size=1000)
        result.ids = [d.pk for d in created]
        size = settings.HYOKA_EMAIL_BATCH_SIZE
        if due_at is None or due_at <= now:
            for start in range(0, len(result.ids), size):
                send_email_deliveries.delay_on_commit(result.ids[start : start + size])
    return result


def deliveries_cancel(*, participant_ids: Iterable[int], reason: str) -> int:
    """Cancel the still-queued deliveries of these participants (a message being sent at
    this instant is not stopped). Returns how many were cancelled."""
    return Delivery.objects.filter(
        participant_id__in=list(participant_ids), status=Delivery.Status.QUEUED
    ).update(status=Delivery.Status.CANCELLED, finished_at=timezone.now(), last_error=reason)


@cache
def _cancel_one_statement(vendor: str) -> str:
    q = connection.ops.quote_name  # names from the model, no value: nothing to inject
    return (
        f"UPDATE {q(Delivery._meta.db_table)} "  # noqa: S608
        f"SET {q('status')} = %s, {q('finished_at')} = %s, {q('last_error')} = %s "
        f"WHERE {q('participant_id')} = %s AND {q('status')} = %s"
    )


def deliveries_cancel_one(*, participant_id: int, reason: str) -> None:
    """``deliveries_cancel`` for one participant, after every submission: one statement
    written once. On the participant's path the ORM's building of this UPDATE was a
    fifth of a submission's CPU (bench/submit.py against the code before fieldwork)."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            _cancel_one_statement(connection.vendor),
            [
                Delivery.Status.CANCELLED.value,
                now,
                reason,
                participant_id,
                Delivery.Status.QUEUED.value,
            ],
        )


def deliveries_erase(*, participant_id: int, reason: str) -> None:
    """For an erased participant: cancel what is queued, and drop the reasons of earlier
    failures (an SMTP server's answer often quotes the address: "550 <hanako@…>: no such
    user"). The rows stay, anonymous, for the counts of what was sent."""
    deliveries_cancel(participant_ids=[participant_id], reason=reason)
    Delivery.objects.filter(participant_id=participant_id).exclude(last_error=reason).update(
        last_error=reason
    )
