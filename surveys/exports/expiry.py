"""Stored export files do not outlive their use, nor the personal data they may hold.

- After ``HYOKA_EXPORT_FILE_DAYS`` a stored file is deleted (``exports_sweep``, the beat
  task ``surveys.sweep_exports``); the row stays, ``expired``, with when and why: the
  audit trail of who exported what is kept, the copy of the data is not.
- When a participant's personal data is erased (on request or by the retention purge),
  every stored file of the study that may hold their reference or free text is deleted
  at once, inside the erasure's transaction (``participant_files_erase``, called by
  ``surveys/erasure.py``): if a file cannot be deleted, nothing is erased.
- An export left "being written" past ``HYOKA_EXPORT_STUCK_AFTER`` lost its worker (or,
  in the request, its client): it is marked failed with that reason, so that the
  requester asks again, and the part of a file it may have left is deleted. Any other
  file in the folder that no export holds is deleted by the same sweep.

A file is deleted before its row says so, in the row's transaction: a file that cannot be
deleted leaves its row as it was (the sweep tries again next time; an erasure fails).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from ..history import Reason, recorded_by, save_with_reason
from ..models import Participant, Response, ResponseExport
from .records import export_fail

logger = logging.getLogger(__name__)

Status = ResponseExport.Status
Expiry = ResponseExport.Expiry

# What a failed export says, in the export's language.
STUCK_ERROR = gettext_noop(
    "The export was not finished (its worker stopped, or the download was interrupted). "
    "Ask for it again."
)


@dataclass(frozen=True)
class Sweep:
    expired: int  # files deleted after their retention period
    failed: int  # exports left "being written", now failed


def _folder() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def _expire(exports: QuerySet[ResponseExport], *, because: str, now: dt.datetime) -> int:
    """Deletes the stored files of ``exports`` and marks them expired, one by one, under
    their rows' locks (taken in one order: two erasures at once wait, never deadlock; a
    row another one expired meanwhile is no longer selected). Inside a transaction."""
    done = 0
    for export in exports.exclude(file="").select_for_update().order_by("pk"):
        # (An export sent in the request was never stored: it has no file and stays.)
        (Path(settings.MEDIA_ROOT) / export.file.name).unlink(missing_ok=True)
        export.status = Status.EXPIRED
        export.expired_at = now
        export.expired_because = because
        export.file.name = ""  # the history keeps the name it had
        fields = ["status", "expired_at", "expired_because", "file"]
        with recorded_by(None):
            if because == Expiry.KEPT_DAYS:
                export.save(update_fields=fields)
            else:
                save_with_reason(export, Reason.PERSONAL_DATA_ERASED.value, update_fields=fields)
        done += 1
    return done


def participant_files_erase(*, participant: Participant, purge: bool) -> int:
    """Deletes every stored export file that may hold ``participant``'s reference or free
    text, if they have a response: the files of their study (or of every study), except
    those limited to another site. Inside the caller's transaction."""
    response = Response.objects.filter(participant=participant).only("pk").first()
    if response is None:  # a response export holds responses only
        return 0
    study_id = participant.site.study_id
    of_study = ResponseExport.objects.filter(Q(study_id=study_id) | Q(study__isnull=True))
    # Exports being written wait for this erasure to commit before they finish, then see
    # it and throw their file away (``running.py``); one that finished first is below.
    list(of_study.filter(status=Status.RUNNING).select_for_update().order_by("pk").only("pk"))
    exports = of_study.filter(status=Status.SUCCEEDED).exclude(
        Q(filters__has_key="site") & ~Q(filters__site=participant.site_id)
    )
    because = Expiry.PURGE if purge else Expiry.ERASURE
    deleted = _expire(exports, because=because, now=timezone.now())
    if deleted:
        logger.info(
            "%d export files deleted: they may hold the erased personal data of participant %s",
            deleted,
            participant.pk,
        )
    return deleted


def exports_sweep(*, now: dt.datetime | None = None) -> Sweep:
    """The beat's sweep: files past their retention period deleted, exports whose writer
    died failed. Idempotent; each export in its own transaction, so that one file that
    cannot be deleted (logged) holds up no other."""
    now = now or timezone.now()
    kept_until = now - dt.timedelta(days=settings.HYOKA_EXPORT_FILE_DAYS)
    old = ResponseExport.objects.filter(
        status=Status.SUCCEEDED, finished_at__lt=kept_until
    ).exclude(file="")
    expired = 0
    for pk in list(old.values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                expired += _expire(old.filter(pk=pk), because=Expiry.KEPT_DAYS, now=now)
        except OSError:
            logger.exception("the file of export %s could not be deleted", pk)
    stuck_since = now - dt.timedelta(seconds=settings.HYOKA_EXPORT_STUCK_AFTER)
    stuck = ResponseExport.objects.filter(status=Status.RUNNING, started_at__lt=stuck_since)
    failed = 0
    for pk in list(stuck.values_list("pk", flat=True)):
        with transaction.atomic():
            export = stuck.select_for_update(skip_locked=True).filter(pk=pk).first()
            if export is None:  # finished meanwhile, or another sweep has it
                continue
            # The part of a file its task may have written (named ``<pk>-…``: running.py).
            for part in _folder().glob(f"{export.pk}-*"):
                part.unlink(missing_ok=True)
            with translation.override(export.language):
                export_fail(export=export, error=gettext(STUCK_ERROR), rows=export.rows)
            failed += 1
    orphans = _orphans_delete()
    if expired or failed or orphans:
        logger.info(
            "export sweep: %d files expired, %d stuck exports failed, %d stray files deleted",
            expired,
            failed,
            orphans,
        )
    return Sweep(expired=expired, failed=failed)


def _orphans_delete() -> int:
    """Files in the exports folder that no export holds: what a worker killed mid-write
    left before its export was claimed again and written under a new name, or a file
    whose unlink failed. A file of an export queued or being written is left alone (read
    first: an export never goes back to those states, but a claim again)."""
    folder = _folder()
    if not folder.is_dir():
        return 0
    pending = {
        str(pk)
        for pk in ResponseExport.objects.filter(
            status__in=[Status.QUEUED, Status.RUNNING]
        ).values_list("pk", flat=True)
    }
    stored = set(ResponseExport.objects.exclude(file="").values_list("file", flat=True))
    deleted = 0
    for path in folder.iterdir():
        if not path.is_file() or f"exports/{path.name}" in stored:
            continue
        if path.name.split("-", 1)[0] in pending:
            continue
        path.unlink(missing_ok=True)
        deleted += 1
    return deleted
