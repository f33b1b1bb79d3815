"""Turn counts into KPI results: the pure statistics applied to each KPI and scope."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from kpi.definitions.frozen import KPIDef

from . import statistics as st
from .counting import ALL, CountPlan, SiteCounts, base_conjunction, conjunction
from .models import KPIResult


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def _threshold(kpi: KPIDef) -> Fraction | None:
    """The target on the value's own scale: a share's target is typed in %."""
    threshold = kpi.threshold_decimal
    if threshold is None:
        return None
    exact = Fraction(threshold)
    return exact / 100 if kpi.kind == "share" else exact


def score_kpi(kpi: KPIDef, counts: SiteCounts, plan: CountPlan) -> KPIResult:
    """One KPI's figures in one scope (the whole study or a site); not saved."""
    confidence = float(Decimal(kpi.confidence))
    base = base_conjunction(kpi)
    numerator = conjunction(kpi.numerator.clauses) if kpi.numerator else ALL
    col = counts.columns
    overlap = None
    value: Fraction | float | None = None
    low = high = None
    if kpi.kind == "share":
        successes = col[plan.counts[conjunction(numerator, base)]]
        n = counts.invited if kpi.base == "invited" else col[plan.counts[base]]
        if n:
            value = Fraction(successes, n)
            low, high = st.wilson_interval(successes, n, confidence)
    elif kpi.kind == "ratio":
        successes, n = col[plan.counts[numerator]], col[plan.counts[base]]
        overlap = col[plan.counts[conjunction(numerator, base)]]
        if n:
            value = Fraction(successes, n)
            low, high = st.ratio_interval(successes, n, overlap, counts.respondents, confidence)
    else:  # mean
        alias = plan.means[(kpi.mean_question, base)]
        total, squares, n = col[f"{alias}_sum"], col[f"{alias}_sq"], col[f"{alias}_n"]
        successes = total
        if n:
            value = Fraction(total, n)
            low, high = st.mean_interval(total, squares, n, confidence)

    result = KPIResult(
        kpi_id=kpi.id,
        kpi_code=kpi.code,
        order=kpi.order,
        group=kpi.group,
        kind=kpi.kind,
        name_ja=kpi.name_ja,
        name_en=kpi.name_en,
        base_description_ja=kpi.base_description_ja,
        base_description_en=kpi.base_description_en,
        comparator=kpi.comparator,
        threshold=kpi.threshold_decimal,
        rule=kpi.rule,
        confidence=Decimal(kpi.confidence),
        min_n=kpi.min_n,
        numerator=successes,
        denominator=n,
        overlap=overlap,
        respondents=counts.respondents,
        invited=counts.invited,
        value=float(value) if value is not None else None,
        ci_low=_finite(low),
        ci_high=_finite(high),
    )
    target = _threshold(kpi)
    if target is not None:
        judgement = st.judge(
            value,
            low,
            high,
            comparator=st.Comparator(kpi.comparator),
            threshold=target,
            rule=st.Rule(kpi.rule),
            n=n,
            min_n=kpi.min_n,
        )
        result.verdict = judgement.verdict.value
        result.met_point = judgement.met_point
        result.met_with_confidence = judgement.met_with_confidence
    # What non-respondents could change: only for a share over all respondents.
    if kpi.kind == "share" and kpi.base == "respondents" and counts.invited and n:
        result.nonresponse_low, result.nonresponse_high = st.nonresponse_range(
            successes, n, counts.invited
        )
        if target is not None:
            tipping = st.tipping_point(
                successes,
                n,
                counts.invited,
                comparator=st.Comparator(kpi.comparator),
                threshold=target,
            )
            result.tipping_direction = tipping.direction
            result.tipping_count = tipping.count
    return result


def score_all(
    kpis: list[KPIDef], per_site: dict[int, SiteCounts], overall: SiteCounts, plan: CountPlan
) -> list[KPIResult]:
    results = []
    for kpi in kpis:
        results.append(score_kpi(kpi, overall, plan))
        if kpi.by_site:
            for site_id, counts in per_site.items():
                result = score_kpi(kpi, counts, plan)
                result.site_id = site_id
                results.append(result)
    return results
