"""The sign-off page shows what is signed: per KPI its counts, value, interval, target and
verdict, for the whole study and per site, the run and its data cut-off, and a link to the
draft PDF. The figures are checked against the run's stored results, recomputed here
(statsmodels' Wilson interval), not against the page's own formatter."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation
from statsmodels.stats.proportion import proportion_confint

from kpi.evaluations import services as evaluations
from kpi.models import EvaluationRun, KPIResult
from tests.kpi.evaluations.test_evaluations import SIGNER, manager, signer_on_every_site


@pytest.fixture(autouse=True)
def _signing(signing_settings, settings):  # type: ignore[no-untyped-def]
    for name, value in signing_settings.items():
        setattr(settings, name, value)


@pytest.fixture
def page(reference_study, client):  # type: ignore[no-untyped-def]
    from kpi.scoring import execution

    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    run = execution.run_execute(run_id=run.pk)
    user = signer_on_every_site(manager(*[f"kpi.{p}" for p in SIGNER]), run)
    evaluation = evaluations.evaluation_create(run=run, user=user, language="en")
    client.force_login(user)
    with translation.override("en"):
        response = client.get(
            reverse("admin:kpi_evaluation_sign_off", args=[evaluation.pk]),
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 200
    return run, evaluation, response.content.decode()


def cells(html: str, scope: str, kpi: str) -> dict[str, str]:
    """The text of each cell of one KPI's row in one scope's table."""
    table = re.search(rf'data-scope="{scope}".*?</table>', html, re.S)
    assert table, scope
    row = re.search(rf'<tr data-kpi="{kpi}">(.*?)</tr>', table.group(0), re.S)
    assert row, (scope, kpi)
    found = dict(re.findall(r'data-cell="(\w+)"[^>]*>(.*?)</td>', row.group(1), re.S))
    return {
        k: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", v)).replace("\xa0", " ").strip()
        for k, v in found.items()
    }


def expected_verdict(result: KPIResult) -> str:
    if not result.verdict:
        return "no target"
    if result.verdict == "met":
        # The claim reads one bound of the two-sided interval: half its error, one-sided.
        level = f"{((1 + result.confidence) / 2 * 100).normalize():f}"
        return f"met with {level} % confidence (one-sided)" if result.met_with_confidence else "met"
    return result.verdict.replace("_", " ")


def test_every_result_of_the_run_is_on_the_page_with_its_figures(page):
    run, _evaluation, html = page
    results = list(run.results.select_related("site"))
    assert len(results) > 11  # the whole study and the sites
    for result in results:
        scope = result.site.code if result.site else "all"
        shown = cells(html, scope, result.kpi_code)
        if result.kind == "mean":
            assert shown["n"] == f"n = {result.denominator}"
        else:
            assert shown["n"].startswith(f"{result.numerator} / {result.denominator}")
        assert expected_verdict(result) in shown["verdict"], (scope, result.kpi_code)
        if result.kind == "share" and result.denominator:
            value = result.numerator / result.denominator
            assert shown["value"] == f"{round(100 * value)} %", (scope, result.kpi_code)
            low, high = proportion_confint(
                result.numerator,
                result.denominator,
                alpha=1 - float(result.confidence),
                method="wilson",
            )
            assert shown["interval"].startswith(f"{100 * low:.1f}–{100 * high:.1f} %")
        if result.comparator and result.kind == "share":
            assert f"{result.threshold.normalize():f} %" in shown["target"]  # stored in percent


def test_the_reference_verdicts_read_as_published(page):
    """The published figures (seed/README.md): 65 % response rate, 99 % continue."""
    _run, _evaluation, html = page
    assert cells(html, "all", "response_rate")["value"] == "65 %"
    assert cells(html, "all", "continue")["n"] == "227 / 229"
    assert cells(html, "all", "continue")["verdict"].endswith(
        "met with 97.5 % confidence (one-sided)"
    )


def test_the_page_names_the_run_its_cutoff_and_links_the_draft_pdf(page):
    run, evaluation, html = page
    assert reverse("admin:kpi_evaluationrun_change", args=[run.pk]) in html
    cutoff = re.search(r'data-field="cutoff">(.*?)</div>', html).group(1)
    tokyo = run.cutoff.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%H:%M:%S JST") in cutoff
    assert str(tokyo.year) in cutoff
    assert re.search(r'data-field="responses">\s*229\s*<', html)
    assert f'href="{reverse("admin:kpi_evaluation_download", args=[evaluation.pk])}"' in html
    assert evaluation.snapshot_sha256 in html
    assert "admin/css/forms.css" in html  # styled as the other admin forms


def test_the_page_shows_the_snapshot_not_later_results(page, reference_study, client):
    """What is signed is the evaluation's copy: a later change to a stored result (never
    done by the app; here by hand) does not change the page."""
    run, evaluation, _html = page
    KPIResult.objects.filter(run=run, kpi_code="continue", site=None).update(numerator=1)
    html = client.get(
        reverse("admin:kpi_evaluation_sign_off", args=[evaluation.pk])
    ).content.decode()
    assert cells(html, "all", "continue")["n"].startswith("227 / 229")
