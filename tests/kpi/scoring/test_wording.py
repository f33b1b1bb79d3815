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
        "tipping_count": 96,
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


def test_targets_and_verdicts_are_words_at_the_kpis_own_level():
    with translation.override("en"):
        assert target(result()) == "at least 70\u00a0%"
        assert target(result(comparator="<", threshold="2.5", kind="ratio")) == "less than 2.5"
        assert verdict_text(result()) == "met with 95\u00a0% confidence"
        assert verdict_text(result(confidence="0.9")) == "met with 90\u00a0% confidence"
        assert verdict_text(result(met_with_confidence=False)) == "met"
        assert verdict_text(result(verdict="not_met")) == "not met"
        assert verdict_text(result(verdict="inconclusive")) == "inconclusive"
        assert verdict_text(result(verdict="", comparator="", threshold=None)) == "no target"
        assert tipping(result()) == "flips if 96 of the 123 non-respondents had answered no"
        empty = result(numerator=0, denominator=0, respondents=0, invited=0, value=None)
        assert empty_value(empty) == "no respondents"
        assert empty_value(empty, over_invited=True) == "no participants"
    with translation.override("ja"):
        assert target(result()) == "70\u00a0%以上"
        assert verdict_text(result()) == "95%信頼度で達成"


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
    would have to give it: by trying every count, with no algebra."""
    target_share = Fraction(threshold, 100)
    holds = OPS[comparator]
    now = holds(Fraction(successes, RESPONDENTS), target_share)
    for answer in ("no", "yes"):
        for k in range(1, INVITED - RESPONDENTS + 1):
            s = successes + (k if answer == "yes" else 0)
            if holds(Fraction(s, RESPONDENTS + k), target_share) != now:
                return now, answer, k
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
        "flips if {k} of the 10 non-respondents had answered no",
        "無回答者10人のうち{k}人が「いいえ」と答えていれば判定が変わる",
    ),
    (True, False, "yes"): (
        "flips if {k} of the 10 non-respondents had answered yes",
        "無回答者10人のうち{k}人が「はい」と答えていれば判定が変わる",
    ),
    (False, False, "no"): (
        "flips if {k} of the 10 non-respondents had answered no",
        "無回答者10人のうち{k}人が「いいえ」と答えていれば判定が変わる",
    ),
    (False, False, "yes"): (
        "flips if {k} of the 10 non-respondents had answered yes",
        "無回答者10人のうち{k}人が「はい」と答えていれば判定が変わる",
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
    comparator, threshold, successes, on_target, robust, language
):
    now, answer, k = brute_force(comparator, threshold, successes)
    assert (now, k is None) == (on_target, robust)  # the case is what it says it is
    r = scored(comparator, threshold, successes, "met" if on_target else "not_met")
    assert (r.tipping_direction, r.tipping_count) == (answer, k)
    english, japanese = EXPECTED[(on_target, robust, answer)]
    with translation.override(language):
        words = tipping(r)
        assert words == (english if language == "en" else japanese).format(k=k)
        assert verdict_key(r) == ("met" if on_target else "not_met")


@pytest.mark.parametrize(("comparator", "threshold", "successes", "on_target", "robust"), CASES)
def test_no_tipping_sentence_stands_beside_inconclusive(
    comparator, threshold, successes, on_target, robust
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
