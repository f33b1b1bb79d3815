"""The dashboard in a real browser, in Japanese, at 1280 px: a manager logs in and lands
on it; it fits the width, its chart has a name, and axe-core finds no violation (with the
chart's table opened too)."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import Permission, User

from kpi.models import EvaluationRun
from kpi.scoring import execution
from surveys.models import Membership
from tests.factories import build_reference_study

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PASSWORD = "pw-dashboard-browser-1"
PERMS = (
    ("surveys", "view_study"),
    ("kpi", "view_evaluationrun"),
    ("kpi", "view_evaluation"),
    ("kpi", "score_study"),
    ("fieldwork", "view_studyfieldwork"),
)


def assert_no_axe_violations(page, where: str) -> None:  # type: ignore[no-untyped-def]
    results = Axe().run(page)
    assert results.violations_count == 0, f"{where}:\n{results.generate_report()}"


def test_a_manager_lands_on_the_dashboard_in_japanese_with_no_axe_violation(server, browser):  # type: ignore[no-untyped-def]
    study = build_reference_study()
    run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    execution.run_execute(run_id=run.pk)
    manager = User.objects.create_user("manager", password=PASSWORD, is_staff=True)
    for app, codename in PERMS:
        manager.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    for site in study.sites.all():
        Membership.objects.create(user=manager, site=site, role=Membership.Role.MANAGER)

    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="ja-JP",
        extra_http_headers={"Accept-Language": "ja"},
    )
    page = context.new_page()
    page.goto(f"{server.url}/admin/")
    page.locator("#id_username").fill("manager")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{server.url}/admin/")

    assert page.locator("html").get_attribute("lang") == "ja"
    section = page.locator(f"#study-{study.pk}")
    assert section.locator("h2").inner_text().startswith(study.name_ja)
    # The first thing under the title is the study, not the list of models.
    first = page.locator("#content-main > section").first
    assert first.get_attribute("id") == f"study-{study.pk}"
    assert section.get_by_role("button", name="今すぐ集計").is_visible()
    # The chart is an image named by its title, and its figures are a table.
    chart = section.get_by_role("img", name="「" + study.name_ja + "」の累積回収率")
    assert chart.is_visible()
    assert section.locator(".hyoka-card").count() > 0
    # Nothing wider than the window.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert_no_axe_violations(page, "dashboard (ja)")

    section.locator(".hyoka-dash-chart-table summary").click()
    assert section.locator(".hyoka-dash-chart-table table").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert_no_axe_violations(page, "dashboard with the chart's table open (ja)")
    context.close()
