"""The pure statistics of the KPI engine (kpi/scoring/statistics.py).

Every expected number comes from an independent computation: statsmodels, scipy, numpy,
a brute-force loop over exact fractions, or hand arithmetic written out here.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Literal

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from kpi.scoring.statistics import (
    Comparator,
    Judgement,
    Rule,
    Tipping,
    Verdict,
    confidence_percent,
    judge,
    mean_interval,
    multiplicity,
    nonresponse_range,
    one_sided_confidence,
    percent,
    ratio_interval,
    responses_to_settle,
    round_half_up,
    share_percent,
    tipping_point,
    wilson_interval,
)

GTE, GT, LTE, LT = Comparator.GTE, Comparator.GT, Comparator.LTE, Comparator.LT
SEVENTY = Decimal("0.70")


def scipy_z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


# --- Wilson -------------------------------------------------------------------------------


def wilson_by_quadratic(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson bounds as the roots in p of (p_hat - p)^2 = z^2 p (1 - p) / n."""
    z2 = scipy_z(confidence) ** 2
    p_hat = successes / n
    a, b, c = 1 + z2 / n, -(2 * p_hat + z2 / n), p_hat**2
    root = math.sqrt(b * b - 4 * a * c)
    low, high = (-b - root) / (2 * a), (-b + root) / (2 * a)
    return float(np.clip(low, 0, 1)), float(np.clip(high, 0, 1))


def statsmodels_wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


