"""Writes of scoring: requesting runs.

A run is a row created (queued) before its task is enqueued, after commit; the task
executes it (``execution``).
"""

from __future__ import annotations

import time

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, connection, transaction

from surveys.models import Study

from .models import EvaluationRun
from .tasks import score_run

# Automatic runs of a study are debounced into slots of this many seconds.
DEBOUNCE_SECONDS = 60

# The slot of each study that this process knows to be taken. Every submission asks for a
# scoring: the memory spares all but the first of a minute a query. (Should the slot's run
# vanish meanwhile, the backstop, kpi.scoring.schedule.score_unscored, scores what it missed.)
_TAKEN_SLOTS: dict[int, int] = {}


def run_enqueue(run_id: int, *, countdown: float | None = None) -> None:
    """Hand the run to Celery once this transaction commits (config.celery.Task: a broker
    that is down never fails the caller; the run stays queued for the backstop)."""
    score_run.apply_async_on_commit((run_id,), countdown=countdown)


def run_request(
    *,
    study: Study,
    trigger: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> EvaluationRun:
    """Queue a scoring of ``study``; the task is enqueued once this transaction commits."""
    run = EvaluationRun.objects.create(
        study=study,
        trigger=trigger,
        requested_by_id=user.pk if user is not None and user.is_authenticated else None,
    )
    run_enqueue(run.pk)
    return run


def run_request_debounced(*, study_id: int, trigger: str) -> EvaluationRun | None:
    """Queue an automatic scoring unless one is already queued for this study in the
    current one-minute slot. A burst of submissions causes at most one run per study per
    minute: the first of the slot creates a run that starts when the slot ends, so it
    counts the whole burst; the others find the slot taken (a unique constraint, so
    concurrent requests cannot both create one)."""
    now = time.time()
    slot = int(now // DEBOUNCE_SECONDS)
    # After the first submission of a minute the slot is taken: this process remembers it
    # (and asks no more), others look before inserting, since a failing INSERT would cost
    # a round trip and an ERROR line in the database's log each time.
    if _TAKEN_SLOTS.get(study_id) == slot:
        return None
    if _slot_taken(study_id, slot):
        _TAKEN_SLOTS[study_id] = slot
        return None
    try:
        with transaction.atomic():
            run = EvaluationRun.objects.create(
                study_id=study_id, trigger=trigger, debounce_slot=slot
            )
    except IntegrityError:
        _TAKEN_SLOTS[study_id] = slot
        return None
    _TAKEN_SLOTS[study_id] = slot
    countdown = (slot + 1) * DEBOUNCE_SECONDS - now
    run_enqueue(run.pk, countdown=countdown)
    return run


def _slot_taken(study_id: int, slot: int) -> bool:
    """Whether the study's run of this slot exists. Every submission asks, so this is a
    fixed statement rather than a queryset: compiling the queryset cost several times
    the round trip on the project's 2-core machine (see surveys/submission/statements.py)."""
    table = connection.ops.quote_name(EvaluationRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE study_id = %s AND debounce_slot = %s",  # noqa: S608
            [study_id, slot],
        )
        return cursor.fetchone() is not None
