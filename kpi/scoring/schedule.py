"""Beat's scoring jobs (``CELERY_BEAT_SCHEDULE`` names them): the nightly scoring and the
backstop. They request runs (``services``), which the scoring task then executes."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from surveys.models import Response, Study

from . import services
from .models import EvaluationRun


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
        services.run_enqueue(run_id)
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
