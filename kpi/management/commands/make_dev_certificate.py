from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kpi.evaluations.signing import make_development_certificate


class Command(BaseCommand):
    help = (
        "Create a self-signed certificate (PKCS#12) to sign evaluation PDFs in development "
        "and the demo. Production signs with the programme's own certificate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, default=Path(settings.HYOKA_SIGNING_P12))
        parser.add_argument("--passphrase", default=settings.HYOKA_SIGNING_PASSPHRASE)
        parser.add_argument("--force", action="store_true", help="replace an existing file")

    def handle(
        self, *args: object, out: Path, passphrase: str, force: bool, **options: object
    ) -> None:
        if settings.PRODUCTION:
            raise CommandError("Production signs with the programme's certificate, not this one.")
        if out.exists() and not force:
            self.stdout.write(f"{out} exists; keeping it (--force replaces it).")
            return
        path = make_development_certificate(out, passphrase)
        self.stdout.write(self.style.SUCCESS(f"Development signing certificate: {path}"))
        self.stdout.write(f"Its certificate (to trust when verifying): {path.with_suffix('.pem')}")
        self.stdout.write(f"HYOKA_SIGNING_P12={path}")
