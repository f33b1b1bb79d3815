"""A KPI result in words: the one formatter of the admin, the command line and the report.

Everything that turns a result into text lives here, so that the admin's table, the
``score`` command's table and the signed PDF say the same thing in the same words. It
works on :class:`Result`, a typed copy of the figures, made from a ``KPIResult`` row (the
admin, the command line) or from an evaluation's frozen snapshot (the report). It never
recomputes a statistic: it rounds and words what scoring stored.

Numbers as published: a share in whole percent rounded half up from the exact integers, a
ratio to one decimal, a mean to two. A no-break space keeps "65 %" on one line. Call the
functions inside ``translation.override`` for a language other than the active one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from . import statistics as st

NBSP = "\u00a0"
DASH = "–"


@dataclass(frozen=True)
class Result:
    """The figures of one KPI result that its words depend on."""

    kind: str  # "share", "ratio", "mean"
    comparator: str  # ">=", ">", "<=", "<", or "" with no target
    threshold: Decimal | None  # in percent for a share
    confidence: Decimal  # 0.95
    rule: str  # "point" or "bound"
    min_n: int
    numerator: int
    denominator: int
    overlap: int | None
    respondents: int
    invited: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str  # "", "met", "not_met", "inconclusive"
    met_point: bool | None
    met_with_confidence: bool | None
    nonresponse_low: float | None
    nonresponse_high: float | None
    tipping_direction: str  # "", "no", "yes"
    tipping_count: int | None

    @classmethod
    def of(cls, source: Any) -> Result:
        """From a ``KPIResult`` row, or from a result of an evaluation's snapshot (a dict
        whose threshold and confidence are strings)."""

        def get(name: str) -> Any:
            return source[name] if isinstance(source, Mapping) else getattr(source, name)

        values = {f.name: get(f.name) for f in fields(cls)}
        # A snapshot holds the decimals as strings; an empty text field reads "".
        threshold = values["threshold"]
        values["threshold"] = None if threshold in (None, "") else Decimal(threshold)
        values["confidence"] = Decimal(str(values["confidence"]))
        for name in ("comparator", "verdict", "tipping_direction"):
            values[name] = values[name] or ""
        return cls(**values)

    @property
    def non_respondents(self) -> int:
        return self.invited - self.respondents


# --- numbers ------------------------------------------------------------------------------


def _exact(value: Fraction | Decimal | int | float) -> Fraction:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot format {value} as a percentage")
        return Fraction(repr(value))  # the decimal the float prints as
    return Fraction(value)


def _rounds_to_an_end(exact: Fraction, digits: Decimal) -> bool:
    """Would these digits print 0 % or 100 % for a share that is not exactly that?"""
    return 0 < exact < 1 and digits in (0, 100)


def pct(value: Fraction | Decimal | int | float, places: int = 0) -> str:
    """A proportion as a percentage, rounded half up: ``pct(Fraction(229, 352)) == "65 %"``.

    Never 0 % or 100 % unless it is exactly that: a share that would round to one gets one
    more decimal (199 / 200 is "99.5 %"), and if it still would, it is printed as beyond
    the nearest figure that is not (1999 / 2000 is "> 99.9 %", 1 / 2000 "< 0.1 %").
    """
    exact = _exact(value)
    digits = st.round_half_up(exact * 100, places)
    if not _rounds_to_an_end(exact, digits):
        return f"{digits:f}{NBSP}%"
    digits = st.round_half_up(exact * 100, places + 1)
    if not _rounds_to_an_end(exact, digits):
        return f"{digits:f}{NBSP}%"
    step = Decimal(1).scaleb(-(places + 1))
    if digits == 100:
        return pgettext("share", "more than %(value)s") % {"value": f"{100 - step:f}{NBSP}%"}
    return pgettext("share", "less than %(value)s") % {"value": f"{step:f}{NBSP}%"}


def pct_number(value: Fraction | Decimal | int | float, places: int = 1) -> str:
    """The number part only, for ranges written "98.4–100.0 %". An end that would round
    to 0 or 100 without being it is rounded inwards instead (99.97 % as "99.9"), so that a
    range reaches 100.0 only when its end is 100 %."""
    exact = _exact(value)
    digits = st.round_half_up(exact * 100, places)
    if _rounds_to_an_end(exact, digits):
        step = Decimal(1).scaleb(-places)
        digits = 100 - step if digits == 100 else step
    return f"{digits:f}"


def decimal(value: Fraction | Decimal | int | float, places: int) -> str:
    return f"{st.round_half_up(value, places):f}"


def integer(n: int) -> str:
    return f"{n:,}"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def headline(r: Result) -> str:
    """The value as published: a share in whole %, a ratio to one decimal, a mean to two."""
    if r.value is None:
        return DASH
    if r.kind == "share":
        return pct(Fraction(r.numerator, r.denominator))
    if r.kind == "ratio":
        return decimal(Fraction(r.numerator, r.denominator), 1)
    return decimal(r.value, 2)


def precise(r: Result) -> str:
    """One more digit than published, from the integers where the value is a fraction."""
    if r.value is None:
        return ""
    if r.kind == "share":
        return pct(Fraction(r.numerator, r.denominator), 1)
    if r.kind == "ratio":
        return decimal(Fraction(r.numerator, r.denominator), 2)
    return decimal(r.value, 3)


def interval(r: Result) -> str:
    """The confidence interval, "98.4–100.0 %" for a share, "2.43–4.01" for a ratio."""
    if not (_finite(r.ci_low) and _finite(r.ci_high)):
        return DASH
    assert r.ci_low is not None and r.ci_high is not None
    if r.kind == "share":
        return f"{pct_number(r.ci_low)}{DASH}{pct_number(r.ci_high)}{NBSP}%"
    return f"{decimal(r.ci_low, 2)}{DASH}{decimal(r.ci_high, 2)}"


def level_number(r: Result) -> str:
    """The KPI's confidence level in percent, "95" (or "97.5"): the two-sided interval's."""
    return st.confidence_percent(r.confidence)


def level(r: Result) -> str:
    """The KPI's confidence level as a percentage, "95 %"."""
    return f"{level_number(r)}{NBSP}%"


