"""Small-cell protection on the pages that publish aggregates (issue 17, item 3): the
cross-tab page, its CSV and the API's cross-tab; the run page and the runs API. A two-site
study with small cells: every count from 1 to 4 of a site (and every small complement) is
marked, never shown; each withheld count keeps more than one possible value given
everything shown (found here by brute force over the small table, not by the code under
test); the whole study's figures are exact."""

from __future__ import annotations

import csv
import io
import itertools
import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from kpi.models import EvaluationRun
from kpi.scoring import execution
from surveys import services as survey_services
from surveys.models import Study
from tests.factories import SiteFactory, StudyFactory, complete_answers, reference_instrument

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

#: Site aaa: tool line ×3, email ×3; site bbb: phone ×3, line ×3 (every site count is 3
#: or 0, the study's line 6, phone 3, email 3).
PICKS = {"aaa": ["line"] * 3 + ["email"] * 3, "bbb": ["phone"] * 3 + ["line"] * 3}
TRUTH = {
    "aaa": {"line": 3, "email": 3, "phone": 0},
    "bbb": {"line": 3, "email": 0, "phone": 3},
}


@pytest.fixture
def small_study(db) -> Study:
    study = StudyFactory()
    reference_instrument(study)
    for code, tools in PICKS.items():
        site = SiteFactory(study=study, code=code)
        for i, tool in enumerate(tools):
            p = survey_services.participant_create(site=site, reference=f"{code}{i}").participant
            survey_services.response_submit(
                participant=p, answers=complete_answers(tool=tool), language="ja"
            )
    return study


def admin_client() -> Client:
    admin = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def page_url(study: Study, **params) -> str:
    from urllib.parse import urlencode

    return reverse("admin:kpi_studyresults_crosstab", args=[study.pk]) + "?" + urlencode(params)


def two_site_ranges(
    shown: dict[str, dict[str, int | None]], totals: dict[str, int], bases: dict[str, int]
) -> dict[tuple[str, str], set[int]]:
    """Brute force: every table of non-negative counts (two sites × the choices) with
    the shown cells as shown, each row adding up to the study's count and each site's
    column to its base; the values each withheld cell takes over them."""
    sites = sorted(shown)
    choices = sorted(totals)
    hidden = [(s, c) for s in sites for c in choices if shown[s][c] is None]
    seen: dict[tuple[str, str], set[int]] = {cell: set() for cell in hidden}
    ranges = [range(totals[c] + 1) for _, c in hidden]
    for values in itertools.product(*ranges):
        table = {s: dict(shown[s]) for s in sites}
        for (s, c), v in zip(hidden, values, strict=True):
            table[s][c] = v
        if all(sum(table[s][c] for s in sites) == totals[c] for c in choices) and all(
            sum(table[s][c] for c in choices) == bases[s] for s in sites
        ):
            for (s, c), v in zip(hidden, values, strict=True):
                seen[(s, c)].add(v)
    return seen


def check_marks(shown: dict[str, dict[str, object]]) -> dict[str, dict[str, int | None]]:
    """Every small count marked "<5", every other withheld count "x", the rest exact;
    the numbers back (None: withheld)."""
    out: dict[str, dict[str, int | None]] = {}
    for site, cells in shown.items():
        out[site] = {}
        for choice, value in cells.items():
            truth = TRUTH[site][choice]
            if 1 <= truth <= 4:
                assert value == "<5", (site, choice, value)
            if value in ("<5", "x"):
                out[site][choice] = None
            else:
                assert int(value) == truth  # type: ignore[call-overload]
                out[site][choice] = truth
    return out


def assert_not_recoverable(numbers: dict[str, dict[str, int | None]]) -> None:
    totals = {c: TRUTH["aaa"][c] + TRUTH["bbb"][c] for c in TRUTH["aaa"]}
    bases = {"aaa": 6, "bbb": 6}
    for cell, values in two_site_ranges(numbers, totals, bases).items():
        assert len(values) >= 2, f"{cell} recovered from the page: {values}"


def test_the_cross_tab_page_marks_small_cells_and_keeps_the_study_column(small_study):
    client = admin_client()
    got = client.get(page_url(small_study, question="tool", by="site"))
    table = got.context["table"]
    keys = [c.key for c in table.columns]
    assert keys == ["aaa", "bbb", "_total"]
    shown: dict[str, dict[str, object]] = {"aaa": {}, "bbb": {}}
    for item, cells in got.context["cells"]:
        if item.code not in TRUTH["aaa"]:
            continue
        for key, cell in zip(keys, cells, strict=True):
            if key == "_total":
                assert cell["n"] == str(TRUTH["aaa"][item.code] + TRUTH["bbb"][item.code])
                assert cell["share"]
            else:
                shown[key][item.code] = cell["n"]
                if cell["withheld"]:
                    assert cell["share"] == "" and cell["interval"] == ""
    assert_not_recoverable(check_marks(shown))
    html = got.content.decode()
    assert 'data-legend="small-cells"' in html and "“&lt;5”" in html
    # The bases are shown (6 each), the study's 12.
    base = dict(got.context["footers"])[next(iter(dict(got.context["footers"])))]
    assert base == ["6", "6", "12"]


