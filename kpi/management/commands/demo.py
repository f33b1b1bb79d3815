import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import translation

from kpi.loading import kpis_path, load_kpis
from kpi.models import EvaluationRun
from kpi.reporting import results_table
from kpi.services import run_request
from surveys.demo import generate_demo_responses
from surveys.loading import REFERENCE_STUDY, load_study, read_toml
from surveys.models import Participant, Response, Study
from surveys.services import participant_reissue_links

DEMO_USER = "demo"


class Command(BaseCommand):
    help = (
        "Set up the demo (the reference study with its synthetic responses, a demo manager "
        "login) and print the admin URL and three participant links."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--links", type=int, default=3, help="participant links to print")

    def handle(self, *args: object, links: int, **options: object) -> None:
        with transaction.atomic():
            study, invitations, password = self._prepare(links)
        # Scoring runs after the commit, through Celery (in-process in embedded mode).
        run = run_request(study=study, trigger=EvaluationRun.Trigger.COMMAND)
        run.refresh_from_db()
        self.stdout.write("")
        if run.status == EvaluationRun.Status.SUCCEEDED:
            self.stdout.write(f"Scored the reference KPIs (run #{run.pk}):")
            with translation.override("en"):
                self.stdout.write(results_table(run.results.filter(site=None)))
        else:
            self.stdout.write(f"Scoring run #{run.pk} is {run.status}.")
        self._print(invitations, password)

    def _prepare(self, links: int):  # type: ignore[no-untyped-def]
        if settings.PRODUCTION:
            raise CommandError("The demo is for embedded mode only (HYOKA_ENV=production is set).")
        code = read_toml(REFERENCE_STUDY)["code"]
        study = Study.objects.filter(code=code).first()
        if study is None:
            study = load_study(REFERENCE_STUDY)
            path = kpis_path(REFERENCE_STUDY)
            if path is not None:
                load_kpis(study=study, path=path)
            generate_demo_responses(study, REFERENCE_STUDY)
            self.stdout.write(
                f"Loaded the reference study {code} with its KPIs and demo responses."
            )
        password = os.environ.get("DEMO_PASSWORD", "hyoka-demo-2021")
        user, _ = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()

        # Links are stored only as hashes, so the demo issues fresh ones for participants
        # who have not submitted (their earlier demo links stop working).
        waiting = list(
            Participant.objects.filter(site__study=study, status=Participant.Status.ACTIVE)
            .exclude(response__status=Response.Status.SUBMITTED)
            .select_related("site")
            .order_by("site__code", "reference")
        )
        by_site: dict[str, list[Participant]] = {}
        for p in waiting:
            by_site.setdefault(p.site.code, []).append(p)
        chosen: list[Participant] = []
        while len(chosen) < links and any(by_site.values()):
            for queue in by_site.values():
                if queue and len(chosen) < links:
                    chosen.append(queue.pop(0))
        invitations = participant_reissue_links(participants=chosen)
        return study, invitations, password

    def _print(self, invitations, password: str) -> None:  # type: ignore[no-untyped-def]
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Hyoka demo is ready."))
        self.stdout.write(f"  Admin:    {settings.SITE_URL}/admin/")
        self.stdout.write(f"  Login:    {DEMO_USER} / {password}")
        self.stdout.write("  Participant links (Japanese; add ?lang=en for English):")
        for inv in invitations:
            p = inv.participant
            self.stdout.write(f"    {p.site.name_en:<9} {p.reference}  {inv.url}")
