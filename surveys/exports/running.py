"""A queued export written by its task: claimed once with a compare-and-set, written to
a file under ``MEDIA_ROOT/exports/``, recorded as finished (or failed) with its row count.
A file written while a participant of its study was erased is thrown away (failed)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from ..errors import RuleViolation
from ..models import ErasureRecord, ResponseExport
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
    erasures_before = _erasures(export).count()
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
    # Finished under the row's lock: an erasure of someone in the study locks the study's
    # running exports until it commits (``expiry.participant_files_erase``), so it either
    # saw this file as finished and deletes it, or has committed and is counted here.
    with transaction.atomic():
        current = ResponseExport.objects.select_for_update().get(pk=export.pk)
        if current.status != Status.RUNNING:  # failed by the sweep meanwhile
            path.unlink(missing_ok=True)
            return current
        if _erasures(export).count() != erasures_before:
            path.unlink(missing_ok=True)
            with translation.override(export.language):
                export_fail(export=export, error=gettext(ERASED_WHILE_WRITTEN), rows=rows)
            return export
        export_finish(export=export, rows=rows, file_name=name)
    return export


# What a failed export says, in the export's language.
ERASED_WHILE_WRITTEN = gettext_noop(
    "Personal data of this study was erased while the file was being written. Ask for it again."
)


def _erasures(export: ResponseExport) -> QuerySet[ErasureRecord]:
    """The erasure records of the export's study (all, for an export of every study):
    append-only, so a count that grew while the file was written means someone was
    erased meanwhile and the file may hold what was erased."""
    erasures = ErasureRecord.objects.all()
    if export.study_id is not None:
        erasures = erasures.filter(participant__site__study_id=export.study_id)
    return erasures
