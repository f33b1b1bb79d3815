"""The export task: takes an id, calls one service (``running.export_run``)."""

from __future__ import annotations

from celery import shared_task

from .running import export_run


@shared_task(
    name="surveys.export_responses",
    acks_late=True,  # idempotent: the claim is a compare-and-set, a redelivery is a no-op
    reject_on_worker_lost=True,
)
def export_responses(export_id: int) -> None:
    """Writes a queued response export."""
    export_run(export_id=export_id)
