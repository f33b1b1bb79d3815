"""Celery finds the app's tasks here (``autodiscover_tasks`` imports ``kpi.tasks``); each
lives with its subdomain. Their ``name=`` strings are what queues and beat know."""

from .evaluations.tasks import render_evaluation
from .scoring.schedule import score_open_studies, score_unscored
from .scoring.tasks import score_run

__all__ = ["render_evaluation", "score_open_studies", "score_run", "score_unscored"]
