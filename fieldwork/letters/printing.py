"""Printing letters: one PDF of many letters, and printing the queued letter deliveries
(the campaigns' "letter list") so that each is printed once.

**One PDF.** ``render_letters_batched`` renders batches (each a complete PDF); more than
one batch is joined with pypdf. A file is written beside its destination, fsynced, then
renamed onto it (and the directory fsynced): the destination holds the whole PDF or what
it held before, never a part.

**Queued letter deliveries** (``letter_deliveries_print``), read top to bottom:

1. Letter rows left ``sending`` past ``HYOKA_DELIVERY_SENDING_TIMEOUT`` (a print run that
   was killed) are queued again, as the e-mail sender does for its rows.
2. Due queued rows whose participant must get nothing more are cancelled.
3. The rest are **claimed** with the e-mail sender's compare-and-set
   (``sending.claim_batch``: ``queued`` → ``sending`` in one UPDATE, read back by its
   token): rows another run claimed first are not printed here.
4. The letters are built; a participant who gets none (no postal address …) has their
   rows **failed** with the reason.
5. The caller's ``write`` renders and stores the PDF (a file written and fsynced, or a
   download's bytes); the claim's ``claimed_at`` is refreshed after each batch so that a
   long run is not taken for a dead one. If ``write`` raises (or the process is
   interrupted), the rows go back to ``queued`` as they were; if the process is killed,
   step 1 of a later run (or the e-mail sweep) queues them again after the timeout.
6. Only then are the printed rows marked **sent** (a participant with an invitation and
   a reminder both queued gets one letter, and both rows are sent).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from .. import selectors
from ..models import Delivery
from ..sending import NO_LONGER_REACHABLE, REASON_MAX, claim_batch
from .build import SKIP_WORDS, Built, letters_build
from .letter import Letter
from .render import DEFAULT_BATCH, render_letters_batched

Progress = Callable[[int, int], None]


# --- One PDF -------------------------------------------------------------------------------


def _join(pdfs: Sequence[bytes], out: io.BufferedWriter | io.BytesIO) -> None:
    if len(pdfs) == 1:
        out.write(pdfs[0])
        return
    # pypdf: a runtime dependency for this (pyproject.toml).
    from pypdf import PdfWriter

    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(io.BytesIO(pdf))
    writer.write(out)


def _render(
    letters: Sequence[Letter],
    *,
    batch_size: int,
    workers: int,
    on_progress: Progress | None,
    on_batch: Callable[[], None] | None,
    today: date | None,
) -> list[bytes]:
    pdfs = []
    for pdf in render_letters_batched(
        letters, batch_size=batch_size, workers=workers, on_progress=on_progress, today=today
    ):
        pdfs.append(pdf)
        if on_batch is not None:
            on_batch()
    return pdfs


def letters_pdf(
    letters: Sequence[Letter],
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Progress | None = None,
    on_batch: Callable[[], None] | None = None,
    today: date | None = None,
) -> bytes:
    """``letters`` as the bytes of one PDF (for a download: held in memory)."""
    pdfs = _render(
        letters,
        batch_size=batch_size,
        workers=1,
        on_progress=on_progress,
        on_batch=on_batch,
        today=today,
    )
    out = io.BytesIO()
    _join(pdfs, out)
    return out.getvalue()


def letters_pdf_file(
    letters: Sequence[Letter],
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 1,
    on_progress: Progress | None = None,
    on_batch: Callable[[], None] | None = None,
    today: date | None = None,
) -> None:
    """``letters`` as one PDF at ``path``, durably: written beside it, fsynced, renamed."""
    pdfs = _render(
        letters,
        batch_size=batch_size,
        workers=workers,
        on_progress=on_progress,
        on_batch=on_batch,
        today=today,
    )
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as f:
            _join(pdfs, f)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# --- Queued letter deliveries ------------------------------------------------------------


@dataclass
class Printed:
    built: Built = field(default_factory=Built)
    sent: list[int] = field(default_factory=list)  # delivery ids
    failed: list[int] = field(default_factory=list)  # delivery ids (participant skipped)
    cancelled: int = 0  # no longer reachable
    elsewhere: int = 0  # claimed by another run first
    recovered: int = 0


def letter_deliveries_due(
    deliveries: QuerySet[Delivery] | None = None, *, now: datetime | None = None
) -> QuerySet[Delivery]:
    """The queued letter deliveries due by ``now`` (among ``deliveries``)."""
    queryset = deliveries if deliveries is not None else Delivery.objects.all()
    return queryset.filter(
        channel=Delivery.Channel.LETTER,
        status=Delivery.Status.QUEUED,
        due_at__lte=now or timezone.now(),
    )


def letter_deliveries_recover(*, now: datetime | None = None) -> int:
    """Letter rows left ``sending`` past the timeout (a killed print run): queued again."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.HYOKA_DELIVERY_SENDING_TIMEOUT)
    return Delivery.objects.filter(
        channel=Delivery.Channel.LETTER, status=Delivery.Status.SENDING, claimed_at__lt=cutoff
    ).update(status=Delivery.Status.QUEUED, claimed_at=None)