WILSON_GRID = [
    (successes, n, confidence)
    for n in (1, 2, 5, 10, 50, 229, 352, 1000, 10**6)
    for successes in sorted({0, 1, n // 3, n // 2, n - 1, n})
    for confidence in (0.8, 0.9, 0.95, 0.99, 0.999)
]


@pytest.mark.parametrize(("successes", "n", "confidence"), WILSON_GRID)
def test_wilson_matches_statsmodels_and_the_quadratic_over_a_grid(successes, n, confidence):
    interval = wilson_interval(successes, n, confidence)
    assert interval == pytest.approx(statsmodels_wilson(successes, n, confidence), abs=1e-9)
    assert interval == pytest.approx(wilson_by_quadratic(successes, n, confidence), abs=1e-9)


@st.composite
def share_and_confidence(draw: st.DrawFn) -> tuple[int, int, float]:
    n = draw(st.integers(1, 10**6))
    successes = draw(st.integers(0, n))
    confidence = draw(st.floats(0.8, 0.999))
    return successes, n, confidence


@given(share_and_confidence())
def test_wilson_matches_statsmodels_and_the_quadratic_for_any_share(case):
    successes, n, confidence = case
    low, high = wilson_interval(successes, n, confidence)
    assert 0 <= low <= successes / n <= high <= 1
    assert (low, high) == pytest.approx(statsmodels_wilson(*case), abs=1e-9)
    assert (low, high) == pytest.approx(wilson_by_quadratic(*case), abs=1e-9)


def test_wilson_bounds_are_where_the_score_statistic_equals_z():
    successes, n = 156, 229
    low, high = wilson_interval(successes, n)
    p_hat = successes / n
    for bound in (low, high):
        score = abs(p_hat - bound) / math.sqrt(bound * (1 - bound) / n)
        assert score == pytest.approx(scipy_z(0.95), abs=1e-9)


def test_wilson_of_all_229_reassured_reaches_one_and_stays_above_seventy_percent():
    low, high = wilson_interval(229, 229)
    z2 = scipy_z(0.95) ** 2
    assert high == 1.0
    assert low == pytest.approx(229 / (229 + z2), abs=1e-12)  # the x == n case by hand
    assert low > 0.70


@pytest.mark.parametrize(
    ("successes", "n", "confidence"),
    [(1, 0, 0.95), (0, 0, 0.95), (-1, 10, 0.95), (11, 10, 0.95), (5, 10, 0.0), (5, 10, 1.0)],
)
def test_wilson_rejects_impossible_inputs(successes, n, confidence):
    with pytest.raises(ValueError):
        wilson_interval(successes, n, confidence)


# --- the ratio of two overlapping counts --------------------------------------------------


def numpy_delta_ratio(
    a_only: int, both: int, b_only: int, neither: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Delta method from the multinomial covariance of the four cells (a only, both,
    b only, neither) and the gradient of log(p_a / p_b) in the cell probabilities."""
    cells = np.array([a_only, both, b_only, neither], dtype=float)
    n = cells.sum()
    pi = cells / n
    covariance = (np.diag(pi) - np.outer(pi, pi)) / n
    p_a, p_b = pi[0] + pi[1], pi[1] + pi[2]
    gradient = np.array([1 / p_a, 1 / p_a - 1 / p_b, -1 / p_b, 0.0])
    se = math.sqrt(gradient @ covariance @ gradient)
    ratio = p_a / p_b
    half = scipy_z(confidence) * se
    return float(ratio), float(ratio * math.exp(-half)), float(ratio * math.exp(half))


def test_reach_ratio_of_the_reference_case():
    # 117 online only, 39 both, 11 municipal only, 62 neither: 156 / 50 = 3.12
    point, low, high = numpy_delta_ratio(117, 39, 11, 62)
    assert point == pytest.approx(3.12, abs=1e-12)
    interval = ratio_interval(156, 50, 39, 229)
    assert interval == pytest.approx((low, high), rel=1e-9)
    assert interval[0] < 3.12 < interval[1]


@given(
    st.integers(0, 300),
    st.integers(0, 300),
    st.integers(0, 300),
    st.integers(0, 300),
    st.floats(0.8, 0.999),
)
def test_ratio_interval_matches_the_numpy_delta_method(a_only, both, b_only, neither, conf):
    assume(a_only + both > 0 and b_only + both > 0)
    a, b, n = a_only + both, b_only + both, a_only + both + b_only + neither
    point, low, high = numpy_delta_ratio(a_only, both, b_only, neither, conf)
    interval = ratio_interval(a, b, both, n, conf)
    assert interval == pytest.approx((low, high), rel=1e-9)
    assert interval[0] <= point * (1 + 1e-12) and point <= interval[1] * (1 + 1e-12)


def test_ratio_interval_narrows_as_n_grows_with_the_shares_fixed():
    widths = [
        high - low
        for low, high in (ratio_interval(156 * m, 50 * m, 39 * m, 229 * m) for m in (1, 2, 4, 8))
    ]
    assert widths == sorted(widths, reverse=True)
    assert len(set(widths)) == len(widths)


def test_ratio_interval_is_nan_when_the_numerator_is_zero():
    low, high = ratio_interval(0, 50, 0, 229)
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize(
    ("a", "b", "both", "n"),
    [
        (156, 0, 0, 229),  # no municipal users: no ratio
        (156, 50, 51, 229),  # more in both than in b
        (156, 50, -1, 229),
        (200, 100, 0, 229),  # the groups do not fit in n
        (156, 50, 39, 0),
        (230, 50, 39, 229),
    ],
)
def test_ratio_interval_rejects_impossible_counts(a, b, both, n):
    with pytest.raises(ValueError):
        ratio_interval(a, b, both, n)


# --- the mean of a scale ------------------------------------------------------------------


@given(st.lists(st.integers(1, 4), min_size=2, max_size=400), st.floats(0.8, 0.999))
def test_mean_interval_matches_statsmodels_normal_interval(scores, confidence):
    data = np.array(scores, dtype=float)
    expected = DescrStatsW(data).zconfint_mean(alpha=1 - confidence)
    interval = mean_interval(float(data.sum()), float((data**2).sum()), len(scores), confidence)
    assert interval == pytest.approx(tuple(map(float, expected)), abs=1e-9)


def test_mean_interval_by_hand():
    # scores 1, 2, 3, 4: mean 2.5, sample variance 5/3
    half = scipy_z(0.95) * math.sqrt(5 / 3 / 4)
    assert mean_interval(10, 30, 4) == pytest.approx((2.5 - half, 2.5 + half), abs=1e-12)


def test_mean_interval_of_one_score_is_nan_and_of_none_is_an_error():
    assert all(math.isnan(bound) for bound in mean_interval(3, 9, 1))
    with pytest.raises(ValueError):
        mean_interval(0, 0, 0)


# --- verdicts -----------------------------------------------------------------------------

MET, NOT_MET, INCONCLUSIVE = Verdict.MET, Verdict.NOT_MET, Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("value", "low", "high", "comparator", "rule", "expected"),
    [
        # >=: the point meets, the low bound does not
        (0.75, 0.65, 0.85, GTE, Rule.POINT, Judgement(MET, True, False)),
        (0.75, 0.65, 0.85, GTE, Rule.BOUND, Judgement(NOT_MET, True, False)),
        (0.90, 0.80, 0.95, GTE, Rule.BOUND, Judgement(MET, True, True)),
        (0.60, 0.50, 0.72, GTE, Rule.POINT, Judgement(NOT_MET, False, False)),
        # >: the same, and a low bound exactly on the target does not meet it
        (0.75, 0.65, 0.85, GT, Rule.POINT, Judgement(MET, True, False)),
        (0.75, Fraction(7, 10), 0.85, GT, Rule.BOUND, Judgement(NOT_MET, True, False)),
        (0.75, Fraction(7, 10), 0.85, GTE, Rule.BOUND, Judgement(MET, True, True)),
        # <=: judged on the high bound
        (0.65, 0.55, 0.75, LTE, Rule.POINT, Judgement(MET, True, False)),
        (0.65, 0.55, 0.75, LTE, Rule.BOUND, Judgement(NOT_MET, True, False)),
        (0.50, 0.40, Fraction(7, 10), LTE, Rule.BOUND, Judgement(MET, True, True)),
        (0.80, 0.72, 0.90, LTE, Rule.POINT, Judgement(NOT_MET, False, False)),
        # <
        (0.50, 0.40, Fraction(7, 10), LT, Rule.BOUND, Judgement(NOT_MET, True, False)),
        (0.50, 0.40, 0.60, LT, Rule.BOUND, Judgement(MET, True, True)),
        (0.65, 0.55, 0.75, LT, Rule.POINT, Judgement(MET, True, False)),
        # no bound: a point verdict still stands, a bound verdict cannot be given
        (0.75, None, None, GTE, Rule.POINT, Judgement(MET, True, None)),
        (0.75, math.nan, math.nan, GTE, Rule.BOUND, Judgement(INCONCLUSIVE, True, None)),
    ],
)
def test_judge_by_comparator_and_rule(value, low, high, comparator, rule, expected):
    judgement = judge(
        value, low, high, comparator=comparator, threshold=SEVENTY, rule=rule, n=100, min_n=30
    )
    assert judgement == expected


@pytest.mark.parametrize(
    ("comparator", "met"), [(GTE, True), (GT, False), (LTE, True), (LT, False)]
)
@pytest.mark.parametrize(
    "threshold", [Decimal("0.70"), Decimal("0.7"), Fraction(7, 10), 0.7, "0.70"]
)
@pytest.mark.parametrize("value", [Fraction(7, 10), 7 / 10])
def test_exactly_seventy_percent_sits_on_the_target(comparator, met, threshold, value):
    if isinstance(threshold, str):
        threshold = Decimal(threshold)
    judgement = judge(
        value,
        None,
        None,
        comparator=comparator,
        threshold=threshold,
        rule=Rule.POINT,
        n=10,
        min_n=10,
    )
    assert judgement.met_point is met


def test_a_share_just_below_the_target_is_not_met_exactly():
    # 699,999 / 1,000,000 is 0.699999: below 70 %, even though it is within 1e-6
    judgement = judge(
        Fraction(699_999, 1_000_000),
        None,
        None,
        comparator=GTE,
        threshold=SEVENTY,
        rule=Rule.POINT,
        n=10**6,
        min_n=30,
    )
    assert judgement.verdict is NOT_MET


def test_a_small_cell_is_inconclusive_whatever_its_value():
    too_few = judge(
        1.0, 0.9, 1.0, comparator=GTE, threshold=SEVENTY, rule=Rule.POINT, n=29, min_n=30
    )
    enough = judge(
        1.0, 0.9, 1.0, comparator=GTE, threshold=SEVENTY, rule=Rule.POINT, n=30, min_n=30
    )
    assert too_few == Judgement(INCONCLUSIVE, None, None)
    assert enough == Judgement(MET, True, True)


@pytest.mark.parametrize("value", [None, math.nan])
@pytest.mark.parametrize("rule", list(Rule))
def test_a_missing_value_is_inconclusive(value, rule):
    judgement = judge(
        value, 0.5, 0.9, comparator=GTE, threshold=SEVENTY, rule=rule, n=100, min_n=30
    )
    assert judgement == Judgement(INCONCLUSIVE, None, None)


def test_met_on_the_point_but_not_with_confidence_for_18_of_24():
    low, high = statsmodels_wilson(18, 24, 0.95)  # 75 %, low bound near 55 %
    by_point, by_bound = (
        judge(
            Fraction(18, 24),
            low,
            high,
            comparator=GTE,
            threshold=SEVENTY,
            rule=rule,
            n=24,
            min_n=20,
        )
        for rule in (Rule.POINT, Rule.BOUND)
    )
    assert by_point == Judgement(MET, True, False)
    assert by_bound == Judgement(NOT_MET, True, False)


def test_judge_rejects_negative_counts():
    with pytest.raises(ValueError):
        judge(0.5, 0.4, 0.6, comparator=GTE, threshold=SEVENTY, rule=Rule.POINT, n=-1, min_n=0)


# --- non-response -------------------------------------------------------------------------


def brute_nonresponse_range(successes: int, respondents: int, invited: int):
    missing = invited - respondents
    shares = [Fraction(successes + yes, invited) for yes in range(missing + 1)]
    return min(shares), max(shares)


def test_nonresponse_range_of_the_reference_case():
    # 229 of 352 answered; all 229 felt reassured
    assert nonresponse_range(229, 229, 352) == (229 / 352, 1.0)
    assert nonresponse_range(199, 229, 352) == (199 / 352, (199 + 123) / 352)


@given(
    st.integers(1, 60).flatmap(lambda invited: st.tuples(st.integers(0, invited), st.just(invited)))
)
def test_nonresponse_range_matches_brute_force(case):
    respondents, invited = case
    for successes in range(respondents + 1):
        low, high = brute_nonresponse_range(successes, respondents, invited)
        assert nonresponse_range(successes, respondents, invited) == (float(low), float(high))


@pytest.mark.parametrize(
    ("successes", "respondents", "invited"), [(0, 0, 0), (-1, 5, 10), (6, 5, 10), (5, 11, 10)]
)
def test_nonresponse_range_rejects_impossible_counts(successes, respondents, invited):
    with pytest.raises(ValueError):
        nonresponse_range(successes, respondents, invited)


def holds(share: Fraction, comparator: Comparator, target: Fraction) -> bool:
    return {
        GTE: share >= target,
        GT: share > target,
        LTE: share <= target,
        LT: share < target,
    }[comparator]


def brute_tipping(successes, respondents, invited, comparator, target: Fraction) -> Tipping:
    """Every non-respondent answers (the non-response range's assumption): try each
    number k of them answering against the verdict, the others for it, over the invited."""
    met = holds(Fraction(successes, respondents), comparator, target)
    raising_helps = comparator in (GTE, GT)
    direction: Literal["no", "yes"] = "no" if met == raising_helps else "yes"
    missing = invited - respondents
    for k in range(missing + 1):
        yes = k if direction == "yes" else missing - k
        share = Fraction(successes + yes, invited)
        if holds(share, comparator, target) != met:
            return Tipping(met, direction, k)
    return Tipping(met, direction, None)


def test_tipping_point_of_the_reference_case():
    # 229 of 229 reassured, 123 did not answer, all of them answer:
    # (229 + 123 - 106) / 352 = 246/352 < 70 % <= 247/352
    expected = brute_tipping(229, 229, 352, GTE, Fraction(7, 10))
    assert expected == Tipping(True, "no", 106)
    assert Fraction(246, 352) < Fraction(7, 10) <= Fraction(247, 352)
    assert tipping_point(229, 229, 352, comparator=GTE, threshold=SEVENTY) == expected


def test_tipping_point_is_exact_at_the_boundary():
    # 7/10 meets >= 70 %; with the 10 others answering, 4 "no" give 13/20 = 65 %, 3 give 70 %
    assert tipping_point(7, 10, 20, comparator=GTE, threshold=SEVENTY) == Tipping(True, "no", 4)
    # 7/10 does not meet > 70 %; 8 "yes" give 15/20 = 75 %, 7 give 70 %
    assert tipping_point(7, 10, 20, comparator=GT, threshold=SEVENTY) == Tipping(False, "yes", 8)
    # with nobody missing, nothing can tip it
    assert tipping_point(7, 10, 10, comparator=GTE, threshold=0.7) == Tipping(True, "no", None)


def test_tipping_point_with_hundreds_of_thousands_missing_is_minimal():
    successes, respondents, invited = 90_000, 100_000, 850_000
    result = tipping_point(successes, respondents, invited, comparator=GTE, threshold=SEVENTY)
    assert result.currently_met and result.direction == "no" and result.count is not None
    k, missing = result.count, invited - respondents
    assert Fraction(successes + missing - k, invited) < Fraction(7, 10)
    assert Fraction(successes + missing - k + 1, invited) >= Fraction(7, 10)


thresholds = st.one_of(
    st.fractions(min_value=Fraction(-1, 5), max_value=Fraction(6, 5), max_denominator=20),
    st.integers(-10, 110).map(lambda cents: Decimal(cents).scaleb(-2)),
)


@given(
    st.integers(1, 40).flatmap(
        lambda r: st.tuples(st.integers(0, r), st.just(r), st.integers(r, r + 60))
    ),
    st.sampled_from(list(Comparator)),
    thresholds,
)
def test_tipping_point_matches_brute_force(case, comparator, threshold):
    successes, respondents, invited = case
    expected = brute_tipping(successes, respondents, invited, comparator, Fraction(threshold))
    actual = tipping_point(
        successes, respondents, invited, comparator=comparator, threshold=threshold
    )
    assert actual == expected


@given(
    st.integers(1, 60).flatmap(
        lambda r: st.tuples(st.integers(0, r), st.just(r), st.integers(r, r + 200))
    ),
    st.sampled_from(list(Comparator)),
    thresholds,
)
def test_the_tipping_count_falls_where_the_non_response_range_crosses_the_target(
    case, comparator, threshold
):
    """One assumption for both (every non-respondent answers): the range's points are the
    shares over the invited with 0, 1, ... m of them answering against the verdict, and
    the tipping count is the first of those points on the other side of the target."""
    successes, respondents, invited = case
    missing, target = invited - respondents, Fraction(threshold)
    low, high = nonresponse_range(successes, respondents, invited)
    # The range's ends, exactly: all of them no, all of them yes.
    assert (low, high) == (successes / invited, (successes + missing) / invited)
    ends = Fraction(successes, invited), Fraction(successes + missing, invited)
    tip = tipping_point(successes, respondents, invited, comparator=comparator, threshold=threshold)
    met = tip.currently_met
    assert met == holds(Fraction(successes, respondents), comparator, target)

    def point(k: int) -> Fraction:  # k against the verdict, the others for it
        step = Fraction(k, invited)
        return ends[1] - step if tip.direction == "no" else ends[0] + step

    crosses = holds(ends[0], comparator, target) != holds(ends[1], comparator, target)
    assert (tip.count is not None) == crosses
    if tip.count is not None:
        assert holds(point(tip.count), comparator, target) != met
        assert holds(point(tip.count - 1), comparator, target) == met  # the first one


LEVELS = st.integers(500, 999).map(lambda permille: Decimal(permille).scaleb(-3))


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))), LEVELS)
def test_met_with_confidence_is_a_one_sided_claim_at_the_level_scipy_gives(case, level):
    """The verdict reads one bound of the two-sided Wilson interval at the KPI's level:
    that bound is the one-sided Wilson bound at 1 - (1 - level) / 2, the level printed."""
    successes, n = case
    one_sided = one_sided_confidence(level)
    # The one-sided level whose normal quantile is the two-sided interval's z (scipy).
    z = float(norm.ppf(0.5 + float(level) / 2))
    assert float(one_sided) == pytest.approx(float(norm.cdf(z)), abs=1e-12)
    low, high = wilson_interval(successes, n, float(level))
    # statsmodels' Wilson with alpha = 2 (1 - one-sided): its lower bound is the one-sided
    # lower bound at that level, its upper the one-sided upper bound.
    alpha = 2 * (1 - float(one_sided))
    sm_low, sm_high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    assert low == pytest.approx(float(sm_low), abs=1e-9)
    assert high == pytest.approx(float(sm_high), abs=1e-9)
    # And by hand: the lower root of the score equation with z = ppf(one-sided level).
    z1 = float(norm.ppf(float(one_sided)))
    assert z1 == pytest.approx(z, rel=1e-9)


def test_multiplicity_of_twelve_judgements_at_95_percent():
    family = multiplicity([Decimal("0.95")] * 12)
    assert family.judgements == 12
    assert family.each == Decimal("0.025")
    assert family.at_most == Decimal("0.300")
    # The bound needs no independence; if the judgements were independent, the chance of at
    # least one false "met" would be 1 - 0.975^12, under it.
    assert float(family.at_most) >= 1 - 0.975**12
    mixed = multiplicity([Decimal("0.95"), Decimal("0.9"), "0.99"])
    assert (mixed.each, mixed.at_most) == (Decimal("0.05"), Decimal("0.080"))
    assert multiplicity([Decimal("0.95")] * 50).at_most == 1  # a chance, capped
    assert multiplicity([]).judgements == 0


@pytest.mark.parametrize(
    ("successes", "respondents", "invited"), [(0, 0, 10), (6, 5, 10), (5, 11, 10), (-1, 5, 10)]
)
def test_tipping_point_rejects_impossible_counts(successes, respondents, invited):
    with pytest.raises(ValueError):
        tipping_point(successes, respondents, invited, comparator=GTE, threshold=SEVENTY)


def brute_settle(successes, respondents, invited, comparator, target: Fraction) -> int:
    """Try every number of further respondents (all answering in the verdict's favour)
    and every split of the rest: the first number after which no split flips the
    verdict."""
    met = holds(Fraction(successes, respondents), comparator, target)
    raising_helps = comparator in (GTE, GT)
    favourable_yes = met == raising_helps
    for more in range(invited - respondents + 1):
        s = successes + (more if favourable_yes else 0)
        r = respondents + more
        rest = invited - r
        flips = any(
            holds(Fraction(s + yes, r + k), comparator, target) != met
            for k in range(rest + 1)
            for yes in range(k + 1)
        )
        if not flips:
            return more
    raise AssertionError("unreachable: with nobody left nothing flips")


def test_responses_to_settle_at_the_reference_case_size():
    # 160 of 229 (69.9 %) misses >= 70 %. With m more respondents all answering "no", the
    # 123 - m left could at best bring (160 + 123 - m) / 352: below 70 % once m > 36.6.
    expected = brute_settle(160, 229, 352, GTE, Fraction(7, 10))
    assert expected == 37
    assert responses_to_settle(160, 229, 352, comparator=GTE, threshold=SEVENTY) == expected
    # 247 of 300 met: the worst case (247 + m) / 352 >= 70 % needs m >= 0
    assert responses_to_settle(247, 300, 352, comparator=GTE, threshold=SEVENTY) == 0
    # 230 of 300 met: (230 + m) / 352 >= 246.4 / 352 needs m >= 17
    assert brute_settle(230, 300, 352, GTE, Fraction(7, 10)) == 17
    assert responses_to_settle(230, 300, 352, comparator=GTE, threshold=SEVENTY) == 17


def test_responses_to_settle_is_zero_when_the_verdict_already_stands():
    # 9 of 10 with 1 missing: 9/11 >= 70 % whatever the last one says
    assert responses_to_settle(9, 10, 11, comparator=GTE, threshold=SEVENTY) == 0


@given(
    st.integers(1, 15).flatmap(
        lambda r: st.tuples(st.integers(0, r), st.just(r), st.integers(r, r + 15))
    ),
    st.sampled_from(list(Comparator)),
    thresholds,
)
def test_responses_to_settle_matches_brute_force(case, comparator, threshold):
    successes, respondents, invited = case
    expected = brute_settle(successes, respondents, invited, comparator, Fraction(threshold))
    actual = responses_to_settle(
        successes, respondents, invited, comparator=comparator, threshold=threshold
    )
    assert actual == expected


# --- rounding for display -----------------------------------------------------------------


def decimal_half_up(numerator: int, denominator: int, places: int) -> Decimal:
    with localcontext(prec=60):
        exact = Decimal(numerator) / Decimal(denominator)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@pytest.mark.parametrize(
    ("successes", "n", "places", "expected"),
    [
        (229, 352, 0, "65"),  # response rate 65.06 %
        (229, 352, 2, "65.06"),
        (227, 229, 0, "99"),  # 99.13 %
        (155, 156, 0, "99"),  # 99.36 %
        (199, 229, 0, "87"),  # 86.90 %
        (229, 229, 0, "100"),
        (1, 8, 0, "13"),  # 12.5 % rounds up, not to even
        (5, 8, 0, "63"),  # 62.5 %
        (3, 8, 0, "38"),  # 37.5 %: banker's rounding would also give 38
        (1, 16, 1, "6.3"),  # 6.25 %
        (0, 7, 1, "0.0"),
    ],
)
def test_share_percent_rounds_half_up(successes, n, places, expected):
    assert share_percent(successes, n, places) == decimal_half_up(100 * successes, n, places)
    assert str(share_percent(successes, n, places)) == expected


@given(st.integers(1, 10**6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_share_percent_matches_decimal_half_up(case):
    successes, n = case
    for places in (0, 1, 2):
        assert share_percent(successes, n, places) == decimal_half_up(100 * successes, n, places)


def test_the_reach_ratio_rounds_to_one_decimal():
    assert str(round_half_up(Fraction(156, 50), 1)) == "3.1"  # 3.12
    assert str(round_half_up(Fraction(315, 100), 1)) == "3.2"  # 3.15: a tie, rounded up


@given(st.fractions(min_value=-1000, max_value=1000, max_denominator=400), st.integers(0, 3))
def test_round_half_up_matches_decimal_half_up_away_from_zero(value, places):
    expected = decimal_half_up(value.numerator, value.denominator, places)
    assert round_half_up(value, places) == expected
    assert round_half_up(Decimal(expected), places) == expected


def test_percent_formats_a_proportion():
    assert percent(Fraction(229, 352)) == "65 %"
    assert percent(Fraction(229, 352), 1) == "65.1 %"
    assert percent(Fraction(1, 8)) == "13 %"
    assert percent(0.995) == "100 %"  # the float is read as the decimal 0.995, not 0.99499...
    assert percent(0.125, 1) == "12.5 %"
    assert percent(Decimal("0.0625"), 1) == "6.3 %"


@pytest.mark.parametrize("bad", [(1, 0), (-1, 10), (11, 10)])
def test_share_percent_rejects_impossible_counts(bad):
    with pytest.raises(ValueError):
        share_percent(*bad)


@pytest.mark.parametrize(
    ("confidence", "printed"),
    [(Decimal("0.95"), "95"), (Decimal("0.975"), "97.5"), ("0.990", "99"), (0.9, "90")],
)
def test_a_confidence_level_prints_as_the_reader_expects(confidence, printed):
    assert confidence_percent(confidence) == printed
