"""Celery tasks of ``surveys``. Found by the Celery app's ``autodiscover_tasks()``
(config/celery.py), which imports ``<app>.tasks`` for every installed app."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="hyoka.ping", ignore_result=False)
def ping() -> str:
    """A no-op round trip through the broker and a worker: proves the worker set-up end to
    end (the worker test, a health check) without touching the database."""
    return "pong"