def one_sided_number(r: Result) -> str:
    """The level a "met with confidence" claim really has, "97.5" for a 95 % interval:
    the verdict reads one bound of the two-sided interval (``st.one_sided_confidence``)."""
    return st.confidence_percent(st.one_sided_confidence(r.confidence), places=2)


def counts(r: Result) -> str:
    """Numerator over base, "227 / 229" (a mean: its number of answers, "n = 229")."""
    if r.kind == "mean":
        return f"n = {integer(r.denominator)}"
    return f"{integer(r.numerator)} / {integer(r.denominator)}"


def counts_with_overlap(r: Result) -> str:
    """``counts``, and for a ratio the respondents in both groups: "156 / 50 (both: 39)"."""
    if r.overlap is None:
        return counts(r)
    return f"{counts(r)} " + _("(both: %(n)d)") % {"n": r.overlap}


def nonresponse(r: Result) -> str:
    """The share over all invited if every non-respondent had answered no, and yes."""
    if r.nonresponse_low is None or r.nonresponse_high is None:
        return ""
    return f"{pct_number(r.nonresponse_low)}{DASH}{pct_number(r.nonresponse_high)}{NBSP}%"


# --- targets and verdicts -----------------------------------------------------------------


def target(r: Result) -> str:
    """The target in words: "at least 70 %" (the report's font has no ≥, and words read
    better than symbols)."""
    return target_words(kind=r.kind, comparator=r.comparator, threshold=r.threshold)


def target_words(*, kind: str, comparator: str, threshold: Decimal | None) -> str:
    """A target in words, for a result or for a KPI's definition."""
    if not comparator or threshold is None:
        return ""
    value = f"{threshold.normalize():f}" + (f"{NBSP}%" if kind == "share" else "")
    phrases = {
        ">=": _("at least %(value)s"),
        ">": _("more than %(value)s"),
        "<=": _("at most %(value)s"),
        "<": _("less than %(value)s"),
    }
    return phrases[comparator] % {"value": value}


def verdict_key(r: Result) -> str:
    """ "none", "met_confident", "met", "not_met" or "inconclusive": for CSS classes,
    marks and counting."""
    if not r.verdict:
        return "none"
    if r.verdict == st.Verdict.MET:
        return "met_confident" if r.met_with_confidence else "met"
    return r.verdict


#: A mark beside each verdict word, so that a table reads in black and white as in colour.
MARKS = {"met_confident": "◎", "met": "○", "not_met": "×", "inconclusive": "△", "none": ""}


def verdict_text(r: Result) -> str:
    """Met, met with 95 % confidence, not met, inconclusive, or no target."""
    key = verdict_key(r)
    if key == "none":
        return _("no target")
    if key == "inconclusive":
        return _("inconclusive")
    if key == "met_confident":
        # The level of the claim, not of the interval: its one bound errs half as often.
        # A no-break space keeps "97.5 %" together when the verdict wraps.
        worded = _("met with %(level)s %% confidence (one-sided)") % {"level": one_sided_number(r)}
        return worded.replace(" %", NBSP + "%")
    if key == "met":
        return _("met")
    return _("not met")


