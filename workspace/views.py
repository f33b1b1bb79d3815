"""The dashboard, the admin's first screen: the figures of ``figures.py`` in words, a
chart and links, for ``config.admin_site.AdminSite.index``.

Every number is worded by the KPI app's one formatter (``kpi.scoring.wording``; a KPI
card is the run page's ``ResultRow``), and the chart is fieldwork's response-rate chart
(``fieldwork.chart``), drawn by the same template: no figure is recomputed here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from fieldwork import chart
from fieldwork.watch import japan_time
from kpi.scoring import wording
from kpi.scoring.admin import ResultRow
from surveys import scoping

from .figures import SiteFigures, StudyFigures, dashboard_figures

#: Above this many sites the chart draws the total alone (its colours would repeat);
#: the table under it still gives every site.
MAX_LINES = len(chart.COLOURS)


def _rate(value: Fraction | None) -> str:
    return wording.pct(value, 1) if value is not None else wording.DASH


@dataclass(frozen=True)
class SiteRow:
    name: str
    code: str
    invited: str
    drafts: str
    submitted: str
    submitted_today: str
    rate: str


def _site_row(name: str, code: str, f: SiteFigures | StudyFigures) -> SiteRow:
    return SiteRow(
        name=name,
        code=code,
        invited=wording.integer(f.invited),
        drafts=wording.integer(f.drafts),
        submitted=wording.integer(f.submitted),
        submitted_today=wording.integer(f.submitted_today),
        rate=_rate(f.rate),
    )


@dataclass(frozen=True)
class ChartTable:
    """The chart's figures as a table (its text alternative): a row per line, a column
    per labelled date of the chart, and the last day."""

    dates: list[str]
    rows: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class StudyView:
    figures: StudyFigures
    prefix: str  # for the element ids of this study's section
    scope: str  # "Whole study" or "Your sites"
    sites: list[SiteRow]
    summary: SiteRow  # the sites' total
    chart: chart.RateChart | None
    chart_table: ChartTable | None
    chart_note: str
    cards: list[ResultRow]
    unscored: str
    cutoff: str
    score_url: str
    fieldwork_url: str
    run_url: str
    evaluation_url: str
    evaluation_label: str


def _chart(f: StudyFigures, scope: str, today: dt.date) -> tuple[Any, ChartTable | None, str]:
    days = f.days(today)
    if not days:
        return None, None, gettext("No response has been submitted yet.")
    lines = [(s.site.name, s.site.code, s.cumulative(days), s.invited) for s in f.sites]
    submitted = [sum(col) for col in zip(*(c for _, _, c, _ in lines), strict=True)]

    def rates(counts: list[int], base: int) -> list[Fraction | None]:
        return [Fraction(n, base) if base else None for n in counts]

    total = (scope, rates(submitted, f.invited))
    note = ""
    if len(lines) > MAX_LINES:
        series = []
        note = gettext(
            "With more than %(n)d sites the chart shows their total; the table gives each site."
        ) % {"n": MAX_LINES}
    else:
        series = [(name, code, rates(counts, base)) for name, code, counts, base in lines]
    target = f.rate_target
    drawn = chart.rate_chart(
        days=days,
        series=series,
        # With one site, its line is the total: drawn once.
        total=total if len(lines) != 1 else None,
        target=target.threshold if target else None,
        target_label=gettext("response-rate target: %(target)s")
        % {
            "target": wording.target_words(
                kind=target.kind, comparator=target.comparator, threshold=target.threshold
            )
        }
        if target
        else "",
        title=gettext("Cumulative response rate of “%(study)s”") % {"study": f.study.name},
    )
    # The table: the chart's labelled dates, and the last day if it has no label.
    step = max(1, -(-len(days) // chart.MAX_TICKS))
    picked = [i for i in range(len(days)) if i % step == 0]
    if picked[-1] != len(days) - 1:
        picked.append(len(days) - 1)
    rows = [
        (name, [_rate(rates(counts, base)[i]) for i in picked]) for name, _, counts, base in lines
    ]
    if len(lines) > 1:
        rows.append((scope, [_rate(total[1][i]) for i in picked]))
    table = ChartTable(dates=[date_format(days[i], "SHORT_DATE_FORMAT") for i in picked], rows=rows)
    return drawn, table, note


def _study_view(request: HttpRequest, f: StudyFigures, today: dt.date) -> StudyView:
    user: Any = request.user
    study = f.study
    scope = gettext("Whole study") if f.whole_study else gettext("Your sites")
    drawn, table, note = _chart(f, scope, today)
    unscored = ""
    if f.latest_run_id and f.unscored:
        unscored = ngettext(
            "%(n)s response not yet scored",
            "%(n)s responses not yet scored",
            f.unscored,
        ) % {"n": wording.integer(f.unscored)}
        if not f.whole_study:
            unscored = gettext("%(count)s (at your sites)") % {"count": unscored}
    evaluation_url = evaluation_label = ""
    if user.has_perm("kpi.view_evaluation"):
        if f.latest_evaluation_id:
            evaluation_url = reverse("admin:kpi_evaluation_change", args=[f.latest_evaluation_id])
            evaluation_label = gettext("Latest evaluation")
        elif f.latest_run_id and user.has_perm("kpi.add_evaluation"):
            evaluation_url = reverse("admin:kpi_evaluation_add") + f"?run={f.latest_run_id}"
            evaluation_label = gettext("Create an evaluation")
    return StudyView(
        figures=f,
        prefix=f"study-{study.pk}",
        scope=scope,
        sites=[_site_row(s.site.name, s.site.code, s) for s in f.sites],
        summary=_site_row(scope, "", f),
        chart=drawn,
        chart_table=table,
        chart_note=note,
        cards=[ResultRow.of(r) for r in f.results],
        unscored=unscored,
        cutoff=date_format(timezone.localtime(f.latest_run_cutoff), "SHORT_DATETIME_FORMAT")
        if f.latest_run_cutoff
        else "",
        score_url=reverse("admin:kpi_studyresults_score", args=[study.pk]) if f.may_score else "",
        fieldwork_url=reverse("admin:fieldwork_studyfieldwork_change", args=[study.pk])
        if user.has_perm("fieldwork.view_studyfieldwork")
        else "",
        run_url=reverse("admin:kpi_evaluationrun_change", args=[f.latest_run_id])
        if f.latest_run_id and user.has_perm("kpi.view_evaluationrun")
        else "",
        evaluation_url=evaluation_url,
        evaluation_label=evaluation_label,
    )


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """What the admin index shows above the list of models."""
    user: Any = request.user
    if not user.has_perm("surveys.view_study"):
        return {"dashboard": None}
    today = timezone.localdate(timezone=japan_time())
    studies = dashboard_figures(user, may_read_results=user.has_perm("kpi.view_evaluationrun"))
    return {
        "dashboard": [_study_view(request, f, today) for f in studies],
        "dashboard_today": date_format(today, "DATE_FORMAT"),
        "dashboard_scoped": not scoping.sees_everything(user),
    }
