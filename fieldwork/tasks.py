"""Fieldwork's Celery tasks (found by ``autodiscover_tasks``). A task takes ids and calls
one service (``sending.py``); its ``name=`` is what queues and beat know."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, InterfaceError
from django.utils import timezone

from . import sending
from .campaigns import scheduling
from .line import sending as line_sending

logger = logging.getLogger(__name__)

MAX_RETRIES = 5


@shared_task(
    bind=True,
    name="fieldwork.send_email_deliveries",
    # A redelivered task claims again: a row already sent or being sent is skipped.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    # No limits of its own: CELERY_TASK_(SOFT_)TIME_LIMIT, which the settings check
    # against HYOKA_DELIVERY_SENDING_TIMEOUT (a slower batch would be sent twice).
)
def send_email_deliveries(self, delivery_ids: list[int] | None = None) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Send these deliveries if due; without ids (beat, every minute), every due one, and
    take back the rows a dead worker left ``sending``."""
    try:
        report = sending.email_deliveries_send(ids=delivery_ids)
    except (InterfaceError, DatabaseError) as exc:
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    return {
        "sent": len(report.sent),
        "retrying": len(report.retrying),
        "failed": len(report.failed),
        "skipped": len(report.skipped),
        "recovered": report.recovered,
        "cancelled": report.cancelled,
    }


@shared_task(
    bind=True,
    name="fieldwork.send_line_deliveries",
    # A redelivered task claims again; a push sent twice carries the same retry key.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    # No limits of its own: CELERY_TASK_(SOFT_)TIME_LIMIT, which the settings check
    # against HYOKA_DELIVERY_SENDING_TIMEOUT (a slower batch would be sent twice).
)
def send_line_deliveries(self, delivery_ids: list[int] | None = None) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Push these LINE deliveries if due; without ids (beat, every minute), every due one."""
    try:
        report = line_sending.line_deliveries_send(ids=delivery_ids)
    except (InterfaceError, DatabaseError) as exc:
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    return {
        "sent": len(report.sent),
        "retrying": len(report.retrying),
        "failed": len(report.failed),
        "skipped": len(report.skipped),
        "recovered": report.recovered,
        "cancelled": report.cancelled,
    }


@shared_task(
    bind=True,
    name="fieldwork.schedule_campaigns",
    # Running it twice (a redelivery, two beats) creates nothing twice: the unique
    # (campaign, participant, step, fallback) and ON CONFLICT DO NOTHING.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=240,
    time_limit=300,
)
def schedule_campaigns(self) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Beat, every minute: what the active campaigns have due becomes deliveries (sent by
    the e-mail and LINE sweeps; letters wait on the letter list)."""
    try:
        report = scheduling.campaigns_run(now=timezone.now())
    except (InterfaceError, DatabaseError) as exc:
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    return {
        "created": report.created,
        "fell_through": report.fell_through,
        "cancelled": report.cancelled,
        "withdrawn": report.withdrawn,
    }
