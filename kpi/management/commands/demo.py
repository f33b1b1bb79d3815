"""``manage.py demo``: the reference study, its KPIs registered before its simulated
fieldwork, the demo responses, a scoring run and the signed evaluation.

The reference data is the 2021 pilot's, but a registration is dated by a time-stamping
authority (the development one on 127.0.0.1 unless ``HYOKA_TSA_URL`` names another), so
at the moment the demo runs: the registration has to come first. The demo therefore
loads the study with its sites not yet open, registers the reference specification, then
opens the sites that open in the study file just after the authority's time and dates
the simulated submissions between that opening and the end of the load (a few seconds).
The study's and the sites' programme periods stay those of 2021; the figures do not move,
since the same seed picks the same answers and every submission is before the scoring
run's cut-off.
"""

import datetime as dt
import io
import os
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils import timezone, translation

from kpi.definitions.loading import kpis_path, load_kpis
from kpi.evaluations.services import evaluation_create, evaluation_sign_off
from kpi.evidence.timestamps import local_authority, trusted_authorities
from kpi.models import Evaluation, EvaluationRun, Registration
from kpi.registration.selectors import registration_for
from kpi.registration.services import register
from kpi.scoring.reporting import results_table
from kpi.scoring.services import run_request
from surveys.demo import generate_demo_responses
from surveys.history import AuditedCommand
from surveys.links import invitations as link_invitations
from surveys.loading import REFERENCE_STUDY, load_study, read_toml
from surveys.models import Participant, Response, Site, Study

DEMO_USER = "demo"


class Command(AuditedCommand):
    help = (
        "Set up the demo (the reference study with its synthetic responses, a demo manager "
        "login) and print the admin URL and three participant links."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--links", type=int, default=3, help="participant links to print")

    def handle(self, *args: object, links: int, **options: object) -> None:
        with local_authority() as tsa:
            self._handle(links, tsa)

    def _handle(self, links: int, tsa: str) -> None:
        call_command("make_dev_certificate", stdout=io.StringIO())
        with transaction.atomic():
            study, invitations, password = self._prepare(links)
        # Scoring runs after the commit, through Celery (in-process in embedded mode).
        run = run_request(study=study, trigger=EvaluationRun.Trigger.COMMAND)
        run.refresh_from_db()
        self.stdout.write("")
        if run.status != EvaluationRun.Status.SUCCEEDED:
            raise CommandError(f"Scoring run #{run.pk} is {run.status}: {run.error}")
        self.stdout.write(f"Scored the reference KPIs (run #{run.pk}):")
        with translation.override("en"):
            self.stdout.write(results_table(run.results.filter(site=None)))
        evaluation = self._signed_evaluation(run)
        self._print(invitations, password)
        registration = registration_for(study)
        if registration is not None:
            self.stdout.write(
                f"  KPI specification registered at {registration.timestamped_at.isoformat()} "
                f"(time-stamping authority {tsa}), before fieldwork opened"
            )
            self.stdout.write(f"    SHA-256 {registration.sha256}")
        pdf = evaluation.pdf.path
        self.stdout.write(f"  Signed evaluation PDF (PDF/A-3, timestamped): {pdf}")
        self.stdout.write(f"    check it with: manage.py verify_evaluation {pdf}")
        trust = [Path(settings.HYOKA_SIGNING_P12).with_suffix(".pem"), *trusted_authorities()]
        trust_options = " ".join(f"--trust {path}" for path in trust)
        self.stdout.write(
            f"    or, with only Python and pyHanko: python scripts/verify_evaluation.py {pdf} "
            f"{trust_options}"
        )

    def _signed_evaluation(self, run: EvaluationRun) -> Evaluation:
        """The reference evaluation, signed off by the demo manager with a development
        certificate (made on first use)."""
        existing = (
            Evaluation.objects.filter(study=run.study, status=Evaluation.Status.SIGNED_OFF)
            .exclude(pdf="")
            .order_by("-pk")
            .first()
        )
        if existing is not None:
            return existing
        user = get_user_model().objects.get(username=DEMO_USER)
        password = os.environ.get("DEMO_PASSWORD", "hyoka-demo-2021")
        evaluation = evaluation_create(run=run, user=user, language="ja")
        evaluation_sign_off(
            evaluation=evaluation,
            user=user,
            password=password,
            statement=(
                "私は、本評価の集計結果、母数、信頼区間および判定を確認しました。"
                "（デモ用の合成データです。）"
            ),
            signer_name="デモ 担当者",
            signer_role="事業担当（デモ）",
        )
        evaluation.refresh_from_db()
        if not evaluation.pdf:
            raise CommandError(f"The signed PDF was not produced: {evaluation.rendering_error}")
        return evaluation

    def _prepare(self, links: int):  # type: ignore[no-untyped-def]
        if settings.PRODUCTION:
            raise CommandError("The demo is for embedded mode only (HYOKA_ENV=production is set).")
        code = read_toml(REFERENCE_STUDY)["code"]
        password = os.environ.get("DEMO_PASSWORD", "hyoka-demo-2021")
        user, _ = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()
        study = Study.objects.filter(code=code).first()
        if study is None:
            study = load_study(REFERENCE_STUDY)
            path = kpis_path(REFERENCE_STUDY)
            if path is not None:
                load_kpis(study=study, path=path)
            registration = self._register(study, user, password)
            generate_demo_responses(
                study, REFERENCE_STUDY, submitted_between=self._open_fieldwork(registration)
            )
            self.stdout.write(
                f"Loaded the reference study {code} with its KPIs (registered) and demo responses."
            )

        # Participants who have not submitted, with their stable links (surveys/links.py):
        # running the demo again prints the same links.
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
        invitations = link_invitations(chosen)
        return study, invitations, password

    def _register(self, study: Study, user, password: str) -> Registration:  # type: ignore[no-untyped-def]
        """The reference specification, registered by the demo manager while no site is
        open yet (the sites' openings in the file are 2021's: ``_open_fieldwork`` sets
        them after the registration)."""
        Site.objects.filter(study=study).update(survey_opens_at=None, survey_closes_at=None)
        return register(
            study=study,
            user=user,
            password=password,
            statement=(
                "調査開始前に、評価指標・母数・目標値・判定規則を登録します。"
                "（デモ用の合成データです。）"
            ),
        )

    def _open_fieldwork(self, registration: Registration) -> tuple[dt.datetime, dt.datetime]:
        """Open the sites the study file opens, just after the authority's time, and the
        span the simulated submissions are dated in: from then to now."""
        opens = registration.timestamped_at + dt.timedelta(milliseconds=1)
        in_file = {s["code"] for s in read_toml(REFERENCE_STUDY)["sites"] if "survey_opens_at" in s}
        Site.objects.filter(study=registration.study, code__in=in_file).update(
            survey_opens_at=opens
        )
        wait = (opens - timezone.now()).total_seconds()
        if wait > -0.01:  # the authority's clock ahead of ours: no submission in the future
            time.sleep(wait + 0.02)
        return opens, timezone.now()

    def _print(self, invitations, password: str) -> None:  # type: ignore[no-untyped-def]
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Hyoka demo is ready."))
        self.stdout.write(f"  Admin:    {settings.SITE_URL}/admin/")
        self.stdout.write(f"  Login:    {DEMO_USER} / {password}")
        self.stdout.write("  Participant links (Japanese; add ?lang=en for English):")
        for inv in invitations:
            p = inv.participant
            self.stdout.write(f"    {p.site.name_en:<9} {p.reference}  {inv.url}")
