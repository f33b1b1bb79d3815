"""Reads of evaluations."""

from __future__ import annotations

from .models import Evaluation


def evaluation_locked(evaluation: Evaluation) -> Evaluation:
    """The evaluation's row as stored, locked until the transaction ends: every change of
    an evaluation starts here."""
    return Evaluation.objects.select_for_update().select_related("study").get(pk=evaluation.pk)
