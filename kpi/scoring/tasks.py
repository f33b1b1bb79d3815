"""The scoring task: it takes a run's id and executes it (``execution``). Its name stays
``kpi.score_run`` wherever the module lives: queued tasks carry it."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerError

from . import execution

logger = logging.getLogger(__name__)

RETRY_ERRORS = (*execution.TRANSIENT_DB_ERRORS, BrokerError)
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
        run = execution.run_execute(run_id=run_id)
    except execution.RunMissing:
        # Never retried: a missing row will not appear by waiting (enqueueing happens
        # only after commit).
        logger.warning("scoring run %s does not exist; nothing to do", run_id)
        return "missing"
    except RETRY_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            execution.run_fail(run_id=run_id, error=f"gave up after {MAX_RETRIES} retries: {exc}")
            raise
        # Exponential backoff with a cap: 2, 4, 8, 16, 32 s.
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    except SoftTimeLimitExceeded:
        execution.run_fail(run_id=run_id, error="the run exceeded its time limit")
        raise
    return run.status
