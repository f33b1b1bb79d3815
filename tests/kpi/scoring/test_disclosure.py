"""Small-cell protection (kpi/scoring/disclosure.py): the primary rules, the two-site case,
and random studies attacked with linear programming: for each withheld cell, minimise and
maximise it subject to every published figure and sum (cells ≥ 0), as the public and as
each site's staff (who know their own site's counts); a cell pinned to one value fails."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.optimize import linprog

from kpi.scoring import disclosure as dc
from kpi.scoring.disclosure import CrossColumn, Publication, protect


def attack(
    pub: Publication, protection: dc.Protection, marks: bool = False
) -> list[tuple[object, float]]:
    """Every (cell, width of its feasible range) that the published figures leave to a
    reader of everything published (the whole-study figures are published exactly).
    ``marks``: the reader also reads "<k" as "from 1 to k−1" (not part of the guarantee).
    Cells of a breakdown withheld whole ("x" everywhere: a single site) are not targets."""
    hidden = [
        key
        for key in pub.values
        if key not in pub.fixed and (protection.hidden(key) or key in pub.unpublished)
    ]
    index = {key: i for i, key in enumerate(hidden)}
    a_eq, b_eq = [], []
    for total, parts in pub.sums:
        row = np.zeros(len(hidden))
        rhs = 0.0
        for key, sign in [(total, 1.0), *((p, -1.0) for p in parts)]:
            if key in index:
                row[index[key]] += sign
            else:
                rhs -= sign * pub.values[key]  # shown
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    bounds = [
        (1, protection.k - 1)
        if marks and u in protection.primary and u not in pub.unpublished
        else (0, None)
        for u in hidden
    ]
    found = []
    for key in hidden:
        if key in protection.blanked:
            continue
        if key in pub.unpublished and not protection.hidden(key):
            continue  # a count not printed and not small: nothing to protect
        c = np.zeros(len(hidden))
        c[index[key]] = 1
        low = linprog(c, A_eq=a_eq or None, b_eq=b_eq or None, bounds=bounds)
        high = linprog(-c, A_eq=a_eq or None, b_eq=b_eq or None, bounds=bounds)
        assert low.status == 0, (key, low.message)
        width = np.inf if high.status == 3 else -high.fun - low.fun
        assert low.fun - 1e-6 <= pub.values[key], "the truth is feasible"
        found.append((key, width))
    return found


def assert_safe(pub: Publication, protection: dc.Protection) -> None:
    assert not protection.exposed
    for key in pub.fixed:
        assert not protection.hidden(key), f"a whole-study figure withheld: {key}"
    for key, width in attack(pub, protection):
        assert width >= 1 - 1e-6, f"{key} recovered by a reader: {width}"


def result(code, site, n, d, kind="share", respondents=None, invited=None):
    respondents = d if respondents is None else respondents
    return {
        "kpi_code": code,
        "site_code": site,
        "kind": kind,
        "numerator": n,
        "denominator": d,
        "overlap": None,
        "respondents": respondents,
        "invited": respondents if invited is None else invited,
    }


# --- Primary rules ---------------------------------------------------------------------


def test_every_count_from_1_to_k_minus_1_is_withheld_and_zero_and_k_are_shown():
    pub = Publication()
    for value in range(0, 8):
        pub.cell(("c", value), value)
    p = protect(pub, 5)
    assert {key[1] for key in p.primary} == {1, 2, 3, 4}
    assert not p.secondary
    assert p.mark(("c", 3)) == "<5"
    assert not p.hidden(("c", 0)) and not p.hidden(("c", 5))


def test_k_of_1_turns_protection_off():
    pub = Publication()
    pub.cell("a", 1)
    assert not protect(pub, 1).hidden("a")


def test_a_small_complement_withholds_the_numerator_of_a_share():
    # 48 of 50 agreed: the 2 who did not are a small cell.
    results = [result("k", "a", 48, 50), result("k", "b", 30, 60), result("k", None, 78, 110)]
    cells = dc.protect_results(results, 5)
    a = cells.cells(results[0])
    assert not a.numerator and a.denominator and not a.figures and not a.too_few


def test_a_kpi_whose_base_is_withheld_is_too_few_to_publish():
    results = [result("k", "a", 1, 3), result("k", "b", 30, 60), result("k", None, 31, 63)]
    cells = dc.protect_results(results, 5)
    assert cells.cells(results[0]).too_few
    assert cells.cells(results[0]).denominator_mark == "<5"
    assert_safe(cells.pub, cells.protection)


def test_a_mean_protects_only_its_base():
    results = [
        result("m", "a", 9, 3, kind="mean"),
        result("m", "b", 200, 60, kind="mean"),
        result("m", None, 209, 63, kind="mean"),
    ]
    cells = dc.protect_results(results, 5)
    assert cells.cells(results[0]).too_few
    assert ("numerator", "m") not in {key[0] for key in cells.pub.values}


# --- The two-site case -----------------------------------------------------------------


def test_with_two_sites_the_study_total_does_not_give_away_the_other_site():
    # Site a: 2 "no" answers (a small complement). The study's 88 of 110 is published
    # exactly, so b's 50 would give a's 38 back: b's numerator is withheld too.
    results = [result("k", "a", 38, 40), result("k", "b", 50, 70), result("k", None, 88, 110)]
    cells = dc.protect_results(results, 5)
    assert_safe(cells.pub, cells.protection)
    a, b, overall = (cells.cells(r) for r in results)
    assert overall.figures and overall.numerator, "the study's figures are published"
    assert not a.numerator and a.numerator_mark == "x"  # its complement is the small cell
    assert not b.numerator and b.numerator_mark == "x"
    assert a.denominator and b.denominator


def test_the_two_site_case_of_a_cross_tab():
    a = CrossColumn("a", "a", 40, 0, 0, {"yes": 38, "no": 2})
    b = CrossColumn("b", "b", 70, 3, 0, {"yes": 50, "no": 20})
    total = CrossColumn("_total", None, 110, 3, 0, {"yes": 88, "no": 22})
    p = dc.protect_crosstab([a, b], total, 5, conditional=False)
    assert p.mark(("chosen", "no", "a")) == "<5"
    assert not p.hidden(("chosen", "no", "_total")), "the study's column is published"
    assert p.mark(("chosen", "no", "b")) == "x"  # else 22 − 20 gives a's 2 back
    assert_safe(dc.crosstab_publication([a, b], total, partition=True, conditional=False), p)


def test_a_zero_of_the_other_site_protects_a_small_cell_as_a_last_resort():
    # b has no "yes" at all: only its zero can hide a's 2 from the study's 2.
    a = CrossColumn("a", "a", 40, 0, 0, {"yes": 2, "no": 38})
    b = CrossColumn("b", "b", 70, 0, 0, {"yes": 0, "no": 70})
    total = CrossColumn("_total", None, 110, 0, 0, {"yes": 2, "no": 108})
    p = dc.protect_crosstab([a, b], total, 5, conditional=False)
    assert p.mark(("chosen", "yes", "a")) == "<5"
    assert p.mark(("chosen", "yes", "b")) == "x"
    assert not p.blanked
    assert_safe(dc.crosstab_publication([a, b], total, partition=True, conditional=False), p)


def test_a_single_site_breakdown_is_not_published_but_the_study_is():
    a = CrossColumn("a", "a", 40, 0, 0, {"yes": 2, "no": 38})
    total = CrossColumn("_total", None, 40, 0, 0, {"yes": 2, "no": 38})
    p = dc.protect_crosstab([a], total, 5, conditional=False)
    for key in [("chosen", "yes", "a"), ("chosen", "no", "a"), ("answered", "a")]:
        assert p.hidden(key) and p.mark(key) == "x"
    assert not p.hidden(("chosen", "yes", "_total"))


# --- Random studies, attacked ----------------------------------------------------------


def _random_kpis(rng: random.Random, sites: list[str]) -> list[dict]:
    rows = []
    respondents = {s: rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 40, 120]) for s in sites}
    invited = {s: respondents[s] + rng.choice([0, 0, 1, 3, 10]) for s in sites}
    for code in ("k1", "k2", "k3"):
        kind = rng.choice(["share", "share", "mean", "ratio"])
        per_site = {}
        for s in sites:
            d = rng.randint(0, respondents[s]) if code != "k1" else respondents[s]
            n = rng.choice([0, 1, 2, d, max(d - 1, 0), max(d - 3, 0), rng.randint(0, d)])
            n = min(n, d) if kind != "mean" else n * 3
            per_site[s] = (n, d)
        for s, (n, d) in per_site.items():
            rows.append(result(code, s, n, d, kind, respondents[s], invited[s]))
        rows.append(
            result(
                code,
                None,
                sum(n for n, _ in per_site.values()),
                sum(d for _, d in per_site.values()),
                kind,
                sum(respondents.values()),
                sum(invited.values()),
            )
        )
    for row in rows:
        if row["kind"] == "ratio":
            row["overlap"] = min(row["numerator"], row["denominator"]) // 2
    return rows


@pytest.mark.parametrize("seed", range(40))
def test_random_kpi_tables_resist_the_attack(seed):
    rng = random.Random(seed)
    sites = [f"s{i:02d}" for i in range(rng.choice([1, 2, 2, 3, 5, 8]))]
    rows = _random_kpis(rng, sites)
    # Overlap of a ratio summed per site, as scoring would.
    for code in {r["kpi_code"] for r in rows if r["kind"] == "ratio"}:
        mine = [r for r in rows if r["kpi_code"] == code]
        mine[-1]["overlap"] = sum(r["overlap"] for r in mine[:-1])
    k = rng.choice([3, 5, 10])
    cells = dc.protect_results(rows, k)
    assert_safe(cells.pub, cells.protection)
    if len(sites) >= 2:
        assert not cells.protection.blanked
    for row in rows:  # every small figure of a site is withheld; the study's are exact
        c = cells.cells(row)
        if row["site_code"] is None:
            assert c.figures and not c.too_few
            continue
        if 1 <= row["denominator"] < k:
            assert c.too_few
        if 1 <= row["respondents"] < k:
            assert not c.respondents
        if 1 <= row["invited"] < k:
            assert not c.invited and c.invited_mark in (f"<{k}", dc.SECONDARY_MARK)
        if row["kind"] == "share" and (
            1 <= row["numerator"] < k or 1 <= row["denominator"] - row["numerator"] < k
        ):
            assert not c.figures


def _random_crosstab(rng: random.Random, n_sites: int, choices: list[str], single=True):
    columns = []
    for i in range(n_sites):
        size = rng.choice([0, 1, 3, 6, 10, 30, 80])
        split = [0] * len(choices)
        for _ in range(size):
            if single:
                split[rng.randrange(len(choices))] += 1
            else:  # several answers each: any subset
                for j in range(len(choices)):
                    split[j] += rng.random() < 0.3
        columns.append(
            CrossColumn(
                f"s{i}",
                f"s{i}",
                size,
                rng.choice([0, 1, 7]),
                0,
                dict(zip(choices, split, strict=True)),
            )
        )
    total = CrossColumn(
        "_total",
        None,
        sum(c.answered for c in columns),
        sum(c.unanswered for c in columns),
        0,
        {code: sum(c.chosen[code] for c in columns) for code in choices},
    )
    return columns, total


@pytest.mark.parametrize("single", [True, False], ids=["single", "multiple"])
@pytest.mark.parametrize("seed", range(20))
def test_random_cross_tabs_by_site_resist_the_attack(seed, single):
    rng = random.Random(1000 + seed)
    choices = ["a", "b", "c", "d"][: rng.choice([2, 3, 4])]
    columns, total = _random_crosstab(rng, rng.choice([1, 2, 2, 3, 6, 8]), choices, single)
    k = rng.choice([3, 5])
    p = dc.protect_crosstab(columns, total, k, conditional=False, single=single)
    pub = dc.crosstab_publication(columns, total, partition=True, conditional=False, single=single)
    assert_safe(pub, p)
    if len(columns) >= 2:  # withheld whole only where the site's row is the study's
        assert not p.blanked
    for key, value in pub.values.items():
        if 1 <= value < k and key not in pub.fixed and key not in p.blanked:
            assert p.mark(key) == f"<{k}"


@pytest.mark.parametrize("seed", range(15))
def test_kpi_tables_and_the_cross_tab_published_together_resist_the_attack(seed):
    """The same counts in three tables: a cross-tab of a question by site, a KPI "share who
    chose a or b" over those who answered it (per site and overall), all protected as one
    publication; the attack sees all three."""
    rng = random.Random(5000 + seed)
    columns, total = _random_crosstab(rng, rng.choice([2, 3, 8]), ["a", "b", "c"])
    k = 5
    pub = dc.crosstab_publication(columns, total, partition=True, conditional=False)
    for col in [*columns, total]:
        n = col.chosen["a"] + col.chosen["b"]
        pub.cell(("kpi_n", col.key), n, col.owner)
        pub.cell(("kpi_not", col.key), col.answered - n, col.owner)
        pub.sum(("kpi_n", col.key), [("chosen", "a", col.key), ("chosen", "b", col.key)])
        pub.sum(("answered", col.key), [("kpi_n", col.key), ("kpi_not", col.key)])
    p = protect(pub, k)
    assert_safe(pub, p)


@pytest.mark.xfail(
    strict=True,
    reason="known limitation, documented in kpi/scoring/disclosure.py: the guarantee is "
    "against recovery by the published sums with counts ≥ 0; a reader who also takes "
    "“<k” as 1 to k−1 can pin some cells (a site with one respondent: every count 1)",
)
def test_an_attacker_reading_the_marks_as_bounds_pins_some_cells():
    rng = random.Random(1039)
    choices = ["a", "b", "c", "d"][: rng.choice([2, 3, 4])]
    columns, total = _random_crosstab(rng, rng.choice([2, 3, 6, 15]), choices)
    k = rng.choice([3, 5])
    p = dc.protect_crosstab(columns, total, k, conditional=False)
    pub = dc.crosstab_publication(columns, total, partition=True, conditional=False)
    assert all(width >= 1 - 1e-6 for _, width in attack(pub, p, marks=True))


def test_a_breakdown_keeps_the_total_column_of_the_by_site_table():
    rng = random.Random(7)
    columns, total = _random_crosstab(rng, 4, ["a", "b"])
    by_site = dc.protect_crosstab(columns, total, 5, conditional=False)
    inside = CrossColumn("in", None, 3, 0, 0, {"a": 1, "b": 2})
    outside = CrossColumn(
        "out",
        None,
        total.answered - 3,
        total.unanswered,
        0,
        {"a": total.chosen["a"] - 1, "b": total.chosen["b"] - 2},
    )
    both = dc.protect_crosstab(
        columns, total, 5, conditional=False, breakdown=[inside, outside], partition=True
    )
    for key in dc.crosstab_publication([], total, partition=False, conditional=False).values:
        assert both.hidden(key) == by_site.hidden(key)
    pub = dc.crosstab_publication([inside, outside], total, partition=True, conditional=False)
    assert_safe(pub, both)


def test_methods_text_states_the_rule_in_both_languages():
    assert "<5" in dc.methods_text(5, "ja") and "二次秘匿" in dc.methods_text(5, "ja")
    assert "from 1 to 4" in dc.methods_text(5, "en")
    assert "not suppressed" in dc.methods_text(1, "en")


def test_snapshot_dicts_and_rows_give_the_same_site():
    row = SimpleNamespace(site_id=3, site=SimpleNamespace(code="x"))
    assert dc.site_of(row) == "x"
    assert dc.site_of({"site_code": None}) is None


# --- The report's per-site charts: a snapshot's distributions -----------------------------


def _snapshot(by_site: dict[str, dict[str, int]], k: int | None, kind: str = "single") -> dict:
    overall = {c: sum(site[c] for site in by_site.values()) for c in next(iter(by_site.values()))}
    study = {"code": "s"} if k is None else {"code": "s", "small_cell_threshold": k}
    return {
        "study": study,
        "instrument": {"questions": [{"code": "q", "type": kind}]},
        "distributions": {
            "overall": {"q": overall},
            "by_site": {s: {"q": counts} for s, counts in by_site.items()},
        },
    }


TOOL = {  # the demo's "tool" question: the study's 199, 14, 9, 3, 3, 1 of 229
    "itabashi": {"line": 77, "phone": 7, "f2f": 5, "email": 1, "sns": 0, "other": 0},
    "setagaya": {"line": 122, "phone": 7, "f2f": 4, "email": 2, "sns": 3, "other": 1},
}


def test_a_snapshot_from_before_the_threshold_is_not_protected():
    sites = {s: {**c, "_answered": sum(c.values())} for s, c in TOOL.items()}
    got = dc.protect_distributions(_snapshot(sites, None))["q"]
    assert got["itabashi"].counts["email"] == 1 and not got["itabashi"].marks


def test_the_per_site_distributions_are_protected_against_the_whole_studys():
    sites = {s: {**c, "_answered": sum(c.values())} for s, c in TOOL.items()}
    got = dc.protect_distributions(_snapshot(sites, 5))["q"]
    ita, seta = got["itabashi"], got["setagaya"]
    assert (ita.base, seta.base) == (90, 139)
    # Every count from 1 to 4 withheld ("<5"); the zeros and counts beside them withheld
    # so that the study's 3 "sns" and 1 "other" do not give Setagaya's back.
    assert ita.marks["email"] == "<5" and seta.marks["f2f"] == "<5"
    assert {c for c, n in seta.counts.items() if n is None} == {"f2f", "email", "sns", "other"}
    assert ita.counts["sns"] is None and ita.counts["other"] is None  # zeros, as "x"
    assert ita.marks["sns"] == "x"
    assert ita.counts["line"] == 77 and seta.counts["line"] == 122
    # Attacked like any cross-tab: what the charts show, and the study's distribution.
    columns = [
        CrossColumn(s, s, sites[s]["_answered"], 0, 0, {c: TOOL[s][c] for c in TOOL[s]})
        for s in sites
    ]
    total = CrossColumn(
        "_total", None, 229, 0, 0, {c: sum(TOOL[s][c] for s in TOOL) for c in TOOL["itabashi"]}
    )
    pub = dc.crosstab_publication(columns, total, partition=True, conditional=False)
    shown = Publication(values=pub.values, owners=pub.owners, sums=pub.sums)
    shown.unpublished, shown.fixed = pub.unpublished, pub.fixed
    hidden = {("chosen", c, s) for s, d in got.items() for c, n in d.counts.items() if n is None}
    protection = dc.Protection(k=5, primary=frozenset(hidden))
    for key, width in attack(shown, protection):
        assert width >= 1 - 1e-6, key


def test_a_single_sites_distribution_is_not_published_per_site():
    sites = {"only": {"yes": 2, "no": 38, "_answered": 40}}
    got = dc.protect_distributions(_snapshot(sites, 5))["q"]["only"]
    assert got.base is None and got.counts == {"yes": None, "no": None}
    assert set(got.marks.values()) == {"x"}
