"""The statistics the KPI report stands on: plain functions over numbers.

Nothing here knows about the ORM. The shell counts answers, calls these functions and
prints what they return. Every function validates its inputs and raises ``ValueError``
on counts that cannot describe a questionnaire (negative, more successes than answers).

Intervals are floats (they involve square roots). Comparisons with a KPI target are
exact wherever the value is exact: a share passed as ``Fraction(successes, n)`` is
compared with the target as fractions, so 7 out of 10 meets ">= 70 %".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from statistics import NormalDist
from typing import Literal, TypeAlias

#: A KPI target. Decimals and fractions are exact; a float is read as the decimal it
#: prints as (``0.7`` means 7/10, not the binary number nearest to it).
Threshold: TypeAlias = Decimal | Fraction | int | float
#: A value to judge: a ``Fraction`` is compared exactly, a float in floating point.
Value: TypeAlias = Fraction | float


class Comparator(StrEnum):
    GTE = ">="
    GT = ">"
    LTE = "<="
    LT = "<"


class Rule(StrEnum):
    """What a KPI is judged on."""

    POINT = "point"  # the point estimate
    BOUND = "bound"  # the interval's unfavourable bound (low for >= and >, high for <= and <)


class Verdict(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    INCONCLUSIVE = "inconclusive"


_OPPOSITE = {
    Comparator.GTE: Comparator.LT,
    Comparator.GT: Comparator.LTE,
    Comparator.LTE: Comparator.GT,
    Comparator.LT: Comparator.GTE,
}


# --- intervals ----------------------------------------------------------------------------


def z_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile for ``confidence`` (1.959964 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def one_sided_confidence(confidence: Decimal | float | str) -> Decimal:
    """The confidence of a claim made on one bound of a two-sided interval: 0.975 for 0.95.

    "Met with confidence" reads one bound only (the lower for "at least", the upper for
    "at most"), and a two-sided interval at level c misses on that side with probability
    (1 - c) / 2, so the claim holds at 1 - (1 - c) / 2. Exact in decimals.
    """
    level = Decimal(str(confidence))
    if not 0 < level < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return 1 - (1 - level) / 2


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for the proportion ``successes / n``.

    No continuity correction; the bounds lie in [0, 1] (exactly 0 for no successes and 1
    for all). ``n == 0`` raises ``ValueError``: a share over nobody has no interval.
    """
    _check_count(successes, n)
    if n == 0:
        raise ValueError("a proportion over n == 0 respondents has no interval")
    z = z_quantile(confidence)
    return _wilson_low(successes, n, z), 1 - _wilson_low(n - successes, n, z)


def _wilson_low(successes: int, n: int, z: float) -> float:
    """The lower Wilson bound, the smaller root of (n + z^2) p^2 - (2x + z^2) p + x^2 / n.

    Taken as the product of the roots over the larger root, which avoids the cancellation
    of "centre - half" (a tiny positive bound instead of 0 for x == 0). The upper bound is
    1 minus the lower bound of the failures.
    """
    z2 = z * z
    centre = (successes + z2 / 2) / (n + z2)
    half = z * math.sqrt(successes * (n - successes) / n + z2 / 4) / (n + z2)
    return successes * successes / (n * (n + z2)) / (centre + half)


