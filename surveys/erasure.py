"""Erasing participants' personal data: on request (a manager, ``manage.py
erase_participant``) and when a closed study's retention period has ended (a daily task).

A participant's personal data, as Hyoka holds it: their **reference** (a pseudonym, but
one the municipality can tie to a person), their **invitation link**, the **free text**
they wrote, and the **Idempotency-Key** an API client sent with their submission (a
client's own string, which may carry anything). Erasure replaces the reference with
``erased-<id>``, the link with one nobody holds, each text answer with ``""`` and the key
with nothing, in the live rows and in **every historical row** of the participant, their
response and answers (the append-only triggers let exactly this UPDATE through:
``surveys/appendonly.py``), and in the admin's log of changes. What stays is anonymous:
the closed and number answers and the response's choice bits, so that every count, KPI
and signed evaluation recomputes exactly; the participant's status and dates; the act
itself (an ``ErasureRecord``: who, when, why; and a "personal data erased" record in the
participant's history). Every stored **export file** that may hold the participant's
reference or text is deleted, its record kept (``exports/expiry.py``).

Another app that keeps personal data of participants extends erasure through the
``participant_erasing`` signal (``surveys/signals.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from . import links, scoping, tokens
from .errors import ErasureRefused
from .exports.expiry import participant_files_erase
from .history import Reason, recorded_by, save_with_reason
from .models import (
    Answer,
    ErasureRecord,
    Membership,
    Participant,
    Response,
    RetentionPurge,
    Study,
)
from .signals import participant_erasing

logger = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "erased-"

# The personal columns of the historical tables and the one value erasure may write into
# each, as the trigger's condition (``appendonly.redaction_operation``). Migration
# ``0009_erasure_records_append_only_history_redactable`` holds a frozen copy.
HISTORY_REDACTIONS = {
    "surveys_historicalparticipant": {
        "reference": f'NEW."reference" = \'{PSEUDONYM_PREFIX}\' || NEW."id"',
    },
    "surveys_historicalresponse": {"idempotency_key": 'NEW."idempotency_key" IS NULL'},
    "surveys_historicalanswer": {
        "text_value": 'OLD."text_value" IS NOT NULL AND NEW."text_value" = \'\'',
    },
}


def pseudonym(participant: Participant) -> str:
    """The neutral reference an erased participant keeps: unique (by id) and meaningless."""
    return f"{PSEUDONYM_PREFIX}{participant.pk}"


@dataclass(frozen=True)
class Erasure:
    record: ErasureRecord
    new: bool  # False: the participant had been erased before, and nothing was done now


def participant_erase(
    *,
    participant: Participant,
    by: AbstractBaseUser | AnonymousUser | None,
    reason: str,
    purge: RetentionPurge | None = None,
) -> Erasure:
    """Erase the participant's personal data (see the module's docstring), once.

    ``by`` is the user who erases, who needs the manager role on the participant's site,
    or ``None`` for the system (the retention purge; a command run without ``--by``).
    Erasing someone already erased returns their first record with ``new=False``, and
    changes nothing unless text landed after it (then it is blanked too). One
    transaction, the ``participant_erasing`` receivers included."""
    reason = (reason or "").strip()
    if not reason:
        raise ErasureRefused(
            _("Give the reason for the erasure."), errors={"reason": _("Give the reason.")}
        )
    if by is not None and not scoping.has_role(by, participant.site_id, Membership.Role.MANAGER):
        raise ErasureRefused()
    with transaction.atomic():
        # Locked: a concurrent erasure of the same participant waits, then finds the record.
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        done = ErasureRecord.objects.filter(participant=participant).first()
        user = by if by is not None and by.is_authenticated else None
        if done is not None:
            # A submission in flight while the participant was erased (its link read just
            # before) can store text just after: erasing again sweeps it, with no new record.
            response = Response.objects.filter(participant=participant).first()
            if response is not None:
                if _erase_response(response, user):
                    # A file exported since may hold that text.
                    participant_files_erase(participant=participant, purge=False)
                _scrub_history(participant, response)
            return Erasure(record=done, new=False)
        record = ErasureRecord.objects.create(
            participant=participant,
            erased_by_id=user.pk if user is not None else None,
            reason=reason,
            purge=purge,
        )
        _erase_participant(participant, user)
        response = Response.objects.filter(participant=participant).first()
        if response is not None:
            response.participant = participant  # as erased: its name in the admin's log
            _erase_response(response, user)
        _scrub_history(participant, response)
        _scrub_admin_log(participant, response)
        participant_files_erase(participant=participant, purge=purge is not None)
        participant_erasing.send(
            sender=Participant, participant=participant, record=record, by=user, reason=reason
        )
    logger.info(
        "personal data of participant %s erased (erasure record %s, by %s)",
        participant.pk,
        record.pk,
        user.get_username() if user is not None else "the system",
    )
    return Erasure(record=record, new=True)


def _erase_participant(participant: Participant, user: Any) -> None:
    participant.reference = pseudonym(participant)
    # A fresh hash of a token that is thrown away: the old link finds nobody, and nobody
    # holds the new one. What the link was derived from goes, and so does the hash of a
    # link from before links were derived (``surveys/links.py``).
    _token, participant.token_hash = tokens.new_token()
    links.participant_drop_links(participant=participant)
    with recorded_by(user):
        save_with_reason(
            participant,
            Reason.PERSONAL_DATA_ERASED.value,
            update_fields=["reference", "token_hash"],
        )


def _erase_response(response: Response, user: Any) -> bool:
    """Blank the text answers (draft or submitted; the row stays, so "answered" stays
    true) and forget the client's key. Closed answers and the choice bits stay. Whether
    there was text to blank."""
    texts = list(
        Answer.objects.filter(response=response, text_value__isnull=False).exclude(text_value="")
    )
    for answer in texts:
        answer.text_value = ""
    if texts:
        bulk_update_with_history(
            texts,
            Answer,
            ["text_value"],
            default_user=user,
            default_change_reason=Reason.PERSONAL_DATA_ERASED.value,
        )
    if response.idempotency_key is not None:
        response.idempotency_key = None
        with recorded_by(user):
            save_with_reason(
                response, Reason.PERSONAL_DATA_ERASED.value, update_fields=["idempotency_key"]
            )
    return bool(texts)


def _scrub_history(participant: Participant, response: Response | None) -> None:
    """The erased values out of every earlier historical row: the only UPDATE the
    append-only triggers let through (``HISTORY_REDACTIONS``)."""
    history: Any = Participant.history.model  # type: ignore[attr-defined]
    name = pseudonym(participant)
    history.objects.filter(id=participant.pk).exclude(reference=name).update(reference=name)
    if response is None:
        return
    responses: Any = Response.history.model  # type: ignore[attr-defined]
    responses.objects.filter(id=response.pk, idempotency_key__isnull=False).update(
        idempotency_key=None
    )
    answers: Any = Answer.history.model  # type: ignore[attr-defined]
    answers.objects.filter(response_id=response.pk, text_value__isnull=False).exclude(
        text_value=""
    ).update(text_value="")


def _scrub_admin_log(participant: Participant, response: Response | None) -> None:
    """Django's admin log names each changed object as it then read ("P-0001"): rename."""
    rows: list[models.Model] = [participant] + ([response] if response is not None else [])
    for obj in rows:
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(type(obj)), object_id=str(obj.pk)
        ).update(object_repr=str(obj)[:200])


