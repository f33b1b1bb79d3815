"""An export of responses as a recorded act: the one way every export is made.

Each export is a ``ResponseExport`` row, written inside ``recorded_by(user)``, so its
history names who asked, when, for which study, in which format and with which filters
(the creation record), then how many rows it held (the record of its end). The history
is append-only (``surveys/appendonly.py``), as for every audited act.

Two ways to deliver, one writer per format (``WRITERS``):

- in the request (``export_begin`` → write → ``export_finish``): the API's streamed CSV,
  and a file written to a temporary file and sent;
- as a Celery task (``export_request`` → ``export_run``): the row is ``queued``, the task
  claims it with a compare-and-set (a second delivery is a no-op), writes the file under
  ``MEDIA_ROOT/exports/`` and marks it ``succeeded`` with its row count; the requester
  downloads it (``export_file``) from the admin or the API.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation

from .. import scoping
from ..errors import RuleViolation
from ..history import recorded_by
from ..models import Response, ResponseExport, Study
from . import stat_files, xlsx_file
from .reading import Reader

logger = logging.getLogger(__name__)

Format = ResponseExport.Format
Status = ResponseExport.Status

CONTENT_TYPES: dict[str, str] = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.SAV: "application/x-spss-sav",
    Format.DTA: "application/x-stata-dta",
}

Writer = Callable[[Reader, Path], int]


def _write_csv(reader: Reader, path: Path) -> int:
    from .csv_file import stream

    with path.open("w", encoding="utf-8", newline="") as out:
        for text in stream(reader, rows_per_chunk=2000):
            out.write(text)
    return reader.rows_written


WRITERS: dict[str, Writer] = {
    Format.CSV: _write_csv,
    Format.XLSX: xlsx_file.write,
    Format.SAV: stat_files.write_sav,
    Format.DTA: stat_files.write_dta,
}

# Filters an export may carry (the API's names): what the task applies again.
FILTERS = {"site": "site_id", "status": "status"}


def filename(export: ResponseExport) -> str:
    stamp = timezone.localtime(export.requested_at).strftime("%Y%m%d-%H%M")
    study = export.study.code if export.study else "all"
    return f"hyoka-responses-{study}-{stamp}.{export.format}"


def responses_for(export: ResponseExport) -> QuerySet[Response]:
    """The responses an export holds: the requester's sites (at the time it is written)
    of its study, with its filters."""
    queryset = scoping.responses(export.requested_by)
    if export.study_id is not None:
        queryset = queryset.filter(site__study_id=export.study_id)
    for key, lookup in FILTERS.items():
        if key in export.filters:
            queryset = queryset.filter(**{lookup: export.filters[key]})
    return queryset


def export_begin(
    *,
    user: Any,
    study: Study | None,
    format: str,
    language: str,
    filters: Mapping[str, Any] | None = None,
    queued: bool = False,
) -> ResponseExport:
    """Records that ``user`` asked for an export (the history's creation record)."""
    now = timezone.now()
    with recorded_by(user):
        return ResponseExport.objects.create(
            study=study,
            requested_by=user,
            requested_at=now,
            format=format,
            language=language[:2],
            filters=dict(filters or {}),
            status=Status.QUEUED if queued else Status.RUNNING,
            started_at=None if queued else now,
        )


def export_finish(*, export: ResponseExport, rows: int, file_name: str = "") -> None:
    """Records the end of an export and its row count (a history record by its requester)."""
    export.status = Status.SUCCEEDED
    export.rows = rows
    export.finished_at = timezone.now()
    if file_name:
        export.file.name = file_name
    with recorded_by(export.requested_by):
        export.save(update_fields=["status", "rows", "finished_at", "file"])


def export_fail(*, export: ResponseExport, error: str, rows: int | None = None) -> None:
    export.status = Status.FAILED
    export.error = error[:2000]
    export.rows = rows
    export.finished_at = timezone.now()
    with recorded_by(export.requested_by):
        export.save(update_fields=["status", "error", "rows", "finished_at"])


def export_request(
    *,
    user: Any,
    study: Study,
    format: str,
    language: str,
    filters: Mapping[str, Any] | None = None,
) -> ResponseExport:
    """A queued export, written by a Celery task after the commit."""
    from ..tasks import export_responses

    with transaction.atomic():
        export = export_begin(
            user=user, study=study, format=format, language=language, filters=filters, queued=True
        )
        transaction.on_commit(lambda: export_responses.delay(export.pk))
    return export


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


def exports_of(user: Any) -> QuerySet[ResponseExport]:
    """The exports a user may see and download: their own."""
    if not user.is_authenticated:
        return ResponseExport.objects.none()
    return ResponseExport.objects.filter(requested_by_id=user.pk)


def export_path(export: ResponseExport) -> Path | None:
    """The stored file of a finished export, if it is still there."""
    if export.status != Status.SUCCEEDED or not export.file.name:
        return None
    path = Path(settings.MEDIA_ROOT) / export.file.name
    return path if path.is_file() else None
