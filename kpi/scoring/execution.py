"""Executing a scoring run: what its task does.

Executing a run claims the row with a compare-and-set, counts and scores outside any
transaction, then writes every result and the final status in one transaction that locks
the run: running it twice, or twice at once, leaves exactly one set of results.
"""

from __future__ import annotations

import datetime as dt
import traceback
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from kpi.definitions.frozen import KPIDef, study_definitions
from kpi.registration.effects import changed_definitions, effects, registered_definitions

from .counting import SiteCounts, count_study, plan_for, total
from .models import EvaluationRun, KPIResult
from .score import score_all

# Errors worth a retry: the database restarting, a dropped connection, a lock timeout.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Scored:
    """What scoring found: the counts of the whole (of the sites counted) and the results,
    not saved: the whole's first for each KPI, then each site's."""

    overall: SiteCounts
    results: list[KPIResult]


def score_definitions(
    *, study_id: int, definitions: list[KPIDef], site_ids: list[int], cutoff: dt.datetime
) -> Scored:
    """Score ``definitions`` over the responses of ``site_ids`` submitted up to ``cutoff``:
    what a run stores, and what the admin's preview of an unsaved KPI shows (over the
    caller's sites), by the one engine."""
    plan = plan_for(definitions)
    per_site = count_study(study_id=study_id, site_ids=site_ids, cutoff=cutoff, plan=plan)
    overall = total(per_site.values())
    return Scored(overall=overall, results=score_all(definitions, per_site, overall, plan))


class RunMissing(LookupError):
    """The run was deleted (or its transaction rolled back) before the task ran."""


def run_execute(*, run_id: int) -> EvaluationRun:
    """Score the run's study and store its results. A no-op on a finished run.

    Transient database errors propagate (the task retries them); any other error marks
    the run failed with its message.
    """
    now = timezone.now()
    claimed = EvaluationRun.objects.filter(
        pk=run_id, status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
    ).update(status=EvaluationRun.Status.RUNNING, attempts=F("attempts") + 1)
    run = EvaluationRun.objects.select_related("study").filter(pk=run_id).first()
    if run is None:
        raise RunMissing(f"no evaluation run {run_id}")
    if not claimed:
        return run
    if run.started_at is None:
        # The cut-off is fixed by the first attempt, so a retry counts the same responses.
        EvaluationRun.objects.filter(pk=run_id, started_at=None).update(started_at=now, cutoff=now)
        run.refresh_from_db()
    try:
        current = study_definitions(run.study_id)
        # A registered study is judged by its registered specification; what its
        # deviations would change is scored beside it (kpi/registration/effects.py).
        registered = registered_definitions(run.study_id)
        definitions = registered if registered is not None else current
        sites = dict(run.study.sites.order_by("code").values_list("pk", "code"))
        site_ids = list(sites)
        assert run.cutoff is not None
        scored = score_definitions(
            study_id=run.study_id, definitions=definitions, site_ids=site_ids, cutoff=run.cutoff
        )
        overall, results = scored.overall, scored.results
        deviation_effects: list = []
        if registered is not None:
            changed = changed_definitions(registered, current)
            dropped = {d.code for d in registered} - {d.code for d in current}
            if changed or dropped:
                deviated = score_definitions(
                    study_id=run.study_id, definitions=changed, site_ids=site_ids, cutoff=run.cutoff
                )
                deviation_effects = effects(results, deviated.results, dropped, sites)
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        run_fail(run_id=run_id, error=_describe(exc))
        raise
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().select_related("study").get(pk=run_id)
        if run.is_finished:
            return run  # another execution of this run finished first
        run.results.all().delete()
        for result in results:
            result.run = run
        KPIResult.objects.bulk_create(results, batch_size=500)
        run.status = EvaluationRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.responses_counted = overall.respondents
        run.definitions = [d.to_json() for d in definitions]
        run.deviation_effects = deviation_effects
        run.error = ""
        run.save()
    return run


def run_fail(*, run_id: int, error: str) -> None:
    """Record that the run failed (unless it has finished meanwhile)."""
    EvaluationRun.objects.filter(
        pk=run_id, status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
    ).update(status=EvaluationRun.Status.FAILED, finished_at=timezone.now(), error=error[:4000])


def _describe(exc: BaseException) -> str:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return detail if not settings.DEBUG else traceback.format_exc()
