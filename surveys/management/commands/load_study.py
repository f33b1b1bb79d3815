from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from surveys.demo import generate_demo_responses
from surveys.errors import RuleViolation
from surveys.history import AuditedCommand
from surveys.loading import REFERENCE_STUDY, load_study


class Command(AuditedCommand):
    help = "Load a study, its sites and its published instrument from a study.toml file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", nargs="?", type=Path, default=REFERENCE_STUDY, help="default: the reference"
        )
        parser.add_argument(
            "--demo-responses",
            action="store_true",
            help="also create the file's [demo] participants and submitted responses",
        )

    def handle(self, *args: object, path: Path, demo_responses: bool, **options: object) -> None:
        try:
            study = load_study(path)
            if demo_responses:
                generate_demo_responses(study, path)
        except RuleViolation as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Loaded study {study.code}."))
