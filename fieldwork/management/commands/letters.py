"""``manage.py letters``: print a study's letters as one PDF.

Without ``--queued``: a letter for each active participant of the study (or of the
``--site``\\ s given) who has not answered and has a postal address. With ``--queued``:
the queued letter deliveries of those sites (the campaigns' letter list), each printed
once and marked sent once the PDF is written and fsynced
(``fieldwork/letters/printing.py``). Progress goes to stderr; the path and the counts to
stdout.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fieldwork.letters.build import Built, letters_build
from fieldwork.letters.printing import letter_deliveries_print, letters_pdf_file
from fieldwork.letters.render import DEFAULT_BATCH
from fieldwork.models import Delivery
from surveys.models import Participant, Response, Study


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--deadline must be a date such as 2027-01-15, not {text!r}") from None


class Command(BaseCommand):
    help = "Print the letters of a study's participants (or its queued letters) as one PDF."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="the study's code")
        parser.add_argument(
            "--site", action="append", default=[], help="a site's code (repeatable; default all)"
        )
        parser.add_argument(
            "--language",
            choices=["ja", "en"],
            help="print every letter in this language (default: each contact's language)",
        )
        parser.add_argument(
            "--queued",
            action="store_true",
            help="print the queued letter deliveries, and mark them sent",
        )
        parser.add_argument(
            "--deadline",
            help="the deadline (YYYY-MM-DD) for sites whose questionnaire has no closing date",
        )
        parser.add_argument("--out", required=True, help="the PDF file to write")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
        parser.add_argument("--workers", type=int, default=1, help="rendering processes")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(code=options["study"]).first()
        if study is None:
            raise CommandError(f"There is no study {options['study']!r}.")
        sites = study.sites.all()
        if options["site"]:
            sites = sites.filter(code__in=options["site"])
            unknown = set(options["site"]) - set(sites.values_list("code", flat=True))
            if unknown:
                raise CommandError(
                    f"The study {study.code!r} has no site {', '.join(sorted(unknown))}."
                )
        if options["batch_size"] < 1 or options["workers"] < 1:
            raise CommandError("--batch-size and --workers must be 1 or more.")
        out = Path(options["out"]).expanduser().resolve()
        if not out.parent.is_dir():
            raise CommandError(f"The directory {out.parent} does not exist.")
        deadline = _date(options["deadline"]) if options["deadline"] else None
        language = options["language"]

        def progress(done: int, total: int) -> None:
            sys.stderr.write(f"\rletters: {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        def write(built: Built, heartbeat: Any = None) -> None:
            letters_pdf_file(
                built.letters,
                out,
                batch_size=options["batch_size"],
                workers=options["workers"],
                on_progress=progress,
                on_batch=heartbeat,
            )

        if options["queued"]:
            printed = letter_deliveries_print(
                deliveries=Delivery.objects.filter(participant__site__in=sites),
                write=write,
                language=language,
                deadline=deadline,
            )
            built = printed.built
            extra = (
                f"deliveries marked sent: {len(printed.sent)}, failed: {len(printed.failed)}, "
                f"cancelled (answered, withdrawn or erased): {printed.cancelled}, "
                f"taken by another run: {printed.elsewhere}"
            )
        else:
            # The active participants who have not answered (the rest need no letter).
            participants = (
                Participant.objects.filter(site__in=sites, status=Participant.Status.ACTIVE)
                .exclude(erasure__isnull=False)
                .exclude(response__status=Response.Status.SUBMITTED)
                .values_list("pk", flat=True)
            )
            built = letters_build(list(participants), language=language, deadline=deadline)
            if built.letters:
                write(built)
            extra = ""
        self._report(built, out, extra)

    def _report(self, built: Built, out: Path, extra: str) -> None:
        if built.letters:
            self.stdout.write(str(out))
        else:
            self.stdout.write("No letters to print; no file written.")
        self.stdout.write(f"letters: {len(built.letters)}")
        for reason, count in sorted(built.skipped_counts.items()):
            self.stdout.write(f"skipped ({reason}): {count}")
        for skipped in built.skipped:
            if skipped.detail:
                self.stderr.write(f"{skipped.reference}: {skipped.detail}")
        if extra:
            self.stdout.write(extra)