# --- Retention ------------------------------------------------------------------------


def purge_reason(study: Study) -> str:
    """The system's reason, in fixed English words like the history's."""
    return (
        f"retention period ended: {study.retention_months} months after "
        f"{study.period_end.isoformat()} (study {study.code})"
    )


def studies_purge_expired(*, now: datetime | None = None) -> list[RetentionPurge]:
    """Erase the personal data of every closed study whose retention period has ended by
    ``now`` (the day, in the project's time zone): one ``RetentionPurge`` per study where
    someone was erased. Idempotent: run again, it finds nobody left to erase."""
    today = timezone.localdate(now or timezone.now())
    purges = []
    for study in Study.objects.filter(status=Study.Status.CLOSED).order_by("pk"):
        if today >= study.personal_data_expires_on:
            purge = study_purge(study=study, now=now)
            if purge is not None:
                purges.append(purge)
    return purges


def study_purge(*, study: Study, now: datetime | None = None) -> RetentionPurge | None:
    """Erase every not yet erased participant of ``study`` (whatever its dates: the
    caller decides it is due), in one transaction; ``None`` if there was nobody."""
    with transaction.atomic():
        pending = Participant.objects.filter(site__study=study, erasure__isnull=True)
        if not pending.exists():
            return None
        purge = RetentionPurge.objects.create(
            study=study,
            purged_at=now or timezone.now(),
            expired_on=study.personal_data_expires_on,
            participants=0,
        )
        reason = purge_reason(study)
        erased = sum(
            participant_erase(participant=p, by=None, reason=reason, purge=purge).new
            for p in list(pending.order_by("pk"))
        )
        if not erased:  # a concurrent purge erased them first: it has the report
            purge.delete()
            return None
        purge.participants = erased
        purge.save(update_fields=["participants"])
    logger.info(
        "retention purge of study %s: personal data of %d participants erased "
        "(expired on %s, purge %s)",
        study.code,
        erased,
        purge.expired_on.isoformat(),
        purge.pk,
    )
    return purge
