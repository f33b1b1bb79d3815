import hashlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kpi.evaluations.signing import verify_pdf
from kpi.models import Evaluation


class Command(BaseCommand):
    help = (
        "Check an evaluation PDF: is its signature intact and trusted, and is it the very "
        "file stored for a signed-off evaluation (same SHA-256)? Exits non-zero if not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: object, file: Path, **options: object) -> None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        digest = hashlib.sha256(data).hexdigest()
        self.stdout.write(f"File:       {file} ({len(data):,} bytes)")
        self.stdout.write(f"SHA-256:    {digest}")

        verification = verify_pdf(data)
        if verification.ok:
            self.stdout.write(
                f"Signature:  intact and trusted, covering the whole file; signed by "
                f"{verification.signer} at {verification.signed_at:%Y-%m-%d %H:%M:%S %Z}"
            )
        else:
            self.stdout.write(f"Signature:  FAILED: {verification.problem}")

        evaluation = Evaluation.objects.select_related("study").filter(pdf_sha256=digest).first()
        if evaluation is None:
            self.stdout.write("Stored:     FAILED: no evaluation has a file with this SHA-256")
        else:
            self.stdout.write(
                f"Stored:     the file of evaluation #{evaluation.pk} of {evaluation.study.code}, "
                f"{evaluation.get_status_display().lower()}, signed off by "
                f"{evaluation.signer_name} on {evaluation.signed_off_at:%Y-%m-%d}; results "
                f"SHA-256 {evaluation.snapshot_sha256}"
            )
            if evaluation.status == Evaluation.Status.WITHDRAWN:
                self.stdout.write(
                    f"Note:       it was WITHDRAWN on {evaluation.withdrawn_at:%Y-%m-%d}: "
                    f"{evaluation.withdrawal_reason}"
                )
        if not verification.ok or evaluation is None:
            raise CommandError("This file is NOT a verified Hyoka evaluation.")
        self.stdout.write(self.style.SUCCESS("Verified."))
