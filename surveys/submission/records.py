"""The history of a participant's response and answers: what a record is, and the one way
every write of theirs records it.

A record is the row as it is stored, copied into simple-history's table with when, how
(``+`` created, ``~`` changed, ``-`` removed), why (the reason: "participant submission
(web)") and who: nobody, since a participant has no account. It is always written the same
way, by an ``INSERT … SELECT`` from the live table (``history_insert``), so that it holds
exactly what was stored:

- the one-statement writes on PostgreSQL (``statements.py``) chain it into their ``WITH``
  clauses, reading the rows from the statement's own ``RETURNING``;
- the general path (``pipeline.py``) writes with the ORM, then calls ``record``, which
  runs the same ``INSERT … SELECT`` over the rows it names;
- imported responses (``services.responses_import``) are recorded by ``record`` too.

simple-history's own signals never fire for these writes (the pipeline saves without
them); they record everything else (managers' changes, erasure).

Drafts are recorded at most every ``HYOKA_DRAFT_HISTORY_INTERVAL``
(``draft_save_is_recorded``): an autosave soon after the last one stores its answers with
``Answer.recorded`` false, and the next recorded write records them first, as the draft
stood.
"""

# ruff: noqa: S608  (table and column names come from the models; every value is a parameter)

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.utils import timezone

from ..history import Reason
from ..models import Response

CREATED, CHANGED, REMOVED = "+", "~", "-"
BATCH = 1000

PARTICIPANT_REASONS = {
    (Response.Source.WEB, False): Reason.DRAFT_WEB,
    (Response.Source.API, False): Reason.DRAFT_API,
    (Response.Source.WEB, True): Reason.SUBMISSION_WEB,
    (Response.Source.API, True): Reason.SUBMISSION_API,
}


def participant_reason(source: str, *, submission: bool) -> str:
    """The reason a participant's draft save or submission is recorded with."""
    reason = PARTICIPANT_REASONS.get((Response.Source(source), submission))
    if reason is None:  # another source acting as the participant: say so plainly
        kind = "submission" if submission else "draft"
        return f"participant {kind} ({source})"
    return reason.value


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


def history_insert(db: BaseDatabaseWrapper, model: type[Model], source: str, kind: str) -> str:
    """The record of the rows of ``model`` in ``source`` (its table, or a statement's
    ``RETURNING *``) as they are there: ``INSERT … SELECT`` of their tracked columns,
    changed as ``kind`` by nobody, at the first parameter, for the reason in the second.
    A caller adds its ``WHERE``."""
    assert kind in {CREATED, CHANGED, REMOVED}
    q = db.ops.quote_name
    historical: Any = model.history.model  # type: ignore[attr-defined]
    tracked = [q(f.column) for f in historical.tracked_fields]
    extra = [q(c) for c in ("history_date", "history_type", "history_change_reason")]
    extra.append(q("history_user_id"))
    return (
        f"INSERT INTO {q(historical._meta.db_table)} ({', '.join(tracked + extra)}) "
        f"SELECT {', '.join(f'{source}.{c}' for c in tracked)}, %s, '{kind}', %s, NULL "
        f"FROM {source}"
    )


def record(
    model: type[Model],
    kind: str,
    *,
    where: str,
    values: Sequence[Any],
    reason: str,
    when: datetime,
) -> None:
    """Record the stored rows of ``model`` whose column ``where`` is one of ``values``, as
    they are now (``REMOVED``: before they are deleted): one ``INSERT … SELECT``."""
    db = connections[DEFAULT_DB_ALIAS]
    q = db.ops.quote_name
    table = q(model._meta.db_table)
    start = history_insert(db, model, table, kind) + f" WHERE {table}.{q(where)} IN "
    stamp = db.ops.adapt_datetimefield_value(when)
    with db.cursor() as cursor:
        for i in range(0, len(values), BATCH):  # an import's thousands, in a few statements
            batch = values[i : i + BATCH]
            cursor.execute(f"{start}({', '.join(['%s'] * len(batch))})", [stamp, reason, *batch])
