"""What a signer reviews on the sign-off page: the figures and verdicts being signed, read
from the evaluation's frozen snapshot (the very data the signed PDF is rendered from and
whose SHA-256 it prints), worded by the report's own formatter (``report.context.row``).

Nothing here reads the database or recomputes a statistic: the page shows what will be
signed, not the latest results of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.utils.translation import gettext as _

from kpi.scoring import disclosure, wording

from .models import Evaluation
from .report import context, text
from .report.words import pick


@dataclass(frozen=True)
class Line:
    row: context.Row
    verdict_class: str  # the results page's CSS class, "met-confident"

    @classmethod
    def of(cls, result: context.Data, protection: disclosure.KPIProtection) -> Line:
        row = context.row(result)
        cells = protection.cells(result)
        if not cells.figures:
            row = withheld(row, cells)
        return cls(row=row, verdict_class=row.verdict.replace("_", "-"))


def withheld(row: context.Row, cells: disclosure.ResultCells) -> context.Row:
    """``row`` with its small counts withheld (``kpi/scoring/disclosure.py``): the marks,
    and no figure that would give them back."""
    base = cells.denominator_mark or row.n
    why = disclosure.withheld_text(cells)
    return replace(
        row,
        n=base,
        counts=f"n = {base}" if row.kind == "mean" else f"{cells.numerator_mark or 'x'} / {base}",
        overlap="",
        value="",
        precise="",
        empty=why,
        interval="",
        verdict="inconclusive" if row.verdict != "none" else "none",
        verdict_text=why,
        mark=wording.MARKS["inconclusive"] if row.verdict != "none" else "",
        nonresponse="",
        tipping="",
        respondents=cells.respondents_mark or row.respondents,
    )


def threshold(evaluation: Evaluation) -> int:
    """The small-cell threshold the evaluation is published with: frozen in its snapshot
    (older snapshots: the study's)."""
    frozen = evaluation.snapshot.get("study", {}).get("small_cell_threshold")
    return int(frozen) if frozen is not None else evaluation.run.study.small_cell_threshold


@dataclass(frozen=True)
class Section:
    """One table of the page: the whole study, or one site."""

    title: str
    code: str  # the site's code, "" for the whole study
    lines: list[Line]

    def count(self, verdict: str) -> int:
        return sum(1 for line in self.lines if line.row.verdict == verdict)

    @property
    def met(self) -> int:
        return self.count("met") + self.count("met_confident")

    @property
    def not_met(self) -> int:
        return self.count("not_met")

    @property
    def inconclusive(self) -> int:
        return self.count("inconclusive")


@dataclass(frozen=True)
class Review:
    run_id: int
    cutoff: str
    finished: str
    responses_counted: str
    sections: list[Section]


def review(evaluation: Evaluation) -> Review:
    """The whole study first, then each site with a breakdown, in the report's order."""
    snap = context.Snapshot(evaluation.snapshot)
    protection = disclosure.protect_results(snap.data["results"], threshold(evaluation))
    sections = [
        Section(
            title=_("Whole study"),
            code="",
            lines=[Line.of(result, protection) for result in snap.overall.values()],
        )
    ]
    for site in snap.sites:
        lines = [
            Line.of(per_site[site["code"]], protection)
            for code in snap.codes()
            if site["code"] in (per_site := snap.by_site.get(code, {}))
        ]
        if lines:
            title = pick(site, "name") or site["code"]
            sections.append(Section(title=title, code=site["code"], lines=lines))
    run = snap.data["run"]
    counted = run.get("responses_counted")
    return Review(
        run_id=run["id"],
        cutoff=text.tokyo(run["cutoff"]),
        finished=text.tokyo(run.get("finished_at")),
        responses_counted="" if counted is None else wording.integer(counted),
        sections=sections,
    )
