"""The cross-tab page as a manager sees it at 1280 px: the table, its caption with the
base, no horizontal overflow of the page, and no axe-core violation, in both languages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User

from surveys import services as survey_services
from tests.factories import SiteFactory, StudyFactory, complete_answers, reference_instrument

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PASSWORD = "pw-crosstab-1234"
# Screenshots for a look by eye (not compared): set HYOKA_SCREENSHOTS to a directory.
SHOTS = os.environ.get("HYOKA_SCREENSHOTS", "")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_cross_tab_page_reads_well_and_passes_axe(server, browser, lang):
    study = StudyFactory()
    reference_instrument(study)
    sites = [SiteFactory(study=study, code=c) for c in ("setagaya", "itabashi", "fuchu")]
    picks = [["anytime", "ward_phone"], ["night"], ["live"], ["none"], ["midwife_chat", "articles"]]
    for i in range(15):
        p = survey_services.participant_create(site=sites[i % 3], reference=f"P{i}").participant
        survey_services.response_submit(
            participant=p, answers=complete_answers(channels=picks[i % 5]), language="ja"
        )
    User.objects.create_superuser("boss", password=PASSWORD)

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
    page = context.new_page()
    page.goto(f"{server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.locator("#login-form [type=submit]").click()
    page.wait_for_url(f"{server.url}/admin/")

    page.goto(f"{server.url}/admin/kpi/studyresults/{study.pk}/crosstab/")
    page.select_option("#id_question", "channels")
    page.select_option("#id_by", "site")
    page.locator(".submit-row [type=submit]").click()
    page.locator("#crosstab table").wait_for()
    caption = page.locator("#crosstab caption").inner_text()
    assert "15" in caption
    assert page.locator("#crosstab thead th[scope=colgroup]").count() == 4
    assert page.locator("#crosstab tbody th[scope=row]").count() == 10
    anytime = page.locator('tr[data-choice="anytime"] td[data-cell="n"]').all_inner_texts()
    # fuchu, itabashi, setagaya, total: one each, under the default k = 5, so each site's
    # count reads "<5" (small-cell protection); the whole study's total is exact.
    assert anytime == ["<5", "<5", "<5", "3"]
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/crosstab-{lang}.png", full_page=True)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()

    # A bad confidence level: the form says so, no table, still accessible.
    page.fill("#id_confidence", "0.95")  # a fraction where percent is asked: below 50
    page.locator(".submit-row [type=submit]").click()
    page.locator(".errorlist").first.wait_for()
    assert page.locator("#crosstab").count() == 0
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/crosstab-error-{lang}.png", full_page=True)
    context.close()
