"""Celery tasks: each takes ids, loads, and calls one service."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from surveys.models import Response, Study

from . import services
from .models import EvaluationRun

logger = logging.getLogger(__name__)

RETRY_ERRORS = (*services.TRANSIENT_DB_ERRORS, BrokerError)
MAX_RETRIES = 5


@shared_task(
    bind=True,
    name="kpi.score_run",
    acks_late=True,  # the run is idempotent: a redelivery after a worker died is harmless
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=540,
    time_limit=600,
)
def score_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    try:
        run = services.run_execute(run_id=run_id)
    except services.RunMissing:
        # Never retried: a missing row will not appear by waiting (enqueueing happens
        # only after commit).
        logger.warning("scoring run %s does not exist; nothing to do", run_id)
        return "missing"
    except RETRY_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            services.run_fail(run_id=run_id, error=f"gave up after {MAX_RETRIES} retries: {exc}")
            raise
        # Exponential backoff with a cap: 2, 4, 8, 16, 32 s.
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    except SoftTimeLimitExceeded:
        services.run_fail(run_id=run_id, error="the run exceeded its time limit")
        raise
    return run.status


@shared_task(name="kpi.score_open_studies")
def score_open_studies() -> int:
    """Nightly: score every open study."""
    studies = Study.objects.filter(status=Study.Status.OPEN)
    for study in studies:
        services.run_request(study=study, trigger=EvaluationRun.Trigger.SCHEDULE)
    return len(studies)


@shared_task(name="kpi.score_unscored")
def score_unscored() -> int:
    """Backstop, every few minutes: re-send runs stuck in the queue, and score open studies
    whose latest submission is newer than their latest scoring's cut-off (submissions made
    while the broker was down)."""
    # A queued run older than this was probably never delivered (the broker was down).
    stuck_after = dt.timedelta(seconds=settings.HYOKA_BACKSTOP_STUCK_AFTER)
    now = timezone.now()
    stuck = EvaluationRun.objects.filter(
        status=EvaluationRun.Status.QUEUED, created_at__lt=now - stuck_after
    ).values_list("pk", flat=True)
    for run_id in stuck:
        services._enqueue(run_id)
    latest = dict(
        Response.objects.filter(status=Response.Status.SUBMITTED, site__study__status="open")
        .values_list("site__study_id")
        .annotate(last=Max("submitted_at"))
        .order_by()
    )
    scored = dict(
        EvaluationRun.objects.filter(status=EvaluationRun.Status.SUCCEEDED)
        .values_list("study_id")
        .annotate(cutoff=Max("cutoff"))
        .order_by()
    )
    pending = dict(
        EvaluationRun.objects.filter(
            status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
        )
        .values_list("study_id")
        .annotate(n=Max("pk"))
        .order_by()
    )
    behind = [
        study_id
        for study_id, last in latest.items()
        if study_id not in pending and (scored.get(study_id) is None or last > scored[study_id])
    ]
    for study_id in behind:
        services.run_request_debounced(study_id=study_id, trigger=EvaluationRun.Trigger.BACKSTOP)
    return len(stuck) + len(behind)


@shared_task(
    bind=True,
    name="kpi.render_evaluation",
    acks_late=True,  # rendering stores the file once: a redelivery is a no-op
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=120,
    time_limit=180,
)
def render_evaluation(self, evaluation_id: int) -> str:  # type: ignore[no-untyped-def]
    from . import evaluations

    try:
        evaluation = evaluations.evaluation_render_signed(evaluation_id=evaluation_id)
    except RETRY_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            evaluations.evaluation_render_failed(evaluation_id=evaluation_id, error=str(exc))
            raise
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    except Exception as exc:
        evaluations.evaluation_render_failed(evaluation_id=evaluation_id, error=repr(exc))
        raise
    return evaluation.rendering
