"""An export of responses as a recorded act: the records every export is made of.

Each export is a ``ResponseExport`` row, written inside ``recorded_by(user)``, so its
history names who asked, when, for which study, in which format and with which filters
(the creation record), then how many rows it held (the record of its end). The history
is append-only (``surveys/appendonly.py``), as for every audited act.

Two ways to deliver, one writer per format (``WRITERS``):

- in the request (``export_begin`` → write → ``export_finish``): the API's streamed CSV,
  and a file written to a temporary file and sent;
- as a Celery task (``services.export_request`` → ``running.export_run``): the row is
  ``queued``, the task claims it with a compare-and-set (a second delivery is a no-op),
  writes the file under ``MEDIA_ROOT/exports/`` and marks it ``succeeded`` with its row
  count; the requester downloads it (``export_path``) from the admin or the API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .. import scoping
from ..history import recorded_by
from ..models import Response, ResponseExport, Study
from . import stat_files, xlsx_file
from .reading import Reader

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