def ratio_interval(
    a: int, b: int, both: int, n: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for the ratio ``a / b`` of two overlapping counts among the same n people.

    Method (printed in the report): delta method on the log scale for the ratio of two
    correlated proportions p_a = a/n and p_b = b/n, where ``both`` respondents are in
    both groups. With the multinomial covariance cov(p_a, p_b) = (p_ab - p_a p_b) / n,
    var(log R) = var_a / p_a^2 + var_b / p_b^2 - 2 cov / (p_a p_b), which simplifies to
    1/a + 1/b - 2 both / (a b). The interval is exp(log R -/+ z sqrt(var(log R))), with z
    the normal quantile for ``confidence``.

    ``b == 0`` raises ``ValueError`` (no ratio). ``a == 0`` gives the ratio 0 but no
    log-scale interval: the result is (nan, nan), which ``judge`` reads as inconclusive
    under the bound rule.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not (0 <= a <= n and 0 <= b <= n):
        raise ValueError(f"need 0 <= a, b <= n, got a={a}, b={b}, n={n}")
    if not 0 <= both <= min(a, b):
        raise ValueError(f"need 0 <= both <= min(a, b), got both={both}")
    if a + b - both > n:
        raise ValueError(f"a + b - both = {a + b - both} exceeds n = {n}")
    if b == 0:
        raise ValueError("the ratio a / b is undefined when b == 0")
    z = z_quantile(confidence)
    if a == 0:
        return math.nan, math.nan
    log_ratio = math.log(a / b)
    var_log = (a + b - 2 * both) / (a * b)
    half = z * math.sqrt(var_log)
    return math.exp(log_ratio - half), math.exp(log_ratio + half)


def mean_interval(
    total: float, sum_squares: float, n: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for the mean of n scores, given their sum and sum of squares.

    Normal approximation, mean -/+ z s / sqrt(n) with s the sample standard deviation
    (n - 1 in the denominator); a t interval would need scipy at run time. Its coverage
    is a little short for small n, which the KPI's minimum n guards against.
    ``n < 1`` raises ``ValueError`` (no mean); ``n == 1`` gives (nan, nan): the mean
    exists but its spread does not, and ``judge`` reads nan bounds as inconclusive.
    """
    if n < 1:
        raise ValueError(f"a mean needs n >= 1, got {n}")
    z = z_quantile(confidence)
    if n == 1:
        return math.nan, math.nan
    mean = total / n
    variance = max(0.0, (sum_squares - total * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half


# --- verdicts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """The verdict by the KPI's own rule, and both readings for the report.

    ``met_point``: the point estimate meets the target. ``met_with_confidence``: the
    interval's unfavourable bound meets it. Either is None when it cannot be said (too few
    respondents, no value, no bound).
    """

    verdict: Verdict
    met_point: bool | None
    met_with_confidence: bool | None


def exact_threshold(threshold: Threshold) -> Fraction:
    """The target as an exact fraction; a float is read as the decimal it prints as."""
    if isinstance(threshold, float):
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        return Fraction(repr(threshold))
    return Fraction(threshold)


def meets(value: Value, comparator: Comparator, threshold: Threshold) -> bool:
    """Does ``value`` satisfy ``value <comparator> threshold``?

    A ``Fraction`` (or int) is compared exactly; a float is compared with the float nearest
    the target, so a float that is the correctly rounded value of the exact target is equal
    to it.
    """
    target = exact_threshold(threshold)
    if isinstance(value, Fraction | int):
        return _holds(Fraction(value), Comparator(comparator), target)
    return _holds(float(value), Comparator(comparator), float(target))


def _holds(left: Value, comparator: Comparator, right: Value) -> bool:
    match comparator:
        case Comparator.GTE:
            return left >= right
        case Comparator.GT:
            return left > right
        case Comparator.LTE:
            return left <= right
        case Comparator.LT:
            return left < right


def judge(
    value: Value | None,
    low: Value | None,
    high: Value | None,
    *,
    comparator: Comparator,
    threshold: Threshold,
    rule: Rule,
    n: int,
    min_n: int,
) -> Judgement:
    """Judge a KPI's value (and its interval ``low``..``high``) against its target.

    Inconclusive, with both readings None, when ``n < min_n`` or the value is None or nan.
    Under ``Rule.BOUND`` the verdict is also inconclusive when the unfavourable bound is
    None or nan.
    """
    if n < 0 or min_n < 0:
        raise ValueError(f"n and min_n must be non-negative, got n={n}, min_n={min_n}")
    comparator, rule = Comparator(comparator), Rule(rule)
    if n < min_n or value is None or _is_nan(value):
        return Judgement(Verdict.INCONCLUSIVE, None, None)
    met_point = meets(value, comparator, threshold)
    bound = low if comparator in (Comparator.GTE, Comparator.GT) else high
    met_with_confidence = (
        None if bound is None or _is_nan(bound) else meets(bound, comparator, threshold)
    )
    met = met_point if rule is Rule.POINT else met_with_confidence
    if met is None:
        return Judgement(Verdict.INCONCLUSIVE, met_point, met_with_confidence)
    return Judgement(Verdict.MET if met else Verdict.NOT_MET, met_point, met_with_confidence)


@dataclass(frozen=True)
class Multiplicity:
    """What several "met with confidence" claims mean together.

    ``judgements``: how many targets were judged. ``each``: the largest chance of a false
    "met with confidence" for one of them (the one-sided error, 2.5 % at 95 %), when the
    true value is just off the target. ``at_most``: the chance that at least one of them is
    false, bounded by the sum of those chances (Bonferroni; it needs no independence,
    which the whole study and its own sites lack), capped at 1.
    """

    judgements: int
    each: Decimal
    at_most: Decimal


def multiplicity(levels: list[Decimal | float | str]) -> Multiplicity:
    """For the confidence levels of the judged targets (one per KPI and scope)."""
    errors = [1 - one_sided_confidence(level) for level in levels]
    return Multiplicity(
        judgements=len(errors),
        each=max(errors, default=Decimal(0)),
        at_most=min(Decimal(1), sum(errors, Decimal(0))),
    )


# --- non-response -------------------------------------------------------------------------


def nonresponse_range(successes: int, respondents: int, invited: int) -> tuple[float, float]:
    """The share over the invited if every non-respondent had answered no, and yes.

    Low: ``successes / invited``; high: ``(successes + invited - respondents) / invited``.
    """
    _check_nonresponse(successes, respondents, invited)
    if invited == 0:
        raise ValueError("nobody was invited")
    return successes / invited, (successes + invited - respondents) / invited


@dataclass(frozen=True)
class Tipping:
    """How many non-respondents answering against the verdict would flip it.

    The assumption is the non-response range's: every non-respondent answers, so the
    share is over everyone invited. With ``count`` of them giving ``direction`` and the
    rest the other answer, the share over the invited is one of the points of the range
    ``nonresponse_range`` prints; ``count`` is where the range crosses the target.

    ``currently_met``: the point verdict over the respondents alone. ``direction``: the
    answer that works against it; "no" lowers the share, "yes" raises it. So a met ">="
    KPI tips on "no", a met "<=" KPI on "yes", and a not-met one the other way.
    ``count``: the fewest non-respondents who, giving that answer (the others the other
    one), move the share over the invited to the other side of the target; None if not
    even all of them would (the whole range is on the verdict's side).
    """

    currently_met: bool
    direction: Literal["no", "yes"]
    count: int | None


def tipping_point(
    successes: int,
    respondents: int,
    invited: int,
    *,
    comparator: Comparator,
    threshold: Threshold,
) -> Tipping:
    """The fewest k of the m = invited - respondents non-respondents who, all answering
    ``direction`` while the other m - k answer the other way, would put the share over
    the invited on the other side of the target from the point verdict of ``successes /
    respondents``.

    Closed form in integers: with the target t = p/q and N invited, k "no" answers give
    the share (s + m - k) / N, k "yes" answers (s + k) / N. Each flip condition is linear
    in k (for example (s + m - k) / N < p/q  <=>  q k >= (s + m) q - p N + 1), and the
    smallest integer solution is a ceiling division. The respondents' share lies inside
    the range [s / N, (s + m) / N], so k = 0 never flips it.
    """
    _check_nonresponse(successes, respondents, invited)
    if respondents == 0:
        raise ValueError("with no respondents there is no verdict to tip")
    comparator = Comparator(comparator)
    target = exact_threshold(threshold)
    p, q = target.numerator, target.denominator
    s, r, total = successes, respondents, invited
    m = total - r
    currently_met = meets(Fraction(s, r), comparator, target)
    goes_up = comparator in (Comparator.GTE, Comparator.GT)
    # A met ">=" or ">" tips by lowering the share; a not-met one by raising it.
    direction: Literal["no", "yes"] = "no" if currently_met == goes_up else "yes"
    # The share must come to satisfy the opposite of the target if it is met, else the target.
    wanted = _OPPOSITE[comparator] if currently_met else comparator
    strict = wanted in (Comparator.GT, Comparator.LT)
    # "no": (s + m - k) / N <= t  <=>  q k >= (s + m) q - p N;
    # "yes": (s + k) / N >= t  <=>  q k >= p N - s q.
    beta = (s + m) * q - p * total if direction == "no" else p * total - s * q
    k = _smallest_k(q, beta + 1 if strict else beta, m)
    return Tipping(currently_met, direction, k)


def responses_to_settle(
    successes: int,
    respondents: int,
    invited: int,
    *,
    comparator: Comparator,
    threshold: Threshold,
) -> int:
    """The fewest further respondents after which no answers of the remaining
    non-respondents could flip the point verdict (``tipping_point`` finds no count): the
    fieldwork watch's "does another reminder matter" figure.

    A lower bound: it counts further respondents who all answer in the verdict's favour
    ("yes" for a met ">=" KPI, "no" for a not-met one), since any other answer only
    postpones the moment. At most ``invited - respondents``: once everyone has answered,
    nothing is left to flip it. Settling is monotone in the number of such respondents,
    so a bisection over ``tipping_point`` finds the smallest one.
    """
    _check_nonresponse(successes, respondents, invited)
    if respondents == 0:
        raise ValueError("with no respondents there is no verdict to settle")
    current = tipping_point(
        successes, respondents, invited, comparator=comparator, threshold=threshold
    )
    favourable_is_yes = current.direction == "no"  # the threat is the opposite answer

    def settled(more: int) -> bool:
        gained = more if favourable_is_yes else 0
        return (
            tipping_point(
                successes + gained,
                respondents + more,
                invited,
                comparator=comparator,
                threshold=threshold,
            ).count
            is None
        )

    low, high = 0, invited - respondents  # settled(high) holds: nobody is left
    while low < high:
        middle = (low + high) // 2
        if settled(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _smallest_k(alpha: int, beta: int, limit: int) -> int | None:
    """The smallest integer k in [0, limit] with alpha * k >= beta, or None."""
    if beta <= 0:
        return 0
    if alpha <= 0:
        return None
    k = -(-beta // alpha)  # ceiling division
    return k if k <= limit else None


# --- rounding for display -----------------------------------------------------------------


def round_half_up(value: Fraction | Decimal | int | float, places: int = 0) -> Decimal:
    """Round to ``places`` decimals, ties away from zero (Japanese official statistics).

    Exact for ``Fraction``, ``Decimal`` and ``int``; a float is read as the decimal it
    prints as. The reach ratio: ``round_half_up(Fraction(156, 50), 1) == Decimal("3.1")``.
    """
    if places < 0:
        raise ValueError(f"places must be non-negative, got {places}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot round {value}")
        exact = Fraction(repr(value))
    else:
        exact = Fraction(value)
    scaled = abs(exact) * 10**places
    digits, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        digits += 1
    sign = "-" if exact < 0 and digits else ""
    return Decimal(f"{sign}{digits}E-{places}")


def confidence_percent(confidence: Decimal | float | str, places: int = 1) -> str:
    """A confidence level as printed before "%": 0.95 as "95", 0.975 as "97.5" (a
    one-sided level of a KPI's three-decimal level needs ``places=2``: 0.8185 as "81.85")."""
    return f"{round_half_up(Decimal(str(confidence)) * 100, places).normalize():f}"


def share_percent(successes: int, n: int, places: int = 0) -> Decimal:
    """The share ``successes / n`` in percent, rounded half up exactly (227/229 -> 99)."""
    _check_count(successes, n)
    if n == 0:
        raise ValueError("a share over n == 0 respondents has no value")
    return round_half_up(Fraction(100 * successes, n), places)


def percent(value: Fraction | Decimal | int | float, places: int = 0) -> str:
    """A proportion as a percentage for display: ``percent(Fraction(229, 352)) == "65 %"``."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot format {value} as a percentage")
        value = Fraction(repr(value))
    return f"{round_half_up(Fraction(value) * 100, places):f} %"


# --- validation ---------------------------------------------------------------------------


def _is_nan(value: Value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _check_count(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")


def _check_nonresponse(successes: int, respondents: int, invited: int) -> None:
    if not 0 <= successes <= respondents <= invited:
        raise ValueError(
            "need 0 <= successes <= respondents <= invited, got "
            f"{successes}, {respondents}, {invited}"
        )
