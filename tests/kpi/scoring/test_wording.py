"""A result in words (kpi.scoring.wording), the one formatter of the admin, the command line and
the report: rounding, targets, verdicts, and what the non-respondents could change, for
every comparator, verdict and robustness, in English and Japanese."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from django.utils import translation

from kpi.scoring import statistics as st
from kpi.scoring.wording import (
    Result,
    counts,
    empty_value,
    headline,
    interval,
    precise,
    target,
    tipping,
    verdict_key,
    verdict_text,
)
from tests.test_admin_untranslated import catalogue_dir, japanese  # noqa: F401

# ``japanese``: the Japanese catalogue with this branch's pending strings compiled on top.


def result(**fields: object) -> Result:
    """A result as an evaluation's snapshot stores it (threshold and confidence as text)."""
    base: dict[str, object] = {
        "kind": "share",
        "numerator": 227,
        "denominator": 229,
        "respondents": 229,
        "invited": 352,
        "overlap": None,
        "value": 227 / 229,
        "ci_low": 0.9688,
        "ci_high": 0.9976,
        "comparator": ">=",
        "threshold": "70",
        "confidence": "0.95",
        "rule": "point",
        "min_n": 30,
        "verdict": "met",
        "met_point": True,
        "met_with_confidence": True,
        "nonresponse_low": 227 / 352,
        "nonresponse_high": 350 / 352,
        "tipping_direction": "no",
        "tipping_count": 104,  # (227 + 123 - 104) / 352 < 70 % <= (227 + 123 - 103) / 352
    }
    return Result.of({**base, **fields})


def test_values_are_rounded_half_up_from_the_counts():
    assert headline(result()) == "99\u00a0%"
    assert precise(result()) == "99.1\u00a0%"
    # 1 / 8 = 12.5 %: half up gives 13 (round-half-even would give 12).
    assert headline(result(numerator=1, denominator=8, value=0.125)) == "13\u00a0%"
    ratio = result(kind="ratio", numerator=156, denominator=50, value=3.12, overlap=39)
    assert (headline(ratio), precise(ratio)) == ("3.1", "3.12")
    assert interval(result()) == "96.9–99.8\u00a0%"
    assert counts(result()) == "227 / 229"
    assert counts(result(kind="mean", denominator=1234, value=3.2)) == "n = 1,234"


def test_targets_and_verdicts_are_words_at_the_kpis_own_level(japanese):  # noqa: F811
    with translation.override("en"):
        assert target(result()) == "at least 70\u00a0%"
        assert target(result(comparator="<", threshold="2.5", kind="ratio")) == "less than 2.5"
        # The claim reads one bound of the two-sided interval: its level is one-sided.
        assert verdict_text(result()) == "met with 97.5\u00a0% confidence (one-sided)"
        assert verdict_text(result(confidence="0.9")) == "met with 95\u00a0% confidence (one-sided)"
        assert verdict_text(result(met_with_confidence=False)) == "met"
        assert verdict_text(result(verdict="not_met")) == "not met"
        assert verdict_text(result(verdict="inconclusive")) == "inconclusive"
        assert verdict_text(result(verdict="", comparator="", threshold=None)) == "no target"
        assert tipping(result()) == (
            "flips if 104 of the 123 non-respondents had answered no and the other 19 yes"
        )
        empty = result(numerator=0, denominator=0, respondents=0, invited=0, value=None)
        assert empty_value(empty) == "no respondents"
        assert empty_value(empty, over_invited=True) == "no participants"
    with translation.override("ja"):
        assert target(result()) == "70\u00a0%以上"
        assert verdict_text(result()) == "片側97.5%信頼度で達成"


def test_a_kpi_row_and_a_snapshot_entry_give_the_same_words(reference_study):
    """The admin and the command line word a ``KPIResult`` row, the report a snapshot
    entry: the same result gives the same text either way."""
    from kpi.evaluations import snapshot
    from kpi.models import EvaluationRun, KPIResult
    from kpi.scoring.services import run_request
    from kpi.scoring.tasks import score_run

    run = run_request(study=reference_study, trigger=EvaluationRun.Trigger.MANUAL)
    score_run.apply(args=[run.pk])
    rows = list(KPIResult.objects.filter(run=run))
    assert rows
    for row in rows:
        entry = snapshot._result(row)
        from_row, from_snapshot = Result.of(row), Result.of(entry)
        for words in (headline, precise, interval, counts, target, verdict_text, tipping):
            assert words(from_row) == words(from_snapshot), (row.kpi_code, words.__name__)


# --- what the non-respondents could change: every comparator x verdict x robustness -------

