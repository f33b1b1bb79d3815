"""The admin in a real headless Chromium at 1280 × 800, in Japanese and in English, as a
programme manager (the signer role on every site): axe-core finds no violation on any
list, on a run's results, the sign-off page, the study's and an instrument's pages (with
Django's tabular inlines) or the export page, and no list or page scrolls sideways.
``HYOKA_SCREENSHOTS=folder`` keeps a screenshot of each page to look at."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from django.utils.translation import gettext

from fieldwork.models import Delivery
from kpi.evaluations import services as evaluations
from kpi.models import EvaluationRun
from kpi.scoring import execution
from surveys.exports.expiry import STUCK_ERROR, exports_sweep
from surveys.exports.records import export_begin, export_fail, export_finish
from surveys.models import Membership, Participant
from tests.factories import build_reference_study
from tests.surveys.test_admin_scoping import programme_managers

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PASSWORD = "a long enough password 2021"


def no_sideways_scroll(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Tables and their containers wider than the window or than their scroll box."""
    return page.evaluate(
        """() => {
          const bad = [];
          if (document.documentElement.scrollWidth > window.innerWidth) bad.push('page');
          const boxes = 'div.results, .hyoka-table-scroll, .inline-group';
          for (const d of document.querySelectorAll(boxes)) {
            if (d.scrollWidth > d.clientWidth + 1) {
              bad.push(`${d.className} ${d.scrollWidth} > ${d.clientWidth}`);
            }
          }
          return bad;
        }"""
    )


@pytest.mark.parametrize("lang", ["ja-JP", "en-US"])
def test_the_lists_results_and_sign_off_pass_axe_at_1280(
    browser, server, signing_settings, settings, lang
):
    for name, value in signing_settings.items():
        setattr(settings, name, value)
    study = build_reference_study()
    run = EvaluationRun.objects.create(study=study, trigger="command")
    run = execution.run_execute(run_id=run.pk)
    user = User.objects.create_user("hanako", password=PASSWORD, is_staff=True)
    user.groups.add(programme_managers())
    for site in study.sites.all():
        Membership.objects.create(user=user, site=site, role="signer")
    evaluation = evaluations.evaluation_create(run=run, user=user, language="ja")
    # An export whose file expired, and one that failed, on the study's export page.
    expired = export_begin(user=user, study=study, format="xlsx", language="ja")
    export_finish(export=expired, rows=229, file_name=f"exports/{expired.pk}-e2e.xlsx")
    exports_sweep(now=timezone.now() + dt.timedelta(days=30))
    export_fail(export=export_begin(user=user, study=study, format="sav", language="ja"),
                error=gettext(STUCK_ERROR))  # fmt: skip
    # The deliveries list, with the long mail-server answer a failure keeps.
    user.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    for n, participant in enumerate(Participant.objects.filter(site__study=study)[:4]):
        Delivery.objects.create(
            participant=participant,
            channel=["email", "line", "letter", "email"][n],
            kind="reminder" if n % 2 else "invitation",
            status=["sent", "failed", "queued", "failed"][n],
            attempts=n,
            due_at=timezone.now(),
            sent_at=timezone.now() if n == 0 else None,
            last_error="550 5.1.1 <mother@example.jp>: Recipient address rejected: "
            "User unknown in virtual mailbox table (in reply to RCPT TO command)"
            if n % 2
            else "",
        )

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=lang)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", "hanako")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}/admin/")

    lists = sorted(set(re.findall(r'href="(/admin/[a-z_]+/[a-z_]+/)"', page.content())))
    assert "/admin/kpi/kpi/" in lists and "/admin/surveys/participant/" in lists
    assert "/admin/fieldwork/delivery/" in lists
    pages = [
        *lists,
        f"/admin/kpi/evaluationrun/{run.pk}/change/",
        f"/admin/kpi/evaluation/{evaluation.pk}/sign-off/",
        f"/admin/surveys/study/{study.pk}/copy/",
        # With Django's tabular inline of the sites (templates/admin/edit_inline/).
        f"/admin/surveys/study/{study.pk}/change/",
        f"/admin/surveys/instrument/{study.instruments.get().pk}/change/",
        f"/admin/surveys/study/{study.pk}/export/",
    ]
    problems = {}
    for path in pages:
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.status == 200, path
        violations = Axe().run(page).response["violations"]
        found = [f"{v['id']}: {[n['target'] for n in v['nodes'][:3]]}" for v in violations]
        wide = no_sideways_scroll(page)
        if found or wide:
            problems[path] = found + [f"scrolls sideways: {w}" for w in wide]
        if os.environ.get("HYOKA_SCREENSHOTS"):  # to look at: HYOKA_SCREENSHOTS=folder
            name = path.strip("/").replace("/", "_") or "index"
            folder = os.environ["HYOKA_SCREENSHOTS"]
            page.screenshot(path=f"{folder}/{lang}-{name}.png", full_page=True)
    # The results and the figures being signed are on their pages.
    page.goto(f"{server.url}/admin/kpi/evaluation/{evaluation.pk}/sign-off/")
    assert (
        page.locator('[data-scope="all"] tr[data-kpi="continue"] [data-cell="n"]').inner_text()
        == "227 / 229"
    )
    context.close()
    assert problems == {}
