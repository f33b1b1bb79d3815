import time

from django.core.management.base import CommandError, CommandParser
from django.utils import translation

from kpi.models import EvaluationRun
from kpi.scoring.reporting import results_table
from kpi.scoring.services import run_request
from surveys.history import AuditedCommand
from surveys.models import Study


class Command(AuditedCommand):
    help = "Score a study now (through Celery), wait for the run and print its results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="the study's code, e.g. tokyo-dx-2021")
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait")
        parser.add_argument("--language", default="en", choices=["en", "ja"])
        parser.add_argument("--all-sites", action="store_true", help="also print each site")

    def handle(self, *args: object, **options: object) -> None:
        study = Study.objects.filter(code=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with the code {options['study']!r}.")
        run = run_request(study=study, trigger=EvaluationRun.Trigger.COMMAND)
        self.stdout.write(f"Run #{run.pk} queued for {study.code}; waiting for it…")
        deadline = time.monotonic() + float(options["timeout"])  # type: ignore[arg-type]
        while True:
            run.refresh_from_db()
            if run.is_finished:
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Run #{run.pk} is still {run.status} after {options['timeout']} s: "
                    "is a Celery worker running?"
                )
            time.sleep(0.2)
        if run.status == EvaluationRun.Status.FAILED:
            raise CommandError(f"Run #{run.pk} failed: {run.error}")
        results = run.results.select_related("site")
        if not options["all_sites"]:
            results = results.filter(site=None)
        with translation.override(str(options["language"])):
            self.stdout.write(
                f"Run #{run.pk}: {run.responses_counted} responses submitted up to "
                f"{run.cutoff:%Y-%m-%d %H:%M:%S %Z}, scored in {run.duration:.3f} s\n"
            )
            self.stdout.write(results_table(results))
