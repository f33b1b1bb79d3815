"""The standalone verifier's formulas (an independent reimplementation, so that an auditor
need not trust Hyoka's code) agree with the project's statistics and formatter on random
counts; on the reference study they agree with the scored snapshot (test_evidence.py: "44
intervals and verdicts recomputed from the counts agree")."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from kpi.scoring import statistics as st
from kpi.scoring import wording
from scripts import verify_evaluation as verifier

SEEDS = range(400)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_wilson_agrees_with_the_projects_interval(seed):
    rng = random.Random(seed)
    for _ in range(500):
        n = rng.choice([1, 2, 5, 30, 229, 10_000, rng.randint(1, 100_000)])
        x = rng.choice([0, n, rng.randint(0, n)])
        confidence = rng.choice([0.8, 0.9, 0.95, 0.975, 0.99])
        mine = verifier.wilson(x, n, confidence)
        theirs = st.wilson_interval(x, n, confidence)
        assert close(mine[0], theirs[0]) and close(mine[1], theirs[1]), (x, n, confidence)


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_the_ratio_interval_agrees_with_the_projects(seed):
    rng = random.Random(seed)
    for _ in range(500):
        n = rng.randint(1, 5000)
        a, b = rng.randint(0, n), rng.randint(1, n)
        both = rng.randint(max(0, a + b - n), min(a, b))
        mine = verifier.log_ratio(a, b, both, 0.95)
        theirs = st.ratio_interval(a, b, both, n, 0.95)
        if mine is None:
            assert a == 0 and all(math.isnan(t) for t in theirs)
        else:
            assert close(mine[0], theirs[0]) and close(mine[1], theirs[1])


def project_result(counts: dict) -> dict:
    """A result as kpi.scoring.score computes it, from the same counts."""
    x, n, kind = counts["numerator"], counts["denominator"], counts["kind"]
    confidence = float(Decimal(counts["confidence"]))
    value = Fraction(x, n) if n else None
    low = high = None
    if n and kind == "share":
        low, high = st.wilson_interval(x, n, confidence)
    elif n and kind == "ratio":
        low, high = st.ratio_interval(x, n, counts["overlap"], counts["respondents"], confidence)
        low, high = (None, None) if math.isnan(low) else (low, high)
    result = {
        **counts,
        "value": float(value) if value is not None else None,
        "ci_low": low,
        "ci_high": high,
        "verdict": "",
        "met_point": None,
        "met_with_confidence": None,
        "nonresponse_low": None,
        "nonresponse_high": None,
        "tipping_direction": "",
        "tipping_count": None,
    }
    if counts["comparator"]:
        target = Fraction(Decimal(counts["threshold"])) / (100 if kind == "share" else 1)
        judgement = st.judge(
            value,
            low,
            high,
            comparator=st.Comparator(counts["comparator"]),
            threshold=target,
            rule=st.Rule(counts["rule"]),
            n=n,
            min_n=counts["min_n"],
        )
        result["verdict"] = judgement.verdict.value
        result["met_point"] = judgement.met_point
        result["met_with_confidence"] = judgement.met_with_confidence
    return result


def random_counts(rng: random.Random) -> dict:
    kind = rng.choice(["share", "share", "ratio"])
    respondents = rng.randint(0, 3000)
    if kind == "share":
        n = rng.randint(0, respondents)
        x = rng.choice([0, n, rng.randint(0, n)])
        overlap = None
        threshold = str(rng.choice([50, 70, Decimal("66.5"), 80, 95, 99]))
    else:
        x, n = rng.randint(0, respondents), rng.randint(0, respondents)
        overlap = rng.randint(max(0, x + n - respondents), min(x, n))
        threshold = rng.choice(["1", "1.5", "3", "0.8"])
    has_target = rng.random() < 0.8
    return {
        "kind": kind,
        "numerator": x,
        "denominator": n,
        "overlap": overlap,
        "respondents": respondents,
        "invited": respondents + rng.randint(0, 500),
        "confidence": rng.choice(["0.9", "0.95", "0.99"]),
        "comparator": rng.choice([">=", ">", "<=", "<"]) if has_target else "",
        "threshold": threshold if has_target else None,
        "rule": rng.choice(["point", "bound"]),
        "min_n": rng.choice([0, 1, 30, 100]),
        "sum_squares": None,
    }


@pytest.mark.parametrize("seed", SEEDS[:8])
def test_recomputed_verdicts_and_printed_figures_agree_with_the_project(seed):
    rng = random.Random(seed)
    for _ in range(300):
        counts = random_counts(rng)
        theirs = project_result(counts)
        mine = verifier.recompute(counts)
        assert mine.verdict == theirs["verdict"], counts
        assert (mine.met_point, mine.met_with_confidence) == (
            theirs["met_point"],
            theirs["met_with_confidence"],
        ), counts
        r = wording.Result.of(theirs)
        if theirs["value"] is not None:
            assert mine.printed_value == wording.headline(r), counts
            assert mine.printed_interval == wording.interval(r), counts
        assert mine.printed_verdict == wording.verdict_key(r), counts


def test_half_up_rounds_ties_away_from_zero_like_the_project():
    for value, places in [
        (Fraction(1, 2), 0),
        (Fraction(5, 2), 0),
        (Fraction(125, 1000), 2),
        (Fraction(-15, 10), 0),
        (Fraction(9995, 100), 1),
    ]:
        assert verifier.half_up(value, places) == f"{st.round_half_up(value, places):f}"
