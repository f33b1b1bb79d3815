"""The report's plain-language summary (kpi/evaluations/report/summary.py) over varied
results: met, not met, inconclusive, no target, no respondents, nothing at all. The
expected sentences are written out here; the non-response figures are recomputed here
from the counts (every non-respondent answers: the Methods' assumption)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from django.utils import translation

from kpi.evaluations.report import summary

NBSP = "\u00a0"
CONFIDENT = f"met with 97.5{NBSP}% confidence (one-sided)"
MEANS = (
    '"Met with confidence" means that even the unfavourable end of the confidence interval '
    "meets the target."
)


def result(
    code: str,
    numerator: int,
    denominator: int,
    *,
    respondents: int,
    invited: int,
    comparator: str = "",
    threshold: str | None = None,
    verdict: str = "",
    confident: bool | None = None,
    kind: str = "share",
    over_respondents: bool = True,
    group: str = "",
) -> dict[str, Any]:
    """A whole-study result as a snapshot holds it. The non-response range and the tipping
    point are recomputed here by brute force (only for a share over all respondents)."""
    low = high = None
    direction, count = "", None
    if kind == "share" and over_respondents and invited and respondents:
        missing = invited - respondents
        low = numerator / invited
        high = (numerator + missing) / invited
        if comparator:
            target = Fraction(threshold or "0") / 100

            def holds(share: Fraction) -> bool:
                return {
                    ">=": share >= target,
                    ">": share > target,
                    "<=": share <= target,
                    "<": share < target,
                }[comparator]

            met_now = holds(Fraction(numerator, respondents))
            goes_up = comparator in (">=", ">")
            direction = "no" if met_now == goes_up else "yes"
            for k in range(missing + 1):  # k give `direction`, the others the other answer
                yes = numerator + (missing - k if direction == "no" else k)
                if holds(Fraction(yes, invited)) != met_now:
                    count = k
                    break
    value = None if denominator == 0 else numerator / denominator
    return {
        "kpi_code": code,
        "site": None,
        "group": group,
        "kind": kind,
        "name_ja": f"{code}（日本語）",
        "name_en": code.capitalize(),
        "base_description_ja": "",
        "base_description_en": "",
        "comparator": comparator,
        "threshold": threshold,
        "rule": "bound",
        "confidence": "0.95",
        "min_n": 30,
        "numerator": numerator,
        "denominator": denominator,
        "overlap": None,
        "respondents": respondents,
        "invited": invited,
        "value": value,
        "ci_low": None,
        "ci_high": None,
        "verdict": verdict,
        "met_point": None,
        "met_with_confidence": confident,
        "nonresponse_low": low,
        "nonresponse_high": high,
        "tipping_direction": direction,
        "tipping_count": count,
    }


def build(results: list[dict[str, Any]]) -> summary.Summary:
    with translation.override("en"):
        return summary.build({"results": results, "definitions": []})


def test_the_reference_case_all_met_with_confidence():
    # 229 of 352, four targets of at least 70 % met with confidence: three over all
    # respondents, one over the 156 online users (no non-response range).
    r, n = 229, 352
    results = [
        result("response_rate", 229, 352, respondents=r, invited=n),
        result(
            "reassured",
            229,
            229,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="met",
            confident=True,
        ),
        result(
            "continue",
            227,
            229,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="met",
            confident=True,
        ),
        result(
            "reuse",
            229,
            229,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="met",
            confident=True,
        ),
        result(
            "understood",
            155,
            156,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="met",
            confident=True,
            over_respondents=False,
        ),
        result("line", 199, 229, respondents=r, invited=n),
        result("reach", 156, 50, respondents=r, invited=n, kind="ratio"),
        result("cell", 117, 229, respondents=r, invited=n, group="channel_table"),
    ]
    s = build(results)

    assert s.respondents == (
        f"229 of the 352 people invited answered the questionnaire: a response rate of 65{NBSP}%."
    )
    assert (
        s.targets == f"4 targets were set before the study. All 4 were met with confidence. {MEANS}"
    )
    assert [(i.name, i.value, i.counts, i.verdict_text) for i in s.items] == [
        ("Reassured", f"100{NBSP}%", "229 of 229", CONFIDENT),
        ("Continue", f"99{NBSP}%", "227 of 229", CONFIDENT),
        ("Reuse", f"100{NBSP}%", "229 of 229", CONFIDENT),
        ("Understood", f"99{NBSP}%", "155 of 156", CONFIDENT),
    ]
    assert all(i.target == f"at least 70{NBSP}%" for i in s.items)
    assert s.shortfalls == []
    # 229 / 352 = 65.1 % < 70 %: none of the three holds if all 123 had said no; the
    # fewest "no" answers that tip one: continue, 227 + 123 - k < 0.7 * 352 = 246.4,
    # k > 103.6, so 104.
    assert s.nonresponse == [
        "123 of the 352 invited did not answer.",
        "Had every one of them answered, and answered unfavourably, none of the 3 targets "
        "met that are measured over all respondents would still be met.",
        "But it would take at least 104 of the 123 answering unfavourably to change a verdict.",
        "1 target is measured over a group of respondents only (for example those who used "
        "the service): what non-respondents would have answered cannot be counted in it.",
    ]
    # The figures without a target, the response rate and the channel cells left out.
    assert [(f.name, f.value, f.counts) for f in s.figures] == [
        ("Line", f"87{NBSP}%", "199 of 229"),
        ("Reach", "3.1", "156 to 50"),
    ]


def test_met_not_met_and_inconclusive_are_named_and_non_response_read_both_ways():
    r, n = 90, 100
    results = [
        # 80 / 90 met on the point only; over all 100, at worst 80 / 100 = 80 % >= 70 %.
        result(
            "alpha",
            80,
            90,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="met",
            confident=False,
        ),
        # 50 / 90 not met; at best (50 + 10) / 100 = 60 % < 70 %.
        result(
            "beta",
            50,
            90,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="not_met",
            confident=False,
        ),
        result(
            "gamma",
            60,
            90,
            respondents=r,
            invited=n,
            comparator=">=",
            threshold="70",
            verdict="inconclusive",
        ),
    ]
    s = build(results)

    assert s.targets == "3 targets were set before the study. 1 of them was met, 0 with confidence."
    assert [i.verdict for i in s.items] == ["met", "not_met", "inconclusive"]
    assert [i.verdict_text for i in s.items] == ["met", "not met", "inconclusive"]
    assert s.shortfalls == [
        'Not met: "Beta".',
        'Inconclusive, because fewer people answered than the target needs to be judged: "Gamma".',
    ]
    assert s.nonresponse == [
        "10 of the 100 invited did not answer.",
        "Had every one of them answered, and answered unfavourably, the target met that is "
        "measured over all respondents would still be met.",
        "Had every one of them answered favourably, the target not met would still not be met.",
    ]


def test_a_target_not_met_that_the_non_respondents_could_have_met():
    # 60 / 90 < 70 %; with all 30 others answering yes, 90 / 120 = 75 % >= 70 %.
    s = build(
        [
            result(
                "delta",
                60,
                90,
                respondents=90,
                invited=120,
                comparator=">=",
                threshold="70",
                verdict="not_met",
                confident=False,
            ),
        ]
    )
    assert s.targets == "One target was set before the study. It was not met."
    assert s.nonresponse == [
        "30 of the 120 invited did not answer.",
        "Had every one of them answered favourably, the target not met would have been met.",
    ]


@pytest.mark.parametrize(
    ("numerator", "still"),
    [(10, True), (11, False)],  # at most 20 %: at worst (10 + 10) / 100 = 20 %; 21 % is over
)
def test_an_at_most_target_is_pushed_off_by_yes_answers(numerator, still):
    r = summary.Result.of(
        result(
            "epsilon",
            numerator,
            90,
            respondents=90,
            invited=100,
            comparator="<=",
            threshold="20",
            verdict="met",
            confident=False,
        )
    )
    assert summary.still_met_if_unfavourable(r) is still


def test_no_target_reads_as_description_only():
    s = build([result("line", 199, 229, respondents=229, invited=352)])
    assert s.targets == (
        "No target was set before the study: the figures below describe the answers and "
        "are not judged against a target."
    )
    assert s.items == [] and s.nonresponse == [] and s.shortfalls == []
    assert [(f.value, f.counts) for f in s.figures] == [(f"87{NBSP}%", "199 of 229")]


def test_no_respondents():
    s = build(
        [
            result(
                "alpha",
                0,
                0,
                respondents=0,
                invited=50,
                comparator=">=",
                threshold="70",
                verdict="inconclusive",
            ),
        ]
    )
    assert s.respondents == (
        "None of the 50 people invited answered the questionnaire, so no figure could be computed."
    )
    assert s.targets == "One target was set before the study. It could not be judged."
    assert [(i.value, i.counts) for i in s.items] == [("", "no respondents")]
    assert s.shortfalls == [
        'Inconclusive, because fewer people answered than the target needs to be judged: "Alpha".'
    ]
    assert s.nonresponse == [] and s.figures == []


def test_nothing_counted():
    s = build([])
    assert s.respondents == "No results were counted for this study."
    assert s.targets == "" and s.items == [] and s.figures == [] and s.nonresponse == []


def test_one_respondent_of_one_invited_is_singular():
    s = build([result("alpha", 1, 1, respondents=1, invited=1)])
    assert s.respondents == (
        f"1 of the 1 person invited answered the questionnaire: a response rate of 100{NBSP}%."
    )
