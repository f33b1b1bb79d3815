"""Load a study's KPI definitions (and their segments) from a ``kpis.toml`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from kpi.definitions.loading import load_kpis
from surveys.errors import RuleViolation
from surveys.history import AuditedCommand
from surveys.models import Study


class Command(AuditedCommand):
    help = (
        "Load the segments and KPIs of a kpis.toml file (the format of "
        "surveys/reference/tokyo-dx-2021/kpis.toml: a share's threshold in percent, "
        "70 = 70 %; confidence as a fraction, 0.95) into a study, against its current "
        "published questionnaire. All or nothing: if any item is refused, every refused "
        "item is listed and nothing is loaded. Recorded in the history as made by this "
        "command (and by --by's account)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="the study's code")
        parser.add_argument("path", type=Path, help="the kpis.toml file")
        parser.add_argument(
            "--by",
            metavar="USERNAME",
            help="the manager the history names as having made the change (default: none)",
        )

    def handle(self, *args: Any, study: str, path: Path, by: str | None, **options: Any) -> None:
        found = Study.objects.filter(code=study).first()
        if found is None:
            raise CommandError(f"There is no study {study!r}.")
        user = None
        if by:
            try:
                user = get_user_model().objects.get_by_natural_key(by)
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user {by!r}.") from None
        try:
            kpis = load_kpis(study=found, path=path, user=user)
        except RuleViolation as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(kpis)} KPIs into study {found.code}."))
