"""Small cells as readers meet them: the cross-tab page, its CSV and the API, a run's
results in the admin and the API, and the sign-off page show "<5" (or "x") for a withheld
count, never the count; the figures are the reference study's (229 responses, 3 sites).

The truth is counted with protection off (threshold 1), the same engine the rest of
test_crosstab.py checks against an independent count."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from kpi.evaluations.services import evaluation_create
from kpi.models import EvaluationRun
from kpi.scoring import crosstab as xt
from kpi.scoring.counting import study_forms
from kpi.scoring.execution import run_execute
from kpi.scoring.services import run_request
from surveys.models import Site, Study

# One "somewhat disagree" at each of two sites (the third has no responses): 1, 1 and 2 in
# all, the two-site case.
QUESTION = "continue"


@pytest.fixture
def root(db) -> Client:
    user = User.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def truth(study: Study, question: str = QUESTION) -> xt.Table:
    sites = list(Site.objects.filter(study=study).order_by("code"))
    k = study.small_cell_threshold
    study.small_cell_threshold = 1
    try:
        return xt.crosstab(
            study=study,
            sites=sites,
            whole=True,
            forms=study_forms(study.pk),
            question=question,
            by=xt.By.SITE,
        )
    finally:
        study.small_cell_threshold = k


def small_cells(table: xt.Table) -> list[tuple[str, int, int]]:
    """(choice, column index, count) of every count from 1 to 4."""
    found = [
        (row.item.code, i, cell.n)
        for row in table.rows
        for i, cell in enumerate(row.cells)
        if cell.n is not None and 1 <= cell.n < 5
    ]
    assert found, "the reference study has small cells to protect"
    return found


def page_cells(html: str, choice: str) -> list[str]:
    row = re.search(rf'<tr data-choice="{choice}">(.*?)</tr>', html, re.S)
    assert row is not None
    return [unescape(c).strip() for c in re.findall(r'data-cell="n">(.*?)</td>', row.group(1))]


def test_the_cross_tab_page_its_csv_and_the_api_show_the_mark_and_never_the_count(
    reference_study, root
):
    exact = truth(reference_study)
    small = small_cells(exact)
    url = reverse("admin:kpi_studyresults_crosstab", args=[reference_study.pk])
    html = root.get(url, {"question": QUESTION, "by": "site"}).content.decode()
    for choice, column, _n in small:
        assert page_cells(html, choice)[column] == "<5"
    assert "“&lt;5”: a count from 1 to 4" in html or "“<5”: a count from 1 to 4" in unescape(html)

    body = root.get(url, {"question": QUESTION, "by": "site", "download": "csv"})
    lines = list(csv.reader(io.StringIO(body.content.decode("utf-8-sig"))))
    by_code = {line[0]: line for line in lines}
    for choice, column, _n in small:
        assert by_code[choice][2 + 4 * column] == "<5"
        assert by_code[choice][3 + 4 * column] == ""  # no share beside it

    api = root.get(
        reverse("api:crosstab"), {"study": reference_study.pk, "question": QUESTION, "by": "site"}
    ).json()
    assert api["threshold"] == 5
    rows = {r["code"]: r["cells"] for r in api["rows"]}
    for choice, column, _n in small:
        cell = rows[choice][column]
        assert cell["n"] is None and cell["share"] is None and cell["low"] is None
        assert cell["suppressed"] is True and cell["mark"] == "<5"
    # Every withheld cell is withheld everywhere, and every shown cell is exact.
    for row in exact.rows:
        for i, cell in enumerate(row.cells):
            published = rows[row.item.code][i]
            assert published["n"] in (None, cell.n)
            if cell.n is not None and 1 <= cell.n < 5:
                assert published["n"] is None


def test_a_breakdown_by_segment_withholds_the_same_total_column(reference_study, root):
    from kpi.models import Segment

    segment = Segment.objects.get(study=reference_study, code="online")
    params = {"study": reference_study.pk, "question": QUESTION}
    by_site = root.get(reverse("api:crosstab"), {**params, "by": "site"}).json()
    by_segment = root.get(
        reverse("api:crosstab"), {**params, "by": "segment", "segment": segment.pk}
    ).json()
    for a, b in zip(by_site["rows"], by_segment["rows"], strict=True):
        assert a["cells"][-1]["n"] == b["cells"][-1]["n"]


def test_with_threshold_1_nothing_is_withheld(reference_study, root):
    Study.objects.filter(pk=reference_study.pk).update(small_cell_threshold=1)
    api = root.get(
        reverse("api:crosstab"),
        {"study": reference_study.pk, "question": QUESTION, "by": "site"},
    ).json()
    assert all(not c["suppressed"] for r in api["rows"] for c in r["cells"])


@pytest.fixture
def run(reference_study) -> EvaluationRun:
    run = run_execute(
        run_id=run_request(study=reference_study, trigger=EvaluationRun.Trigger.COMMAND).pk
    )
    assert run.status == EvaluationRun.Status.SUCCEEDED, run.error
    return run


def small_results(run: EvaluationRun):
    found = [
        r
        for r in run.results.select_related("site")
        if any(1 <= v < 5 for v in (r.denominator, r.denominator - r.numerator, r.numerator))
        and r.kind == "share"
    ]
    assert found, "the reference study has small KPI counts"
    return found


def test_run_results_in_the_api_are_null_and_named_where_withheld(run, root):
    body = root.get(reverse("api:run-detail", args=[run.pk])).json()
    published = {(r["kpi_code"], r["site_code"]): r for r in body["results"]}
    for result in small_results(run):
        r = published[(result.kpi_code, result.site.code if result.site else None)]
        assert r["numerator"] is None and r["value"] is None and r["ci_low"] is None
        assert "numerator" in r["withheld"]
        if 1 <= result.denominator < 5:
            assert r["denominator"] is None and r["too_few_to_publish"]
            assert r["verdict"] in ("inconclusive", "")
    for r in body["results"]:  # what is shown is the stored figure
        if r["numerator"] is not None:
            assert r["numerator"] == run.results.get(pk=r["id"]).numerator


def test_run_results_in_the_admin_and_the_sign_off_page_show_marks(run, root):
    html = root.get(reverse("admin:kpi_evaluationrun_change", args=[run.pk])).content.decode()
    evaluation = evaluation_create(run=run, user=None, language="en")
    signoff = root.get(
        reverse("admin:kpi_evaluation_sign_off", args=[evaluation.pk])
    ).content.decode()
    for page in (html, signoff):
        checked = 0
        for result in small_results(run):
            scope = result.site.code if result.site else "all"
            section = re.search(rf'data-scope="{scope}"(.*?)</table>', page, re.S) or re.search(
                rf'data-site="{scope}"(.*?)</table>', page, re.S
            )
            if section is None:
                continue
            row = re.search(rf'<tr data-kpi="{result.kpi_code}">(.*?)</tr>', section.group(1), re.S)
            assert row is not None
            n = re.search(r'data-cell="n">(.*?)</td>', row.group(1), re.S)
            assert n is not None
            shown = unescape(n.group(1)).strip()
            assert shown.startswith(("x /", "<5 /")) or "/ <5" in shown or "/ x" in shown, shown
            assert f"{result.numerator} /" not in shown
            checked += 1
        assert checked


def test_the_dashboard_cards_show_marks(run, root):
    html = root.get(reverse("admin:index")).content.decode()
    checked = 0
    for result in small_results(run):
        if result.site_id is not None:
            continue
        card = re.search(rf'data-kpi="{result.kpi_code}">(.*?)</li>', html, re.S)
        assert card is not None
        base = re.search(r'data-cell="base">(.*?)<', card.group(1), re.S)
        assert base is not None and base.group(1).strip().startswith(("x /", "<5 /"))
        checked += 1
    assert checked
