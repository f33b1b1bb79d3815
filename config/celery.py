"""The Celery application.

Workers: ``celery -A config worker``; the scheduler: ``celery -A config beat``.
"""

import os
from typing import Any

from celery import Celery
from celery.contrib.django.task import DjangoTask
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class Task(DjangoTask):
    """Every task of the project. ``apply_async_on_commit`` and ``delay_on_commit`` are the
    one way to enqueue: once the caller's transaction commits (a worker never looks for a
    row that is not there yet), and without ever failing the caller. A broker that is down
    is logged by Django and the caller carries on: a participant's submission is kept,
    and the work waits in its row (a run still queued) for the backstop to re-send it."""

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        def enqueue() -> None:  # named: Django's log of a failure names the callback
            self.apply_async(*args, **kwargs)

        enqueue.__qualname__ = f"enqueue {self.name}"
        transaction.on_commit(enqueue, robust=True)

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        self.apply_async_on_commit(args, kwargs)


app = Celery("hyoka", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