def letter_deliveries_print(
    *,
    deliveries: QuerySet[Delivery],
    write: Callable[[Built, Callable[[], None]], None],
    language: str | None = None,
    deadline: date | None = None,
    now: datetime | None = None,
) -> Printed:
    """Print the queued letter deliveries due among ``deliveries`` (see the module
    docstring).

    ``write(built, heartbeat)`` stores the PDF of ``built.letters`` and calls
    ``heartbeat()`` now and then (after each batch); it is not called if there is no
    letter to print."""
    result = Printed(recovered=letter_deliveries_recover(now=now))
    ids = list(letter_deliveries_due(deliveries, now=now).values_list("pk", flat=True))
    result.cancelled = (
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.QUEUED)
        .filter(selectors.no_longer_reachable())
        .update(
            status=Delivery.Status.CANCELLED,
            finished_at=now or timezone.now(),
            last_error=NO_LONGER_REACHABLE,
        )
    )
    mine = claim_batch(ids, now=now)
    result.elsewhere = len(ids) - len(mine) - result.cancelled
    if not mine:
        return result
    token = Delivery.objects.filter(pk=mine[0]).values_list("claim", flat=True).get()
    ours = Delivery.objects.filter(claim=token, status=Delivery.Status.SENDING)
    by_participant: dict[int, list[int]] = defaultdict(list)
    for pk, participant_id in ours.order_by("pk").values_list("pk", "participant_id"):
        by_participant[participant_id].append(pk)
    try:
        built = letters_build(list(by_participant), language=language, deadline=deadline, now=now)
        result.built = built
        for skipped in built.skipped:
            reason = f"not printed: {skipped.reason}"
            if skipped.detail:
                reason += f" ({skipped.detail})"
            rows = by_participant[skipped.participant_id]
            ours.filter(pk__in=rows).update(
                status=Delivery.Status.FAILED,
                finished_at=timezone.now(),
                last_error=reason[:REASON_MAX],
            )
            result.failed.extend(rows)
        if built.letters:

            def heartbeat() -> None:
                ours.update(claimed_at=timezone.now())

            write(built, heartbeat)
    except BaseException:
        # Nothing was stored: the rows are queued again, as they were.
        ours.update(status=Delivery.Status.QUEUED, claimed_at=None, attempts=F("attempts") - 1)
        raise
    printed = [
        pk for participant_id in built.participant_ids for pk in by_participant[participant_id]
    ]
    when = timezone.now()
    ours.filter(pk__in=printed).update(
        status=Delivery.Status.SENT, sent_at=when, finished_at=when, last_error=""
    )
    result.sent = printed
    return result


def skipped_summary(built: Built) -> str:
    """The skipped participants counted by reason, in the active language, such as
    "no postal address: 3, already answered: 1"."""
    return ", ".join(
        f"{SKIP_WORDS[reason]}: {count}" for reason, count in sorted(built.skipped_counts.items())
    )