# 90 of 100 invited answered: 10 non-respondents. Successes chosen so that each case holds
# under each comparator; the brute force below checks that it does.
CASES = [
    # comparator, threshold, successes, on target now, robust
    (">=", 70, 80, True, True),
    (">=", 70, 66, True, False),
    (">=", 70, 10, False, True),
    (">=", 70, 60, False, False),
    (">", 70, 80, True, True),
    (">", 70, 66, True, False),
    (">", 70, 10, False, True),
    (">", 70, 61, False, False),
    ("<=", 30, 10, True, True),
    ("<=", 30, 24, True, False),
    ("<=", 30, 80, False, True),
    ("<=", 30, 30, False, False),
    ("<", 30, 10, True, True),
    ("<", 30, 24, True, False),
    ("<", 30, 80, False, True),
    ("<", 30, 29, False, False),
]
RESPONDENTS, INVITED = 90, 100

OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


def brute_force(comparator: str, threshold: int, successes: int) -> tuple[bool, str, int | None]:
    """On target now, the answer that could flip it, and the fewest non-respondents who
    would have to give it while the others give the other answer (everyone answers, as in
    the non-response range): by trying every count, with no algebra."""
    target_share = Fraction(threshold, 100)
    holds = OPS[comparator]
    now = holds(Fraction(successes, RESPONDENTS), target_share)
    missing = INVITED - RESPONDENTS
    # Every number of yes among the non-respondents, the others answering no.
    flipping = [
        yes
        for yes in range(missing + 1)
        if holds(Fraction(successes + yes, INVITED), target_share) != now
    ]
    if flipping and missing in flipping:  # flipped by yes answers: the fewest that do
        return now, "yes", min(flipping)
    if flipping:  # flipped by no answers
        return now, "no", missing - max(flipping)
    # Nothing flips it: the answer that works against it is the one "robust" speaks of.
    pushes_down = comparator in (">=", ">")
    return now, ("no" if now == pushes_down else "yes"), None


EXPECTED = {
    # (on target, robust, answer): (English, Japanese); n = 10 non-respondents, k varies
    (True, True, "no"): (
        "holds even if all 10 non-respondents had answered no",
        "無回答者10人が全員「いいえ」と答えていても達成は変わらない",
    ),
    (True, True, "yes"): (
        "holds even if all 10 non-respondents had answered yes",
        "無回答者10人が全員「はい」と答えていても達成は変わらない",
    ),
    (False, True, "yes"): (
        "stays unmet even if all 10 non-respondents had answered yes",
        "無回答者10人が全員「はい」と答えていても未達成のまま",
    ),
    (False, True, "no"): (
        "stays unmet even if all 10 non-respondents had answered no",
        "無回答者10人が全員「いいえ」と答えていても未達成のまま",
    ),
    (True, False, "no"): (
        "flips if {k} of the 10 non-respondents had answered no and the other {rest} yes",
        "無回答者10人のうち{k}人が「いいえ」、残る{rest}人が「はい」と答えていれば判定が変わる",
    ),
    (True, False, "yes"): (
        "flips if {k} of the 10 non-respondents had answered yes and the other {rest} no",
        "無回答者10人のうち{k}人が「はい」、残る{rest}人が「いいえ」と答えていれば判定が変わる",
    ),
    (False, False, "no"): (
        "flips if {k} of the 10 non-respondents had answered no and the other {rest} yes",
        "無回答者10人のうち{k}人が「いいえ」、残る{rest}人が「はい」と答えていれば判定が変わる",
    ),
    (False, False, "yes"): (
        "flips if {k} of the 10 non-respondents had answered yes and the other {rest} no",
        "無回答者10人のうち{k}人が「はい」、残る{rest}人が「いいえ」と答えていれば判定が変わる",
    ),
}


def scored(comparator: str, threshold: int, successes: int, verdict: str) -> Result:
    """The result as scoring stores it (the engine's tipping point)."""
    tip = st.tipping_point(
        successes,
        RESPONDENTS,
        INVITED,
        comparator=st.Comparator(comparator),
        threshold=Fraction(threshold, 100),  # a share's target in percent, as a proportion
    )
    low, high = st.nonresponse_range(successes, RESPONDENTS, INVITED)
    return result(
        comparator=comparator,
        threshold=str(threshold),
        numerator=successes,
        denominator=RESPONDENTS,
        respondents=RESPONDENTS,
        invited=INVITED,
        value=successes / RESPONDENTS,
        verdict=verdict,
        met_with_confidence=False,
        nonresponse_low=low,
        nonresponse_high=high,
        tipping_direction=tip.direction,
        tipping_count=tip.count,
    )