def test_the_cross_tab_csv_and_api_carry_the_same_marks(small_study):
    client = admin_client()
    got = client.get(page_url(small_study, question="tool", by="site", download="csv"))
    lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    by_code = {line[0]: line for line in lines[1:]}
    shown = {
        site: {c: by_code[c][2 + 4 * i] for c in TRUTH["aaa"]}
        for i, site in enumerate(["aaa", "bbb"])
    }
    assert_not_recoverable(check_marks(shown))
    for c in TRUTH["aaa"]:
        assert int(by_code[c][2 + 4 * 2]) == TRUTH["aaa"][c] + TRUTH["bbb"][c]
    assert "_note" in by_code

    data = client.get(
        reverse("api:crosstab"), {"study": small_study.pk, "question": "tool", "by": "site"}
    ).json()
    assert data["small_cell_threshold"] == 5
    api_shown: dict[str, dict[str, object]] = {"aaa": {}, "bbb": {}}
    for row in data["rows"]:
        if row["code"] not in TRUTH["aaa"]:
            continue
        for column, cell in zip(data["columns"], row["cells"], strict=True):
            if column["key"] == "_total":
                assert cell["n"] == TRUTH["aaa"][row["code"]] + TRUTH["bbb"][row["code"]]
                assert cell["withheld"] is None
                continue
            if cell["n"] is None:
                assert cell["withheld"] in ("<5", "x") and cell["share"] is None
                api_shown[column["key"]][row["code"]] = cell["withheld"]
            else:
                api_shown[column["key"]][row["code"]] = cell["n"]
    assert_not_recoverable(check_marks(api_shown))
    assert {c["key"]: c["answered"] for c in data["columns"]} == {"aaa": 6, "bbb": 6, "_total": 12}


def test_a_threshold_of_1_turns_the_protection_off(small_study):
    Study.objects.filter(pk=small_study.pk).update(small_cell_threshold=1)
    got = admin_client().get(page_url(small_study, question="tool", by="site"))
    assert all(not cell["withheld"] for _, cells in got.context["cells"] for cell in cells)
    assert "small-cells" not in got.content.decode()


# --- The run page and the runs API: per-site KPI results ----------------------------------


def score(study: Study) -> EvaluationRun:
    run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    return execution.run_execute(run_id=run.pk)


def test_the_run_page_and_api_withhold_small_site_results_and_keep_the_study_row(
    reference_study,
):
    # A threshold that makes small cells of the reference study's two sites.
    Study.objects.filter(pk=reference_study.pk).update(small_cell_threshold=10)
    run = score(reference_study)
    results = list(run.results.select_related("site"))
    client = admin_client()
    html = client.get(reverse("admin:kpi_evaluationrun_change", args=[run.pk])).content.decode()
    api = client.get(reverse("api:run-detail", args=[run.pk])).json()["results"]
    by_api = {(r["kpi_code"], r["site_code"]): r for r in api}
    sections = {
        m.group(1): m.group(2)
        for m in re.finditer(r'data-scope="([^"]+)">(.*?)</table>', html, re.S)
    }
    withheld = 0
    for code in sorted({r.kpi_code for r in results if r.kind == "share"}):
        mine = {r.site.code if r.site else None: r for r in results if r.kpi_code == code}
        study = mine.pop(None)
        row = re.search(rf'data-kpi="{code}".*?data-cell="n">([^<]*)<', sections["all"], re.S)
        assert row and row.group(1) == f"{study.numerator} / {study.denominator}"
        assert by_api[(code, None)]["withheld"] is None
        assert by_api[(code, None)]["numerator"] == study.numerator
        numerators: dict[str, int | None] = {}
        for site, r in mine.items():
            cell = re.search(rf'data-kpi="{code}".*?data-cell="n">([^<]*)<', sections[site], re.S)
            assert cell is not None
            counts = unescape(cell.group(1))
            small = [1 <= x < 10 for x in (r.numerator, r.denominator - r.numerator)]
            if any(small):
                withheld += 1
                assert not counts.startswith(f"{r.numerator} /"), (code, site, counts)
                assert by_api[(code, site)]["numerator"] is None
                assert by_api[(code, site)]["value"] is None
                reason = by_api[(code, site)]["verdict_reason"]
                assert reason in ("small_count", "too_few_to_publish")
            shown = counts.split(" / ")[0]
            numerators[site] = None if shown in ("<10", "x") else int(shown)
            assert (numerators[site] is None) == (by_api[(code, site)]["numerator"] is None)
        # Two sites: a shown numerator and the study's give the other one back.
        if len(numerators) == 2 and None in numerators.values():
            assert all(v is None for v in numerators.values()), (code, numerators)
    assert withheld, "the threshold makes some small cells"
    assert 'data-legend="small-cells"' in html


