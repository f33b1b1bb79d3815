"""Celery tasks of ``surveys``. Found by the Celery app's ``autodiscover_tasks()``
(config/celery.py), which imports ``<app>.tasks`` for every installed app."""

from __future__ import annotations

from celery import shared_task

from . import erasure
from .exports.expiry import exports_sweep
from .exports.tasks import export_responses  # noqa: F401  (found by autodiscovery)


@shared_task(name="hyoka.ping", ignore_result=False)
def ping() -> str:
    """A no-op round trip through the broker and a worker: proves the worker set-up end to
    end (the worker test, a health check) without touching the database."""
    return "pong"


@shared_task(
    name="surveys.purge_expired_personal_data",
    acks_late=True,  # idempotent: a redelivery finds nobody left to erase
    reject_on_worker_lost=True,
    soft_time_limit=540,
    time_limit=600,
)
def purge_expired_personal_data() -> int:
    """Daily: erase the personal data of closed studies whose retention period has ended
    (each purge is recorded and logged by the service). Returns the number of studies
    purged."""
    return len(erasure.studies_purge_expired())


@shared_task(
    name="surveys.sweep_exports",
    acks_late=True,  # idempotent: each export is changed once, under its row's lock
    reject_on_worker_lost=True,
    soft_time_limit=540,
    time_limit=600,
)
def sweep_exports() -> dict[str, int]:
    """Every quarter of an hour: export files past ``HYOKA_EXPORT_FILE_DAYS`` deleted,
    exports left "being written" by a dead worker failed. Returns both counts."""
    sweep = exports_sweep()
    return {"expired": sweep.expired, "failed": sweep.failed}
