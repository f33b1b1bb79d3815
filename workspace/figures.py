"""The dashboard's figures: for every study the user sees, per site of theirs, who was
invited, who has a draft, who submitted (in all, today, per Japanese day, and after the
latest scoring's cut-off), and the latest scoring's whole-study results.

A fixed number of queries whatever the number of studies, sites and responses: each kind
of figure is one aggregate grouped by site (and day), over the user's sites
(``surveys.scoping``, the one place of scope), never a query per study or per site. The
per-day submissions give the response rate over time as well as today's.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from functools import reduce
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from fieldwork.watch import japan_time
from kpi.definitions.models import KPI
from kpi.evaluations.models import Evaluation
from kpi.scoring import selectors as scoring
from kpi.scoring.admin import SCORE_PERMISSION
from kpi.scoring.models import KPIResult
from surveys import scoping
from surveys.models import Membership, Participant, Response, Site, Study
from surveys.planner import index_scans


@dataclass
class SiteFigures:
    site: Site
    invited: int = 0
    drafts: int = 0
    submitted: int = 0
    submitted_today: int = 0
    #: Submitted after the latest succeeded scoring's cut-off (all of them without one).
    unscored: int = 0
    #: Submissions per Japanese day.
    by_day: dict[dt.date, int] = field(default_factory=dict)

    @property
    def rate(self) -> Fraction | None:
        """Submitted over invited, now; ``None`` with nobody invited."""
        return Fraction(self.submitted, self.invited) if self.invited else None

    def cumulative(self, days: list[dt.date]) -> list[int]:
        """How many had submitted by the end of each of ``days`` (sorted)."""
        counts, total, pending = [], 0, sorted(self.by_day.items())
        i = 0
        for day in days:
            while i < len(pending) and pending[i][0] <= day:
                total += pending[i][1]
                i += 1
            counts.append(total)
        return counts


@dataclass
class StudyFigures:
    """One study: the user's sites of it, and its latest scoring's whole-study results."""

    study: Study
    sites: list[SiteFigures]
    #: The user sees every site of the study (else the totals are "your sites").
    whole_study: bool
    #: The latest succeeded run's results for the whole study, in KPI order.
    results: list[KPIResult]
    #: The response-rate KPI's target: a percentage and its comparator, if there is one.
    rate_target: KPI | None
    #: Whether the user may start a scoring (permission and the manager role in a site).
    may_score: bool

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sites)

    @property
    def invited(self) -> int:
        return self.total("invited")

    @property
    def drafts(self) -> int:
        return self.total("drafts")

    @property
    def submitted(self) -> int:
        return self.total("submitted")

    @property
    def submitted_today(self) -> int:
        return self.total("submitted_today")

    @property
    def unscored(self) -> int:
        return self.total("unscored")

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.submitted, self.invited) if self.invited else None

    @property
    def latest_run_id(self) -> int | None:
        return getattr(self.study, "latest_run_id", None)

    @property
    def latest_run_cutoff(self) -> dt.datetime | None:
        return getattr(self.study, "latest_run_cutoff", None)

    @property
    def latest_evaluation_id(self) -> int | None:
        return getattr(self.study, "latest_evaluation_id", None)

    def days(self, today: dt.date) -> list[dt.date]:
        """Every day from the first submission to the last, or to ``today`` while the
        study is still open."""
        known = [d for s in self.sites for d in s.by_day]
        if not known:
            return []
        first, last = min(known), max(known)
        if self.study.period_end >= today > last:
            last = today
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _studies(user: scoping.User) -> list[Study]:
    """The user's studies, newest period first, with their latest succeeded run (from the
    KPI app's selector), their number of sites and their newest evaluation: one query."""
    newest_evaluation = Evaluation.objects.filter(study=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    all_sites = (
        Site.objects.filter(study=OuterRef("pk"))
        .order_by()
        .values("study")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return list(
        scoring.studies_with_latest_run(scoping.studies(user))
        .annotate(
            sites_total=Coalesce(Subquery(all_sites, output_field=IntegerField()), 0),
            latest_evaluation_id=Subquery(newest_evaluation.values("pk")[:1]),
        )
        .order_by("-period_start", "code")
    )


def _grouped(queryset: QuerySet, *keys: str, **counts: Any) -> list[dict[str, Any]]:
    return list(queryset.order_by().values(*keys).annotate(**counts).values(*keys, *counts))


def dashboard_figures(user: scoping.User, *, may_read_results: bool) -> list[StudyFigures]:
    """The figures of every study the user sees, over their sites of it. Nine queries
    with results (eight without; three more setting the planner on PostgreSQL), whatever
    the data."""
    studies = _studies(user)
    if not studies:
        return []
    study_ids = [s.pk for s in studies]
    sites = list(
        scoping.sites(user, Site.objects.filter(study_id__in=study_ids)).order_by("code", "pk")
    )
    site_ids = [s.pk for s in sites]
    by_site = {s.pk: SiteFigures(site=s) for s in sites}

    # Invited, as the KPI engine counts them (surveys.selectors.INVITED): the active
    # participants (an index-only count on participant_active_by_site) plus the few
    # withdrawn ones who had submitted. Two plain grouped counts, cheaper than one with
    # an OR across the join.
    active = _grouped(
        Participant.objects.filter(site_id__in=site_ids, status=Participant.Status.ACTIVE),
        "site_id",
        n=Count("*"),  # COUNT(*): an index-only scan where the index allows
    )
    withdrawn = _grouped(
        Participant.objects.filter(
            site_id__in=site_ids,
            status=Participant.Status.WITHDRAWN,
            response__status=Response.Status.SUBMITTED,
        ),
        "site_id",
        n=Count("*"),  # COUNT(*): an index-only scan where the index allows
    )
    for row in [*active, *withdrawn]:
        by_site[row["site_id"]].invited += row["n"]

    # Responses by site, status and Japanese day of submission (drafts have none); those
    # submitted after their study's latest cut-off counted alongside, in the same scan.
    cutoffs = {s.pk: s.latest_run_cutoff for s in studies}  # type: ignore[attr-defined]
    sites_of: dict[int, list[int]] = defaultdict(list)
    for s in sites:
        sites_of[s.study_id].append(s.pk)
    unscored = [
        Q(site_id__in=ids, submitted_at__gt=cutoffs[study_id])
        if cutoffs[study_id]
        else Q(site_id__in=ids)
        for study_id, ids in sites_of.items()
    ]
    zone = japan_time()
    # Two counts, each an index-only scan on PostgreSQL: drafts per site
    # (``response_site_status``), and submissions per site and Japanese day
    # (``response_submitted_day``, migration surveys 0017: the day and the submission
    # time read from the index in its order, no time converted per row; the planner
    # told so by surveys/planner.py).
    drafts: list[dict[str, Any]] = []
    submissions: list[dict[str, Any]] = []
    if site_ids:
        with index_scans():
            drafts = _grouped(
                Response.objects.filter(site_id__in=site_ids, status=Response.Status.DRAFT),
                "site_id",
                n=Count("*"),
            )
            submissions = _grouped(
                Response.objects.filter(
                    site_id__in=site_ids, status=Response.Status.SUBMITTED
                ).annotate(
                    day=TruncDate("submitted_at", tzinfo=zone)  # type: ignore[arg-type]
                ),
                "site_id",
                "day",
                n=Count("*"),
                # The submission time counted (it is in the index), not the id (it is not).
                unscored=Count("submitted_at", filter=reduce(operator.or_, unscored)),
            )
    today = timezone.localdate(timezone=zone)
    for row in drafts:
        by_site[row["site_id"]].drafts += row["n"]
    for row in submissions:
        site = by_site[row["site_id"]]
        site.submitted += row["n"]
        site.unscored += row["unscored"]
        site.by_day[row["day"]] = site.by_day.get(row["day"], 0) + row["n"]
        if row["day"] == today:
            site.submitted_today += row["n"]

    results: dict[int, list[KPIResult]] = defaultdict(list)
    run_ids = [s.latest_run_id for s in studies if s.latest_run_id]  # type: ignore[attr-defined]
    if may_read_results and run_ids:
        # The whole study's results: readable by a member of any site of the study
        # (kpi.scoring.selectors.visible_results); every study here is one of theirs.
        for result in KPIResult.objects.filter(run_id__in=run_ids, site__isnull=True).order_by(
            "run", "order", "kpi_code"
        ):
            results[result.run_id].append(result)

    # The response-rate KPI of each study: a share over everyone invited counting who
    # responded, with a target (fieldwork's watch draws it the same way).
    targets: dict[int, KPI] = {}
    for kpi in (
        KPI.objects.filter(
            study_id__in=study_ids,
            kind=KPI.Kind.SHARE,
            base=KPI.Base.INVITED,
            numerator__isnull=True,
        )
        .exclude(comparator="")
        .exclude(threshold__isnull=True)
        .order_by("-order", "-pk")  # the first in order wins below
    ):
        targets[kpi.study_id] = kpi

    scoring_sites = _scoring_site_ids(user)

    figures = []
    for study in studies:
        mine = [by_site[pk] for pk in sites_of.get(study.pk, [])]
        figures.append(
            StudyFigures(
                study=study,
                sites=mine,
                whole_study=len(mine) == study.sites_total,  # type: ignore[attr-defined]
                results=results.get(study.latest_run_id, []),  # type: ignore[attr-defined]
                rate_target=targets.get(study.pk),
                may_score=scoring_sites is None or any(s.site.pk in scoring_sites for s in mine),
            )
        )
    return figures


def _scoring_site_ids(user: scoping.User) -> set[int] | None:
    """The sites where the user may start a scoring (``None``: every site): the
    permission, and the manager role there (as "Score now" on the results page asks)."""
    if not user.has_perm(SCORE_PERMISSION):  # type: ignore[union-attr]
        return set()
    ids = scoping.site_ids(user, at_least=Membership.Role.MANAGER)
    return None if ids is None else set(ids.values_list("site_id", flat=True))
