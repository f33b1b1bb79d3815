"""The rendering task: it takes a signed-off evaluation's id and renders, signs and
stores its PDF (``rendering``). Its name stays ``kpi.render_evaluation``."""

from __future__ import annotations

from celery import shared_task

from kpi.scoring.tasks import MAX_RETRIES, RETRY_ERRORS

from . import rendering


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
    try:
        evaluation = rendering.evaluation_render_signed(evaluation_id=evaluation_id)
    except RETRY_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            rendering.evaluation_render_failed(evaluation_id=evaluation_id, error=str(exc))
            raise
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    except Exception as exc:
        rendering.evaluation_render_failed(evaluation_id=evaluation_id, error=repr(exc))
        raise
    return evaluation.rendering
