"""Replace participants' invitation links (revoke and replace, surveys/links.py): after a
link key leaked, or for a list of participants whose links went astray. The new links
are written to a CSV file (reference,site,link) to send; the old ones stop working."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.db.models import Count, QuerySet

from surveys import links
from surveys.errors import RuleViolation
from surveys.history import AuditedCommand
from surveys.models import Participant, Study


class Command(AuditedCommand):
    help = (
        "Replace the invitation links of a study's active participants (all, or those of "
        "--site, or only links made under a key other than HYOKA_LINK_KEY: --old-keys). "
        "Their current links stop working at once; the new ones are written to --out. "
        "Recorded in each participant's history. --keys lists how many links each key made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", help="the study's code")
        parser.add_argument("--site", action="append", default=[], help="a site's code (repeat)")
        parser.add_argument(
            "--old-keys",
            action="store_true",
            help="only links made under a key other than the current HYOKA_LINK_KEY "
            "(after a leaked key was replaced), and links from before links were derived",
        )
        parser.add_argument("--out", help="the CSV file to write the new links to (new file)")
        parser.add_argument("--by", metavar="USERNAME", help="who asks for it (for the record)")
        parser.add_argument(
            "--dry-run", action="store_true", help="say how many links would be replaced"
        )
        parser.add_argument(
            "--keys", action="store_true", help="list the link keys in use and stop"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["keys"]:
            self._keys()
            return
        if not options["study"]:
            raise CommandError("Give the study: --study CODE.")
        try:
            study = Study.objects.get(code=options["study"])
        except Study.DoesNotExist:
            raise CommandError(f"There is no study {options['study']!r}.") from None
        chosen = self._participants(study, options)
        participants = list(chosen.select_related("site__study"))
        if options["dry_run"]:
            self.stdout.write(f"{len(participants)} links would be replaced.")
            return
        if not participants:
            self.stdout.write("No links to replace.")
            return
        out = options["out"]
        if not out:
            raise CommandError("Give the file for the new links: --out PATH.")
        by = None
        if options["by"]:
            try:
                by = get_user_model().objects.get_by_natural_key(options["by"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user {options['by']!r}.") from None
        try:
            # The file first (new, readable by its owner only): the links are credentials,
            # and they must not be replaced with nowhere to read the new ones.
            fd = os.open(Path(out), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{out} exists: give a new file.") from None
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            try:
                invitations = links.participant_replace_links(participants=participants, by=by)
            except RuleViolation as exc:
                file.close()
                Path(out).unlink()
                raise CommandError(exc.message) from exc
            file.write(links.invitations_csv(invitations))
        self.stdout.write(
            self.style.SUCCESS(
                f"Replaced {len(invitations)} links; the new ones are in {out}. "
                "The earlier links no longer work."
            )
        )

    def _participants(self, study: Study, options: dict[str, Any]) -> QuerySet[Participant]:
        rows = Participant.objects.filter(
            site__study=study, status=Participant.Status.ACTIVE, erasure__isnull=True
        )
        if options["site"]:
            known = set(study.sites.filter(code__in=options["site"]).values_list("code", flat=True))
            unknown = sorted(set(options["site"]) - known)
            if unknown:
                raise CommandError(f"Not a site of {study.code}: {', '.join(unknown)}.")
            rows = rows.filter(site__code__in=options["site"])
        if options["old_keys"]:
            current, _key = links.current_key()
            rows = rows.exclude(stable_link__key_id=current)
        return rows.order_by("site__code", "reference")

    def _keys(self) -> None:
        configured = links.configured_keys()
        current, _key = links.current_key()
        counts = (
            Participant.objects.filter(stable_link__isnull=False)
            .values_list("stable_link__key_id")
            .annotate(n=Count("pk"))
            .order_by("stable_link__key_id")
        )
        self.stdout.write(f"HYOKA_LINK_KEY has id {current}.")
        for kid, n in counts:
            if kid == current:
                where = "HYOKA_LINK_KEY"
            elif kid in configured:
                where = "HYOKA_LINK_OLD_KEYS"
            else:
                where = "NOT CONFIGURED: these links work but cannot be shown"
            self.stdout.write(f"  {kid}: {n} links ({where})")
        legacy = Participant.objects.filter(
            stable_link__isnull=True, legacy_link__isnull=False
        ).count()
        if legacy:
            self.stdout.write(f"  {legacy} links from before links were derived (no key)")
