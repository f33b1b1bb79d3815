"""Writes of the KPI app: requesting and executing scoring runs.

A run is a row created (queued) before its task is enqueued, after commit. Executing it
claims the row with a compare-and-set, counts and scores outside any transaction, then
writes every result and the final status in one transaction that locks the run: running
it twice, or twice at once, leaves exactly one set of results.
"""

from __future__ import annotations

import logging
import time
import traceback

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from surveys.models import Study

from .counting import count_study, plan_for, total
from .definitions import study_definitions
from .models import EvaluationRun, KPIResult
from .scoring import score_all

logger = logging.getLogger(__name__)

# Errors worth a retry: the database restarting, a dropped connection, a lock timeout.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)

# Automatic runs of a study are debounced into slots of this many seconds.
DEBOUNCE_SECONDS = 60

# The slot of each study that this process knows to be taken. Every submission asks for a
# scoring: the memory spares all but the first of a minute a query. (Should the slot's run
# vanish meanwhile, the backstop, kpi.tasks.score_unscored, scores what it missed.)
_TAKEN_SLOTS: dict[int, int] = {}


def _enqueue(run_id: int, *, countdown: float | None = None) -> None:
    """Hand the run to Celery once this transaction commits (config.celery.Task: a broker
    that is down never fails the caller; the run stays queued for the backstop)."""
    from .tasks import score_run

    score_run.apply_async_on_commit((run_id,), countdown=countdown)


class RunMissing(LookupError):
    """The run was deleted (or its transaction rolled back) before the task ran."""


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
    _enqueue(run.pk)
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
    _enqueue(run.pk, countdown=countdown)
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


def run_execute(*, run_id: int) -> EvaluationRun:
    """Score the run's study and store its results. A no-op on a finished run.

    Transient database errors propagate (the task retries them); any other error marks
    the run failed with its message.
    """
    now = timezone.now()
    claimed = EvaluationRun.objects.filter(
        pk=run_id, status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
    ).update(status=EvaluationRun.Status.RUNNING, attempts=F("attempts") + 1)
    run = EvaluationRun.objects.select_related("study").filter(pk=run_id).first()
    if run is None:
        raise RunMissing(f"no evaluation run {run_id}")
    if not claimed:
        return run
    if run.started_at is None:
        # The cut-off is fixed by the first attempt, so a retry counts the same responses.
        EvaluationRun.objects.filter(pk=run_id, started_at=None).update(started_at=now, cutoff=now)
        run.refresh_from_db()
    try:
        definitions = study_definitions(run.study_id)
        plan = plan_for(definitions)
        site_ids = list(run.study.sites.order_by("code").values_list("pk", flat=True))
        assert run.cutoff is not None
        per_site = count_study(
            study_id=run.study_id, site_ids=site_ids, cutoff=run.cutoff, plan=plan
        )
        overall = total(per_site.values())
        results = score_all(definitions, per_site, overall, plan)
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        run_fail(run_id=run_id, error=_describe(exc))
        raise
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().select_related("study").get(pk=run_id)
        if run.is_finished:
            return run  # another execution of this run finished first
        run.results.all().delete()
        for result in results:
            result.run = run
        KPIResult.objects.bulk_create(results, batch_size=500)
        run.status = EvaluationRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.responses_counted = overall.respondents
        run.definitions = [d.to_json() for d in definitions]
        run.error = ""
        run.save()
    return run


def run_fail(*, run_id: int, error: str) -> None:
    """Record that the run failed (unless it has finished meanwhile)."""
    EvaluationRun.objects.filter(
        pk=run_id, status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
    ).update(status=EvaluationRun.Status.FAILED, finished_at=timezone.now(), error=error[:4000])


def _describe(exc: BaseException) -> str:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return detail if not settings.DEBUG else traceback.format_exc()