@pytest.mark.parametrize(("comparator", "threshold", "successes", "on_target", "robust"), CASES)
@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_tipping_sentence_says_what_the_non_respondents_could_change(
    comparator,
    threshold,
    successes,
    on_target,
    robust,
    language,
    japanese,  # noqa: F811
):
    now, answer, k = brute_force(comparator, threshold, successes)
    assert (now, k is None) == (on_target, robust)  # the case is what it says it is
    r = scored(comparator, threshold, successes, "met" if on_target else "not_met")
    assert (r.tipping_direction, r.tipping_count) == (answer, k)
    english_words, japanese_words = EXPECTED[(on_target, robust, answer)]
    with translation.override(language):
        words = tipping(r)
        expected = english_words if language == "en" else japanese_words
        rest = None if k is None else INVITED - RESPONDENTS - k
        assert words == expected.format(k=k, rest=rest)
        assert verdict_key(r) == ("met" if on_target else "not_met")


@pytest.mark.parametrize(("comparator", "threshold", "successes", "on_target", "robust"), CASES)
def test_no_tipping_sentence_stands_beside_inconclusive(
    comparator,
    threshold,
    successes,
    on_target,
    robust,
    japanese,  # noqa: F811
):
    r = scored(comparator, threshold, successes, "inconclusive")
    for language in ("en", "ja"):
        with translation.override(language):
            assert tipping(r) == ""
            assert verdict_text(r) == ("inconclusive" if language == "en" else "判定不能")


def test_the_at_most_target_met_and_robust_is_worded_as_holding():
    """The case the report once got wrong: a "≤" target met beyond any non-response
    (its flipping answer is "yes") was printed as "stays unmet"."""
    r = scored("<=", 30, 10, "met")
    with translation.override("en"):
        assert tipping(r) == "holds even if all 10 non-respondents had answered yes"


def test_the_words_read_only_fields_every_result_carries():
    """The formatter's figures come from the one list of result fields (kpi.models), which
    the snapshot freezes and the API returns: a field added to one is in all."""
    from dataclasses import fields

    from kpi.evaluations.snapshot import _result
    from kpi.models import RESULT_FIELDS, KPIResult

    assert {f.name for f in fields(Result)} <= set(RESULT_FIELDS)
    assert set(RESULT_FIELDS) <= {f.name for f in KPIResult._meta.get_fields()}
    row = KPIResult(
        kpi_code="k",
        kind="share",
        name_ja="k",
        rule="point",
        confidence=Decimal("0.95"),
        min_n=0,
        numerator=1,
        denominator=2,
        respondents=2,
        invited=3,
    )
    assert set(RESULT_FIELDS) <= set(_result(row))


# --- issue 17: honest statistical wording -------------------------------------------------


def share(successes: int, n: int, **fields: object) -> Result:
    low, high = st.wilson_interval(successes, n)
    return result(
        numerator=successes, denominator=n, value=successes / n, ci_low=low, ci_high=high, **fields
    )


def test_199_of_200_is_not_printed_as_100_percent(japanese):  # noqa: F811
    r = share(199, 200)
    with translation.override("en"):
        assert headline(r) == "99.5\u00a0%"  # one more decimal, since 99.5 rounds to 100
        assert precise(r) == "99.5\u00a0%"
        # The interval's upper end is 99.91 %: printed as it is, never as 100.0.
        assert interval(r) == "97.2–99.9\u00a0%"
        assert headline(share(1999, 2000)) == "more than 99.9\u00a0%"  # 99.95 % still rounds up
        assert headline(share(1, 200)) == "1\u00a0%"  # 0.5 % rounds half up, away from 0
        assert headline(share(1, 300)) == "0.3\u00a0%"  # 0.33 % would round to 0
        assert headline(share(1, 3000)) == "less than 0.1\u00a0%"
        assert headline(share(399, 400)) == "99.8\u00a0%"  # 99.75 half up
    with translation.override("ja"):
        assert headline(r) == "99.5\u00a0%"
        assert headline(share(1999, 2000)) == "99.9\u00a0%超"
        assert headline(share(1, 3000)) == "0.1\u00a0%未満"


def test_229_of_229_is_exactly_100_percent_and_0_of_229_exactly_0(japanese):  # noqa: F811
    for language in ("en", "ja"):
        with translation.override(language):
            everyone, nobody = share(229, 229), share(0, 229)
            assert headline(everyone) == "100\u00a0%" and precise(everyone) == "100.0\u00a0%"
            assert interval(everyone).endswith("–100.0\u00a0%")
            assert headline(nobody) == "0\u00a0%" and interval(nobody).startswith("0.0–")