def response_rate_rows(html: str) -> dict[str, list[str]]:
    """The report's response-rate table: each site's cells (invited, respondents, rate,
    interval), by the site's name."""
    start = html.index('id="response-rate"')
    table = html[start : html.index("</table>", start)]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = {}
    for match in re.finditer(r"<tr>\s*<th scope=\"row\">(.*?)</th>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(2), re.S)
        rows[unescape(match.group(1))] = [
            unescape(re.sub(r"<[^>]+>", "", c)).replace("\xa0", " ").strip() for c in cells
        ]
    return rows


@pytest.mark.parametrize(("k", "silent"), [(10, 6), (1, 6), (10, 0)])
def test_the_report_withholds_small_respondent_counts_in_the_response_rate_table(
    small_study, k, silent
):
    from kpi.definitions.loading import kpis_path, load_kpis
    from kpi.evaluations import services as evaluations
    from kpi.evaluations.report import render

    load_kpis(study=small_study, path=kpis_path())
    # ``silent`` more invited at each site who do not answer: 12 invited, 6 respondents.
    for site in small_study.sites.all():
        for i in range(silent):
            survey_services.participant_create(site=site, reference=f"{site.code}-silent{i}")
    Study.objects.filter(pk=small_study.pk).update(small_cell_threshold=k)
    evaluation = evaluations.evaluation_create(run=score(small_study), user=None)
    html = render.render_html(evaluation, draft=True, language="en")
    rows = response_rate_rows(html)
    assert set(rows) == {s.name_en for s in small_study.sites.all()}
    section = html[html.index('id="response-rate"') :].split("</section>", 1)[0]
    for invited, respondents, rate, interval in rows.values():
        if silent == 0:  # 6 invited, 6 respondents: both under 10, and no rate
            assert (invited, respondents) == ("<10", "<10"), rows
            assert rate == "inconclusive (too few to publish)", rows
            continue
        assert invited == "12"  # 10 or more: shown
        if k == 10:
            # 6 respondents at each site, under 10: withheld, and the rate with them
            # (of the 12 invited, which are shown, it would give them back).
            assert respondents == "<10", rows
            assert rate == "not published (small count)", rows
            assert interval == "–", rows
        else:
            assert respondents == "6" and rate.startswith("50 %"), rows
    assert ("withheld to protect respondents" in section) is (k == 10)


def test_the_runs_api_withholds_a_small_number_invited_and_what_it_gives_back(small_study):
    from kpi.definitions.loading import kpis_path, load_kpis
    from kpi.scoring.models import INVITED_FIGURES

    load_kpis(study=small_study, path=kpis_path())
    Study.objects.filter(pk=small_study.pk).update(small_cell_threshold=10)
    run = score(small_study)
    api = admin_client().get(reverse("api:run-detail", args=[run.pk])).json()["results"]
    for result in api:
        if result["site_code"] is None:  # 12 invited in the study: exact
            assert result["invited"] == 12 and result["withheld"] is None
            continue
        # 6 invited at each site, under 10.
        assert result["invited"] is None and result["withheld"]["invited"] == "<10", result
        assert all(result[name] is None for name in INVITED_FIGURES), result


def test_the_run_page_prints_no_non_response_figures_beside_a_withheld_number_invited(
    reference_study,
):
    from dataclasses import replace

    from kpi.scoring import disclosure
    from kpi.scoring.admin import ResultRow

    run = score(reference_study)
    result = run.results.filter(site__code="setagaya", comparator__gt="").first()
    shown = disclosure.ResultCells(numerator=True, denominator=True, respondents=True, overlap=True)
    row = ResultRow.of(result, shown)
    assert row.nonresponse  # 139 of 212 invited answered: a range to print
    hidden = ResultRow.of(result, replace(shown, invited=False, invited_mark="x"))
    # The range would give the number invited back; the value and verdict do not.
    assert (hidden.nonresponse, hidden.tipping) == ("", "")
    assert (hidden.value, hidden.verdict) == (row.value, row.verdict)
