"""A queued export written by its task: claimed once with a compare-and-set, written to
a file under ``MEDIA_ROOT/exports/``, recorded as finished (or failed) with its row count."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone, translation

from ..errors import RuleViolation
from ..models import ResponseExport
from .reading import Reader
from .records import WRITERS, Status, export_fail, export_finish, responses_for

logger = logging.getLogger(__name__)


def _claim(export_id: int) -> bool:
    """Queued → running, once: a compare-and-set. A row left running by a worker that
    died (longer than a task may run) is claimed again."""
    stale = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimed = (
        ResponseExport.objects.filter(pk=export_id)
        .filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING, started_at__lt=stale))
        .update(status=Status.RUNNING, started_at=timezone.now())
    )
    return claimed == 1


def export_run(*, export_id: int) -> ResponseExport | None:
    """Writes a queued export's file (the task's one call); ``None`` if another worker
    has it or it is done."""
    if not _claim(export_id):
        return None
    export = ResponseExport.objects.select_related("study", "requested_by").get(pk=export_id)
    folder = Path(settings.MEDIA_ROOT) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"exports/{export.pk}-{secrets.token_hex(8)}.{export.format}"
    path = Path(settings.MEDIA_ROOT) / name
    with translation.override(export.language):
        reader = Reader(responses_for(export), language=export.language)
        try:
            rows = WRITERS[export.format](reader, path)
        except RuleViolation as error:
            path.unlink(missing_ok=True)
            export_fail(export=export, error=error.message, rows=reader.rows_written)
            return export
        except Exception:
            path.unlink(missing_ok=True)
            logger.exception("export %s failed", export.pk)
            export_fail(
                export=export, error="the export could not be written", rows=reader.rows_written
            )
            raise
    export_finish(export=export, rows=rows, file_name=name)
    return export
