"""Asking for an export made by a Celery task: the row is ``queued`` and recorded, and the
task (``tasks.py`` → ``running.export_run``) is sent once the row is committed. What an
export is and how it is recorded: ``records.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from ..models import ResponseExport, Study
from .records import export_begin
from .tasks import export_responses


def export_request(
    *,
    user: Any,
    study: Study,
    format: str,
    language: str,
    filters: Mapping[str, Any] | None = None,
) -> ResponseExport:
    """A queued export, written by a Celery task after the commit."""
    with transaction.atomic():
        export = export_begin(
            user=user, study=study, format=format, language=language, filters=filters, queued=True
        )
        export_responses.delay_on_commit(export.pk)
    return export
