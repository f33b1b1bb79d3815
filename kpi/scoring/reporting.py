"""A run's results as a plain-text table (the ``score`` and ``demo`` commands), worded by
``kpi.scoring.wording`` as in the admin and the report."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from . import wording
from .models import KPIResult


def results_table(results: Iterable[KPIResult]) -> str:
    rows = [
        (
            _("KPI"),
            _("scope"),
            _("n"),
            _("value"),
            _("interval"),
            _("target"),
            _("verdict"),
            _("if non-respondents said no / yes"),
        )
    ]
    for row in results:
        r = wording.Result.of(row)
        counts = wording.counts_with_overlap(r)
        rows.append(
            (
                row.kpi_code,
                row.site.code if row.site else _("all"),
                counts,
                wording.headline(r),
                wording.interval(r) if r.value is not None else "",
                wording.target(r),
                wording.verdict_text(r),
                wording.nonresponse(r),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    # A terminal shows the no-break spaces that keep "65 %" together in print as spaces.
    return "\n".join(line.rstrip().replace(wording.NBSP, " ") for line in lines)
