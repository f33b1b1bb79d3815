"""What a signer reviews on the sign-off page: the figures and verdicts being signed, read
from the evaluation's frozen snapshot (the very data the signed PDF is rendered from and
whose SHA-256 it prints), worded by the report's own formatter (``report.context.row``).

Nothing here reads the database or recomputes a statistic: the page shows what will be
signed, not the latest results of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from kpi.scoring import wording

from .models import Evaluation
from .report import context, text
from .report.words import pick


@dataclass(frozen=True)
class Line:
    row: context.Row
    verdict_class: str  # the results page's CSS class, "met-confident"

    @classmethod
    def of(cls, result: context.Data) -> Line:
        row = context.row(result)
        return cls(row=row, verdict_class=row.verdict.replace("_", "-"))


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
    sections = [
        Section(
            title=_("Whole study"),
            code="",
            lines=[Line.of(result) for result in snap.overall.values()],
        )
    ]
    for site in snap.sites:
        lines = [
            Line.of(per_site[site["code"]])
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
