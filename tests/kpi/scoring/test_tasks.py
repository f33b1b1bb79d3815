"""The KPI app's tasks keep their names wherever their modules live: queued messages and
beat's schedule name them, so a worker started from ``config`` must know every one."""

from __future__ import annotations

from django.conf import settings

from config.celery import app

NAMES = {"kpi.score_run", "kpi.score_open_studies", "kpi.score_unscored", "kpi.render_evaluation"}


def test_autodiscovery_registers_every_kpi_task_by_its_name():
    app.loader.import_default_modules()
    assert set(app.tasks) >= NAMES


def test_every_task_beat_schedules_is_registered():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert set(app.tasks) >= scheduled
