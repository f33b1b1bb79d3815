"""Reads of fieldwork, with the joins their callers need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from surveys.models import ErasureRecord, Participant, Response

from . import crypto
from .models import Contact, Delivery


def no_longer_reachable() -> Q:
    """Deliveries whose participant must get nothing more: they submitted, withdrew, or
    their personal data was erased (a condition on ``Delivery``).

    Only correlated subqueries, never a join: an UPDATE filtered through a join is made by
    Django into ``WHERE id IN (SELECT ...)``, and PostgreSQL does not check a subquery's
    conditions again on the row it waited for, so the claim's ``status = 'queued'`` must
    stay on the UPDATE's own table (two workers would otherwise both claim a row;
    ``tests/fieldwork/test_sending_concurrency.py``)."""
    submitted = Response.objects.filter(
        participant_id=OuterRef("participant_id"), status=Response.Status.SUBMITTED
    )
    erased = ErasureRecord.objects.filter(participant_id=OuterRef("participant_id"))
    withdrawn = Participant.objects.filter(
        pk=OuterRef("participant_id"), status=Participant.Status.WITHDRAWN
    )
    return Q(Exists(submitted)) | Q(Exists(erased)) | Q(Exists(withdrawn))


def due_email_ids(*, now: datetime, ids: Sequence[int] | None = None, limit: int) -> list[int]:
    """Queued e-mail deliveries due by ``now`` (among ``ids``, if given), oldest first."""
    queryset = Delivery.objects.filter(
        channel=Delivery.Channel.EMAIL, status=Delivery.Status.QUEUED, due_at__lte=now
    )
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    return list(queryset.order_by("due_at", "pk").values_list("pk", flat=True)[:limit])


def deliveries_for_sending(ids: Sequence[int]) -> list[Delivery]:
    """Claimed deliveries with what their messages need (participant, contact, site,
    study, sender), oldest first."""
    return list(
        Delivery.objects.select_related(
            "campaign",
            "participant__contact",
            "participant__site__study",
            "participant__site__sender",
        )
        .filter(pk__in=list(ids))
        .order_by("due_at", "pk")
    )


def contact_by_line_user(line_user_id: str) -> Contact | None:
    """The contact holding this LINE user id, found by its blind index (under any key, so
    that a key rotation in progress loses nobody); the decrypted id is compared too."""
    indexes = crypto.line_user_indexes(line_user_id)
    if not indexes:
        return None
    for contact in Contact.objects.filter(line_user_index__in=indexes).select_related(
        "participant"
    ):
        if contact.line_user_id == line_user_id:
            return contact
    return None


def deliveries_of(participant: Participant) -> QuerySet[Delivery]:
    return Delivery.objects.filter(participant=participant).order_by("-created_at", "-pk")
