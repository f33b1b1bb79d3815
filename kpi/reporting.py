"""Plain-text presentation of a run's results (the `score` command, logs)."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from . import statistics as st
from .models import KPIResult


def format_value(result: KPIResult, value: float | None) -> str:
    if value is None:
        return "–"
    if result.kind == "share":
        return st.percent(value, 1 if value not in (0.0, 1.0) else 0)
    return f"{st.round_half_up(value, 2)}"


def headline(result: KPIResult) -> str:
    """The rounded value as published: a share in whole %, a ratio to one decimal."""
    if result.value is None:
        return "–"
    if result.kind == "share":
        return f"{st.share_percent(result.numerator, result.denominator)} %"
    if result.kind == "ratio":
        return str(st.round_half_up(st.Fraction(result.numerator, result.denominator), 1))
    return str(st.round_half_up(result.value, 2))


def verdict_text(result: KPIResult) -> str:
    if not result.verdict:
        return _("no target")
    if result.verdict == st.Verdict.INCONCLUSIVE:
        return _("inconclusive")
    if result.verdict == st.Verdict.MET:
        if result.met_with_confidence:
            return _("met with %(level)s %% confidence") % {
                "level": st.confidence_percent(result.confidence)
            }
        return _("met")
    return _("not met")


def target_text(result: KPIResult) -> str:
    if not result.comparator or result.threshold is None:
        return ""
    unit = " %" if result.kind == "share" else ""
    return f"{result.comparator} {result.threshold.normalize():f}{unit}"


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
    for r in results:
        interval = (
            f"{format_value(r, r.ci_low)} – {format_value(r, r.ci_high)}"
            if r.ci_low is not None and r.ci_high is not None
            else ""
        )
        counts = f"{r.numerator}/{r.denominator}"
        if r.overlap is not None:
            counts += " " + _("(both: %(n)d)") % {"n": r.overlap}
        nonresponse = (
            f"{format_value(r, r.nonresponse_low)} / {format_value(r, r.nonresponse_high)}"
            if r.nonresponse_low is not None
            else ""
        )
        rows.append(
            (
                r.kpi_code,
                r.site.code if r.site else _("all"),
                counts,
                headline(r),
                interval,
                target_text(r),
                verdict_text(r),
                nonresponse,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
