"""Reads of scoring: runs and results, with the joins their callers (the admin) need."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import (
    Count,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from surveys import scoping
from surveys.models import Site, Study

from . import disclosure
from .models import EvaluationRun, KPIResult
from .statistics import Comparator, Verdict, responses_to_settle


def _count_subquery(queryset: QuerySet, outer: str, ref: str = "pk") -> Subquery:
    """``COUNT(*)`` of ``queryset`` rows whose ``outer`` matches the outer row's ``ref``."""
    counted = (
        queryset.filter(**{outer: OuterRef(ref)})
        .order_by()
        .values(outer)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Subquery(counted, output_field=IntegerField())


def latest_succeeded_run(study: Study) -> EvaluationRun | None:
    return (
        EvaluationRun.objects.filter(study=study, status=EvaluationRun.Status.SUCCEEDED)
        .order_by("-cutoff", "-pk")
        .first()
    )


def studies_with_latest_run(queryset: QuerySet[Study]) -> QuerySet[Study]:
    """Studies with their latest succeeded run (id, finish, cut-off, responses counted),
    how many KPIs it found met, not met and inconclusive for the whole study, and their
    newest run of any status (a scoring under way or failed shows there)."""
    succeeded = EvaluationRun.objects.filter(
        study=OuterRef("pk"), status=EvaluationRun.Status.SUCCEEDED
    ).order_by("-cutoff", "-pk")
    newest = EvaluationRun.objects.filter(study=OuterRef("pk")).order_by("-created_at", "-pk")

    def verdicts(verdict: str) -> Coalesce:
        results = KPIResult.objects.filter(site__isnull=True, verdict=verdict)
        return Coalesce(_count_subquery(results, "run", "latest_run_id"), 0)

    return queryset.annotate(
        latest_run_id=Subquery(succeeded.values("pk")[:1]),
        latest_run_finished=Subquery(succeeded.values("finished_at")[:1]),
        latest_run_cutoff=Subquery(succeeded.values("cutoff")[:1]),
        latest_run_responses=Subquery(succeeded.values("responses_counted")[:1]),
        kpis_met=verdicts(Verdict.MET),
        kpis_not_met=verdicts(Verdict.NOT_MET),
        kpis_inconclusive=verdicts(Verdict.INCONCLUSIVE),
        newest_run_id=Subquery(newest.values("pk")[:1]),
        newest_run_status=Subquery(newest.values("status")[:1]),
    )


def recent_runs(study: Study, limit: int = 10) -> list[EvaluationRun]:
    """The study's newest runs with their whole-study verdict counts (one query)."""
    overall = Q(results__site__isnull=True)
    return list(
        EvaluationRun.objects.filter(study=study)
        .select_related("requested_by")
        .annotate(
            kpis_met=Count("results", filter=overall & Q(results__verdict=Verdict.MET)),
            kpis_not_met=Count("results", filter=overall & Q(results__verdict=Verdict.NOT_MET)),
            kpis_inconclusive=Count(
                "results", filter=overall & Q(results__verdict=Verdict.INCONCLUSIVE)
            ),
        )
        .order_by("-created_at", "-pk")[:limit]
    )


@dataclass
class ResultSection:
    """The results of one scope of a run: the whole study (``site`` None) or one site."""

    site: Site | None
    results: list[KPIResult] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.results if r.verdict == verdict)

    @property
    def met(self) -> int:
        return self.count(Verdict.MET)

    @property
    def not_met(self) -> int:
        return self.count(Verdict.NOT_MET)

    @property
    def inconclusive(self) -> int:
        return self.count(Verdict.INCONCLUSIVE)

    @property
    def without_target(self) -> int:
        return self.count("")


def run_protection(run: EvaluationRun) -> disclosure.KPIProtection:
    """The small-cell protection of a run's per-site tables (the admin's and the API's),
    decided on every site's results whoever reads them: the pattern must not depend on
    the reader."""
    return disclosure.protect_results(
        list(run.results.select_related("site")), run.study.small_cell_threshold
    )


def visible_results(user: scoping.User, results: QuerySet[KPIResult]) -> QuerySet[KPIResult]:
    """The results a manager may read: the whole study's for members of the study, a
    site's for members of that site only. Superusers read all."""
    if scoping.sees_everything(user):
        return results
    overall = scoping.by_study_lookup(user, results.filter(site__isnull=True), "run__study_id")
    per_site = scoping.by_site_lookup(user, results.filter(site__isnull=False), "site_id")
    return overall | per_site


def run_result_sections(
    run: EvaluationRun, *, results: QuerySet[KPIResult] | None = None
) -> list[ResultSection]:
    """A run's results (or those of ``results``, e.g. ``visible_results``) as a report
    reads them, in one query: the whole study first, then each site by code; within
    each, by KPI order then code."""
    results = (
        (results if results is not None else KPIResult.objects.all())
        .filter(run=run)
        .select_related("site")
        .order_by("site__code", "order", "kpi_code")
    )
    overall = ResultSection(site=None)
    by_site: dict[int, ResultSection] = {}
    for result in results:
        if result.site_id is None:
            overall.results.append(result)
        else:
            assert result.site is not None
            by_site.setdefault(result.site_id, ResultSection(site=result.site)).results.append(
                result
            )
    sections = [overall] if overall.results else []
    return sections + sorted(by_site.values(), key=lambda s: s.site.code if s.site else "")


@dataclass(frozen=True)
class Outlook:
    """A KPI of the latest scoring, as the fieldwork watch shows it: ``to_settle`` more
    respondents (at the fewest) before its verdict no longer depends on what the
    non-respondents would have said; 0 when it already does not."""

    result: KPIResult
    to_settle: int


def fieldwork_outlook(user: scoping.User, study: Study) -> list[Outlook]:
    """For the study's latest succeeded run, each result the user may read that a
    non-response could flip (a share over respondents, with a target: scoring gave it a
    tipping direction), whole study first, then by site."""
    run = latest_succeeded_run(study)
    if run is None:
        return []
    results = visible_results(user, KPIResult.objects.filter(run=run).exclude(tipping_direction=""))
    outlooks = []
    for section in run_result_sections(run, results=results):
        for result in section.results:
            assert result.threshold is not None
            to_settle = responses_to_settle(
                result.numerator,
                result.denominator,
                result.invited,
                comparator=Comparator(result.comparator),
                # A share's target is stored in percent; the statistics take a proportion.
                threshold=result.threshold / 100,
            )
            outlooks.append(Outlook(result=result, to_settle=to_settle))
    return outlooks
