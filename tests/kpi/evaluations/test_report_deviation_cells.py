"""A deviation's effect on a site's verdict is printed only where the site's figures are:
a verdict gives the counts back that the per-site table withholds (small cells)."""

from __future__ import annotations

from typing import Any

from django.utils import translation

from kpi.evaluations.report import context


def _row(site: str | None, numerator: int, base: int) -> dict[str, Any]:
    return {
        "kpi_code": "continue",
        "site": site,
        "kind": "share",
        "numerator": numerator,
        "denominator": base,
        "overlap": None,
        "respondents": base,
        "invited": base,
    }


def _snapshot(threshold: int) -> dict[str, Any]:
    return {
        "study": {"code": "s", "small_cell_threshold": threshold},
        "sites": [
            {"code": "a", "name_ja": "A区", "name_en": "Ward A"},
            {"code": "b", "name_ja": "B区", "name_en": "Ward B"},
        ],
        # One "no" at each site: a complement of 1, under any k above 1.
        "results": [_row(None, 227, 229), _row("a", 120, 121), _row("b", 107, 108)],
    }


DEVIATION = {
    "what": "kpi continue: threshold",
    "old": {"threshold": "70.0000"},
    "new": {"threshold": "99.5000"},
    "reason": "r",
    "who": "signer",
    "when": "2026-12-01T00:00:00+00:00",
    "effects": [
        {"kpi": "continue", "site": None, "registered": "met", "deviated": "not_met"},
        {"kpi": "continue", "site": "a", "registered": "met", "deviated": "not_met"},
        {"kpi": "continue", "site": "b", "registered": "met", "deviated": "met"},
    ],
}


def _effects(threshold: int) -> dict[str, dict[str, Any]]:
    with translation.override("en"):
        [printed] = context._deviations([DEVIATION], context.Snapshot(_snapshot(threshold)))
    return {e["scope"]: e for e in printed["effects"]}


def test_a_withheld_sites_verdicts_are_not_printed_and_the_study_s_are():
    effects = _effects(5)
    assert (effects["All sites"]["registered"], effects["All sites"]["deviated"]) == (
        "met",
        "not met",
    )
    assert effects["All sites"]["changes"]
    for site in ("Ward A", "Ward B"):
        assert (effects[site]["registered"], effects[site]["deviated"]) == (
            "withheld",
            "withheld",
        )
        assert not effects[site]["changes"]  # "(unchanged)" would say something too


def test_with_protection_off_every_sites_verdicts_are_printed():
    effects = _effects(1)
    assert effects["Ward A"]["deviated"] == "not met" and effects["Ward A"]["changes"]
    assert effects["Ward B"]["deviated"] == "met" and not effects["Ward B"]["changes"]
