import hashlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kpi.models import Evaluation


class Command(BaseCommand):
    help = (
        "Check an evaluation PDF as scripts/verify_evaluation.py does (signature, timestamps, "
        "attachments, every figure recomputed from the attached counts), trusting the "
        "configured certificates, and whether it is the very file stored for a signed-off "
        "evaluation (same SHA-256). One line per check; exits non-zero if any fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--trust",
            type=Path,
            action="append",
            default=[],
            help="a further certificate to trust (PEM or DER), besides the configured ones",
        )

    def handle(self, *args: object, file: Path, trust: list[Path], **options: object) -> None:
        # At first use, as rendering does: pyHanko takes a second to import.
        from kpi.evaluations.signing import verify_pdf
        from scripts import verify_evaluation as verifier

        verifier.quiet_pyhanko()
        try:
            data = file.read_bytes()
            extra = verifier.load_certificates(trust)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        self.stdout.write(f"File  {file} ({len(data):,} bytes), SHA-256 {digest}")
        report = verify_pdf(data, extra_trust=extra)
        for line in report.lines:
            self.stdout.write(line)

        evaluation = Evaluation.objects.select_related("study").filter(pdf_sha256=digest).first()
        if evaluation is None:
            self.stdout.write("FAIL  stored: no evaluation has a file with this SHA-256")
        else:
            self.stdout.write(
                f"OK    stored: the file of evaluation #{evaluation.pk} of "
                f"{evaluation.study.code}, {evaluation.get_status_display().lower()}, signed "
                f"off by {evaluation.signer_name} on {evaluation.signed_off_at:%Y-%m-%d}"
            )
            if evaluation.status == Evaluation.Status.WITHDRAWN:
                self.stdout.write(
                    f"NOTE  it was WITHDRAWN on {evaluation.withdrawn_at:%Y-%m-%d}: "
                    f"{evaluation.withdrawal_reason}"
                )
        if not report.passed or evaluation is None:
            raise CommandError("This file is NOT a verified Hyoka evaluation.")
        self.stdout.write(self.style.SUCCESS("VERIFIED"))