def tipping(r: Result) -> str:
    """What the non-respondents could change about the target on the respondents' share.

    The assumption is the non-response range's: every non-respondent answers. Scoring
    stores the answer that would flip it (``tipping_direction``: "no" lowers the share,
    "yes" raises it) and how many would have to give it, the others giving the other
    answer (``tipping_count``, None if not even all of them: the whole range is on the
    verdict's side). Whether the share is on target now follows from the two: a
    share on an "at least" target is pushed off it by "no" answers, one on an "at most"
    target by "yes" answers. No sentence beside "inconclusive": there is no verdict to
    flip.
    """
    direction, count = r.tipping_direction, r.tipping_count
    if not direction or r.nonresponse_low is None or r.verdict == st.Verdict.INCONCLUSIVE:
        return ""
    n = integer(r.non_respondents)
    raises_target = r.comparator in (st.Comparator.GTE, st.Comparator.GT)
    on_target = (direction == "no") == raises_target
    if count is None:
        if on_target:
            if direction == "no":
                return _("holds even if all %(n)s non-respondents had answered no") % {"n": n}
            return _("holds even if all %(n)s non-respondents had answered yes") % {"n": n}
        if direction == "yes":
            return _("stays unmet even if all %(n)s non-respondents had answered yes") % {"n": n}
        return _("stays unmet even if all %(n)s non-respondents had answered no") % {"n": n}
    # Everyone answers, as in the range: k against the verdict, the others for it.
    values = {"k": integer(count), "n": n, "rest": integer(r.non_respondents - count)}
    if direction == "no":
        return (
            _(
                "flips if %(k)s of the %(n)s non-respondents had answered no "
                "and the other %(rest)s yes"
            )
            % values
        )
    return (
        _("flips if %(k)s of the %(n)s non-respondents had answered yes and the other %(rest)s no")
        % values
    )


def empty_value(r: Result, *, over_invited: bool = False) -> str:
    """Why a result has no value: nobody invited, nobody answered, nobody in the base."""
    if over_invited:
        return _("no participants") if r.invited == 0 else _("no respondents")
    if r.respondents == 0:
        return _("no respondents")
    return _("nobody in the base")


# --- methods: what the words above mean -------------------------------------------------


def methods_confidence() -> str:
    """What "met with confidence" claims, for the report's Methods (the 95 % example)."""

    def percent_of(level: Decimal) -> str:
        return f"{st.confidence_percent(level, places=2)}{NBSP}%"

    return _(
        'A target is "met with %(one_sided)s confidence (one-sided)" when the whole '
        "two-sided %(level)s interval meets it. Only the interval's unfavourable bound is "
        'read (the lower for "at least", the upper for "at most"), and a two-sided interval '
        "misses on that one side half as often as on either, so the claim holds at "
        "%(one_sided)s, not %(level)s. A KPI set at another level is worded at its own: "
        "%(other)s gives %(other_one_sided)s one-sided."
    ) % {
        "level": percent_of(Decimal("0.95")),
        "one_sided": percent_of(st.one_sided_confidence(Decimal("0.95"))),
        "other": percent_of(Decimal("0.9")),
        "other_one_sided": percent_of(st.one_sided_confidence(Decimal("0.9"))),
    }


def methods_nonresponse() -> str:
    """The one assumption of the non-response range and the tipping point."""
    return _(
        "Both the non-response range and the tipping point suppose that every "
        "non-respondent had answered: the range runs from all of them answering no to all "
        "answering yes, and the tipping point is the fewest of them who, answering against "
        "the verdict on the point estimate while the others answer for it, would put the "
        "share over everyone invited on the other side of the target, which is where the "
        "range crosses the target."
    )


def judgements(results: list[Result]) -> str:
    """How many targets were judged, and what that means for the chance of a false "met
    with confidence" among them: for the report's Methods (one KPI per study and per site
    counts once each; a result with no target is no judgement)."""
    judged = [r for r in results if r.verdict]
    if not judged:
        return ""
    family = st.multiplicity([r.confidence for r in judged])
    count = integer(family.judgements)
    each = f"{st.confidence_percent(family.each, places=2)}{NBSP}%"
    if family.judgements == 1:
        return _(
            "This report judges one target. If the target is in fact not met, the chance "
            'that it is still reported "met with confidence" is at most %(each)s.'
        ) % {"each": each}
    return _(
        "This report judges %(count)s targets (each KPI with a target, for the whole study "
        'and for each site). When a target is in fact not met, each is reported "met with '
        'confidence" by chance at most %(each)s of the time; over all %(count)s, the chance '
        'of at least one such false "met" is higher, up to %(at_most)s (the sum of theirs). '
        'A "met" on the point estimate alone has no such bound: a true share just short of '
        'the target is reported "met" about half the time.'
    ) % {
        "count": count,
        "each": each,
        "at_most": f"{st.confidence_percent(family.at_most, places=2)}{NBSP}%",
    }