@pytest.mark.parametrize("n", [7, 200, 229, 1999, 20000])
def test_no_share_short_of_all_or_none_is_printed_as_all_or_none(n):
    """Every count of a base: only 0 and n print 0 % and 100 %, and the printed figure is
    the exact share rounded (or the bound it is beyond)."""
    for successes in range(n + 1) if n < 2000 else [*range(0, 30), *range(n - 30, n + 1)]:
        r = share(successes, n)
        with translation.override("en"):
            printed = headline(r).replace("\u00a0", " ")
            ends = interval(r).removesuffix("\u00a0%").split("–")
        exact = Fraction(100 * successes, n)
        if 0 < successes < n:
            assert printed not in ("0 %", "100 %", "0.0 %", "100.0 %"), (successes, n)
            assert "100.0" not in ends[1:] and ends[0] != "0.0", (successes, n, ends)
        if printed.startswith("more than "):
            assert exact > Decimal(printed.split()[2])
        elif printed.startswith("less than "):
            assert exact < Decimal(printed.split()[2])
        else:
            number = Decimal(printed.split()[0])
            places = -number.as_tuple().exponent
            assert abs(exact - Fraction(number)) <= Fraction(1, 2 * 10**places)


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("confidence", ["0.95", "0.9", "0.99", "0.637", "0.8"])
def test_met_with_confidence_states_the_one_sided_level(confidence, language, japanese):  # noqa: F811
    from scipy.stats import norm

    # scipy: the level of a one-sided claim on the bound of a two-sided interval at c.
    z = norm.ppf(0.5 + float(confidence) / 2)
    stated = Decimal(str(round(float(norm.cdf(z)) * 100, 6))).normalize()
    printed = f"{stated:f}"
    with translation.override(language):
        words = verdict_text(result(confidence=confidence))
    if language == "en":
        assert words == f"met with {printed}\u00a0% confidence (one-sided)"
    else:
        assert words == f"片側{printed}%信頼度で達成"


def test_the_methods_say_how_many_judgements_and_what_they_risk(japanese):  # noqa: F811
    from kpi.scoring.wording import judgements

    judged = [result(verdict=v) for v in ["met", "not_met", "inconclusive"] * 4]
    untargeted = result(verdict="", comparator="", threshold=None)
    with translation.override("en"):
        text = judgements([*judged, untargeted])
        assert text.startswith("This report judges 12 targets")
        assert "at most 2.5\u00a0%" in text and "up to 30\u00a0%" in text
        assert judgements([result()]).startswith("This report judges one target.")
        assert judgements([untargeted]) == ""
    with translation.override("ja"):
        text = judgements(judged)
        assert "目標は12件" in text and "2.5\u00a0%以下" in text and "最大で30\u00a0%" in text


def test_every_new_sentence_is_in_japanese(japanese):  # noqa: F811
    """The Methods sentences and the tipping sentence come out of the catalogue (no English
    left): the pending entries' msgids are the ones the code asks for."""
    import re

    from kpi.scoring.wording import judgements, methods_confidence, methods_nonresponse

    flipping = scored(">=", 70, 66, "met")
    with translation.override("ja"):
        for text in (
            methods_confidence(),
            methods_nonresponse(),
            judgements([result()]),
            judgements([result(), result()]),
            tipping(flipping),
            verdict_text(result()),
        ):
            assert not re.search(r"[A-Za-z]{3,}", text.replace("KPI", "")), text


def rows_in(value: object) -> list[object]:
    """Every verdict row anywhere in the report's context."""
    from kpi.evaluations.report.context import Row

    if isinstance(value, Row):
        return [value]
    if isinstance(value, dict):
        return [row for item in value.values() for row in rows_in(item)]
    if isinstance(value, list | tuple):
        return [row for item in value for row in rows_in(item)]
    return []


@pytest.mark.django_db
def test_the_report_has_no_tipping_sentence_beside_inconclusive_and_counts_its_judgements(
    reference_study,
    japanese,  # noqa: F811
):
    """The reference study: Fuchu has no respondents, so its results are inconclusive;
    4 KPIs with a target over the whole study and 3 sites make 16 judgements."""
    from kpi.evaluations import services as evaluations
    from kpi.evaluations.report.context import build
    from kpi.models import EvaluationRun
    from kpi.scoring import execution

    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    evaluation = evaluations.evaluation_create(run=execution.run_execute(run_id=run.pk), user=None)
    for language in ("en", "ja"):
        with translation.override(language):
            context = build(evaluation, draft=True, language=language)
        rows = rows_in(context)
        assert any(r.verdict == "inconclusive" for r in rows)
        assert any(r.tipping for r in rows)  # the sentence exists elsewhere
        assert all(not r.tipping for r in rows if r.verdict == "inconclusive")
        judged = context["statistics_words"]["judgements"]
        assert ("16 targets" if language == "en" else "目標は16件") in judged
        assert ("up to 40" if language == "en" else "最大で40") in judged
