"""Erase a participant's personal data: their reference, link, free-text answers (and
their history), leaving an erasure record. See surveys/erasure.py."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from surveys.erasure import participant_erase
from surveys.errors import RuleViolation
from surveys.history import AuditedCommand
from surveys.models import Participant


class Command(AuditedCommand):
    help = (
        "Erase a participant's personal data (reference, invitation link, free-text answers, "
        "in the live rows and the history), keeping their anonymous closed answers. Give the "
        "participant by id, or by --study and --reference (and --site if the reference is "
        "used at several sites)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("participant_id", nargs="?", type=int, help="the participant's id")
        parser.add_argument("--study", help="the study's code (with --reference)")
        parser.add_argument("--reference", help="the participant's reference (with --study)")
        parser.add_argument("--site", help="the site's code, if the reference is not enough")
        parser.add_argument("--reason", required=True, help="why (kept in the erasure record)")
        parser.add_argument(
            "--by",
            metavar="USERNAME",
            help="who asks for it: a manager of the participant's site (default: the system)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        participant = self._participant(options)
        by = None
        if options["by"]:
            try:
                by = get_user_model().objects.get_by_natural_key(options["by"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user {options['by']!r}.") from None
        try:
            erasure = participant_erase(participant=participant, by=by, reason=options["reason"])
        except RuleViolation as exc:
            raise CommandError(exc.message) from exc
        record = erasure.record
        when = record.erased_at.isoformat(timespec="seconds")
        if not erasure.new:
            self.stdout.write(
                f"Participant {participant.pk} was already erased on {when} "
                f"(erasure record {record.pk}): nothing to do."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Erased the personal data of participant {participant.pk} "
                f"(now {record.participant.reference}; erasure record {record.pk})."
            )
        )

    def _participant(self, options: dict[str, Any]) -> Participant:
        rows = Participant.objects.select_related("site__study")
        if options["participant_id"] is not None:
            if options["study"] or options["reference"] or options["site"]:
                raise CommandError("Give the participant's id, or --study and --reference.")
            try:
                return rows.get(pk=options["participant_id"])
            except Participant.DoesNotExist:
                raise CommandError(
                    f"There is no participant {options['participant_id']}."
                ) from None
        if not (options["study"] and options["reference"]):
            raise CommandError("Give the participant's id, or --study and --reference.")
        rows = rows.filter(site__study__code=options["study"], reference=options["reference"])
        if options["site"]:
            rows = rows.filter(site__code=options["site"])
        found = list(rows[:2])
        if not found:
            raise CommandError(
                f"Study {options['study']!r} has no participant {options['reference']!r}"
                + (f" at site {options['site']!r}." if options["site"] else ".")
            )
        if len(found) > 1:
            raise CommandError(
                f"Reference {options['reference']!r} is used at several sites of the study: "
                "add --site."
            )
        return found[0]
