"""The audit trail of participants' own writes: their responses and answers.

A participant's save or submission is recorded with as few statements as the submission
path allows (it must stay cheap): the response's historical row and the rows of the
answers that changed are each written with one INSERT, by hand rather than through
simple-history's per-row signals. The participant has no account: the records name no
user, and their reason says who acted ("participant submission (web)").

Every other write (managers', commands', tasks') is recorded by simple-history's signals
(``surveys/history.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from .history import Reason
from .models import Answer, Response

_NEW = "_audit_unrecorded_creation"

PARTICIPANT_REASONS = {
    (Response.Source.WEB, False): Reason.DRAFT_WEB,
    (Response.Source.API, False): Reason.DRAFT_API,
    (Response.Source.WEB, True): Reason.SUBMISSION_WEB,
    (Response.Source.API, True): Reason.SUBMISSION_API,
}


def participant_reason(source: str, *, submission: bool) -> str:
    reason = PARTICIPANT_REASONS.get((Response.Source(source), submission))
    if reason is None:  # another source acting as the participant: say so plainly
        kind = "submission" if submission else "draft"
        return f"participant {kind} ({source})"
    return reason.value


def history_rows(
    model: type[models.Model],
    objs: Iterable[models.Model],
    history_type: str,
    *,
    reason: str,
    when: Any,
    user: Any = None,
) -> list[models.Model]:
    """Historical rows of ``objs`` as they are now (what simple-history's
    ``bulk_history_create`` builds, with any history type and without consulting the
    request for a user)."""
    historical: Any = model.history.model  # type: ignore[attr-defined]
    fields = historical.tracked_fields
    return [
        historical(
            history_date=when,
            history_type=history_type,
            history_user=user,
            history_change_reason=reason,
            **{field.attname: getattr(obj, field.attname) for field in fields},
        )
        for obj in objs
    ]


def save_unrecorded(response: Response) -> None:
    """Create ``response`` without its historical row: ``save_recorded`` writes it once,
    as created, with the state the transaction ends in."""
    setattr(response, _NEW, True)
    response.save_without_historical_record()  # type: ignore[attr-defined]


def is_unrecorded(response: Response) -> bool:
    return bool(getattr(response, _NEW, False))


def save_recorded(response: Response, *, update_fields: Sequence[str], reason: str) -> None:
    """Save ``response`` and write its one historical row: "created" if this transaction
    made it (``save_unrecorded``), else "changed"."""
    response.save_without_historical_record(update_fields=update_fields)  # type: ignore[attr-defined]
    history_type = "+" if is_unrecorded(response) else "~"
    historical = history_rows(
        Response, [response], history_type, reason=reason, when=response.updated_at
    )
    Response.history.model.objects.bulk_create(historical)  # type: ignore[attr-defined]
    if is_unrecorded(response):
        delattr(response, _NEW)


def _key(answer: Answer) -> tuple[int, int | None, str | None, Decimal | None]:
    number = answer.number_value
    return (
        answer.question_id,
        answer.choice_id,
        answer.text_value,
        None if number is None else Decimal(number).normalize(),
    )


def draft_save_is_recorded(response: Response) -> bool:
    """Whether a save of this (stored) draft gets its own history records: only when it
    comes ``HYOKA_DRAFT_HISTORY_INTERVAL`` seconds or more after the save before it.

    The questionnaire autosaves a few seconds after each change, so recording every save
    would write a set of rows per pause in typing, and a link could grow the history
    without end. What the trail keeps instead, for each response: the first save (when
    the draft was started, with its answers), the first save after each pause (a
    participant coming back), the draft as it last stood before each of those and before
    the submission (its answers, recorded then at the time of that last save), and the
    submission. Between two recorded writes, an answer that was recorded and is replaced
    gets its "-" record when it goes; answers added and replaced in between are not kept.
    """
    interval = settings.HYOKA_DRAFT_HISTORY_INTERVAL
    return (timezone.now() - response.updated_at).total_seconds() >= interval


def answers_replace(
    response: Response,
    rows: list[Answer],
    *,
    reason: str,
    record: bool = True,
    final: bool = False,
) -> None:
    """Make ``rows`` the response's answers, touching only those that changed, and
    record each added and removed one (one INSERT of historical rows in all).

    First, answers an earlier unrecorded save left (``Answer.recorded`` false) are
    recorded as created when that save was made (the response's ``updated_at``, for a
    draft's reason), so that "+" and "-" records always add up to the answers as they
    stood. With ``record`` false (an autosave soon after the last one) only answers
    already recorded get their "-" as they go; the new ones are stored unrecorded.
    ``final``: the response is being submitted and its answers will not change again,
    so the rows just caught up need not be marked.

    A response created in this transaction has no answers to read or remove."""
    old = [] if is_unrecorded(response) else list(Answer.objects.filter(response=response))
    old_keys = {_key(a) for a in old}
    new_keys = {_key(a) for a in rows}
    removed = [a for a in old if _key(a) not in new_keys]
    added = [a for a in rows if _key(a) not in old_keys]
    history: list[models.Model] = []
    if record:
        pending = [a for a in old if not a.recorded]
        draft = participant_reason(response.source, submission=False)
        history += history_rows(Answer, pending, "+", reason=draft, when=response.updated_at)
        kept = [a.pk for a in pending if _key(a) in new_keys]
        if kept and not final:
            Answer.objects.filter(pk__in=kept).update(recorded=True)
    else:
        removed_recorded = [a for a in removed if a.recorded]
        for answer in added:
            answer.recorded = False
    if removed:
        # A plain DELETE: ``QuerySet.delete()`` would load the rows again and write one
        # historical row per answer through the signals; they are recorded below.
        Answer.objects.filter(pk__in=[a.pk for a in removed])._raw_delete(Answer.objects.db)  # type: ignore[attr-defined]
    if added:
        Answer.objects.bulk_create(added)
        if any(a.pk is None for a in added):  # a database that returns no ids from bulk
            by_key = {_key(a): a for a in Answer.objects.filter(response=response)}
            added = [by_key[_key(a)] for a in added]
    when = timezone.now()
    if record:
        history += history_rows(Answer, removed, "-", reason=reason, when=when)
        history += history_rows(Answer, added, "+", reason=reason, when=when)
    else:
        history += history_rows(Answer, removed_recorded, "-", reason=reason, when=when)
    if history:
        Answer.history.model.objects.bulk_create(history)  # type: ignore[attr-defined]
