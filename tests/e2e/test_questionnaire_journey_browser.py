"""From message to thank-you (issue 14 item 7): the questionnaire as a participant reaches
it from a LINE message or an e-mail, on a 360 px phone, in a real headless Chromium with
the live server (tests/e2e/conftest.py).

Nothing here measures time. Where a test must tell a save made when the page was hidden
from the autosave that follows a pause, the page's clock is frozen (Playwright's clock), so
the pause never ends and only the hide (or the language switch) can have saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.db import OperationalError

from surveys.models import Answer, Participant, Response
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, reference_instrument

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PHONE = {"width": 360, "height": 740}


@pytest.fixture
def participant(server) -> Participant:  # type: ignore[no-untyped-def]
    study = StudyFactory()
    reference_instrument(study)
    return ParticipantFactory(site=SiteFactory(study=study))


@pytest.fixture
def phone(browser) -> Iterator[Callable]:  # type: ignore[no-untyped-def]
    """New pages at a phone's width; every context is closed after the test."""
    contexts = []

    def open_page(*, javascript: bool = True):  # type: ignore[no-untyped-def]
        context = browser.new_context(
            viewport=PHONE, locale="ja-JP", java_script_enabled=javascript
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def link(server, participant: Participant, lang: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"{server.url}/r/{participant.token}/" + (f"?lang={lang}" if lang else "")


def eventually(check: Callable[[], object], what: str) -> object:
    """Polls the database for something a request still on its way will write (a keepalive
    save is sent as the page goes: nothing on the page waits for its answer)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            result = check()
        except OperationalError:  # SQLite's shared in-memory database: the save is writing
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def draft_rows(participant: Participant) -> set[tuple[str, str]]:
    return set(
        Answer.objects.filter(
            response__participant=participant, response__status=Response.Status.DRAFT
        ).values_list("question__code", "choice__code")
    )


def answer_everything(page, but: str = "") -> None:  # type: ignore[no-untyped-def]
    for code, label in [
        ("channels", "区の電話相談窓口"),
        ("reassured", "そう思う"),
        ("continue", "どちらかといえばそう思う"),
        ("reuse", "そう思う"),
        ("tool", "LINE"),
    ]:
        if code != but:
            page.locator(f"#question-{code}").get_by_label(label, exact=True).check()


def visible_numbers(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.inner_text() for n in page.locator(".question__number").all() if n.is_visible()]


def assert_no_axe_violations(page, where: str) -> None:  # type: ignore[no-untyped-def]
    results = Axe().run(page)
    assert results.violations_count == 0, f"{where}:\n{results.generate_report()}"


# --- Answers are kept when the page goes ---------------------------------------------


def test_an_answer_given_just_before_the_page_is_hidden_is_saved(phone, server, participant):
    page = phone()
    page.clock.install()  # the autosave's pause never ends: only the hide can save
    page.goto(link(server, participant))

    page.locator("#question-tool").get_by_label("LINE").check()
    # The participant switches to LINE (the in-app browser goes to the background).
    page.evaluate(
        """() => {
          Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )

    eventually(lambda: draft_rows(participant) == {("tool", "line")}, "the draft was stored")


def test_an_answer_given_just_before_the_page_is_closed_is_saved(phone, server, participant):
    page = phone()
    page.clock.install()
    page.goto(link(server, participant))

    page.locator("#question-reassured").get_by_label("そう思う", exact=True).check()
    page.close(run_before_unload=True)  # the in-app browser is closed: pagehide

    eventually(lambda: draft_rows(participant) == {("reassured", "agree")}, "the draft was stored")


def test_switching_language_keeps_an_answer_given_just_before(phone, server, participant):
    page = phone()
    page.clock.install()
    page.goto(link(server, participant))

    page.locator("#question-tool").get_by_label("LINE").check()
    page.get_by_role("link", name="English").click()

    page.wait_for_url("**?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#question-tool").get_by_label("LINE").is_checked()
    assert (
        page.locator("#restored-notice")
        .inner_text()
        .startswith("Your earlier answers have been restored.")
    )
    assert draft_rows(participant) == {("tool", "line")}


def test_a_language_switch_that_cannot_save_first_stays_and_says_why(phone, server, participant):
    page = phone()
    page.clock.install()
    page.goto(link(server, participant))
    page.route(
        "**/r/**",
        lambda route: route.abort() if route.request.method == "POST" else route.continue_(),
    )

    page.locator("#question-tool").get_by_label("LINE").check()
    page.get_by_role("link", name="English").click()

    # No network for the save: the answer is still on the page, and the page says so.
    page.get_by_role("status").filter(has_text="保存できませんでした").wait_for()
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("#question-tool").get_by_label("LINE").is_checked()
    # Pressed again, the switch goes all the same.
    page.get_by_role("link", name="English").click()
    page.wait_for_url("**?lang=en")


def test_the_saved_status_is_in_view_and_the_draft_is_restored_on_return(
    phone, server, participant
):
    page = phone()
    page.goto(link(server, participant))
    # The first question, at the top of the screen: the status line must still be seen.
    page.locator("#question-channels").get_by_label("区の電話相談窓口").check()

    status = page.get_by_role("status").filter(has_text="自動で保存しました")
    status.wait_for()
    box = status.bounding_box()
    assert box is not None
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= PHONE["height"]
    assert status.get_attribute("aria-live") == "polite"

    page.reload()
    notice = page.locator("#restored-notice")
    assert notice.inner_text().startswith("前回までに入力した回答を復元しました。")
    assert page.locator("#question-channels").get_by_label("区の電話相談窓口").is_checked()


# --- Sending ---------------------------------------------------------------------------


# Runs in the page after the questionnaire's own submit handler, while the post is on its
# way: notes what the participant sees, presses again twice, and keeps the notes where the
# next page (same tab, same origin) can read them.
WATCH_SENDING = """() => {
  const form = document.querySelector("form[data-questionnaire]");
  let watched = false;
  form.addEventListener("submit", () => {
    if (watched) return;
    watched = true;
    setTimeout(() => {
      const submit = form.querySelector("button[value=submit]");
      const seen = {
        submitDisabled: submit.disabled,
        submitText: submit.textContent,
        saveDisabled: form.querySelector("button[value=save]").disabled,
        status: form.querySelector("[data-autosave-status]").textContent,
        busy: form.getAttribute("aria-busy"),
      };
      submit.click();
      form.requestSubmit();
      sessionStorage.setItem("seen", JSON.stringify(seen));
    }, 0);
  });
}"""


def test_while_the_answers_are_on_their_way_the_button_says_sending_and_sends_once(
    phone, server, participant
):
    page = phone()
    page.goto(link(server, participant))
    answer_everything(page)
    submissions = []

    def slow_submissions(route) -> None:  # type: ignore[no-untyped-def]
        request = route.request
        if request.method == "POST" and "action=submit" in (request.post_data or ""):
            submissions.append(request)
            time.sleep(1)  # a slow network (the page runs on meanwhile)
        route.continue_()

    page.route("**/r/**", slow_submissions)
    page.evaluate(WATCH_SENDING)
    page.get_by_role("button", name="回答を送信する").click()

    page.get_by_role("heading", name="ご回答ありがとうございました").wait_for()
    assert page.evaluate("JSON.parse(sessionStorage.getItem('seen'))") == {
        "submitDisabled": True,
        "submitText": "送信しています…",
        "saveDisabled": True,
        "status": "回答を送信しています。このページを閉じずに、そのままお待ちください。",
        "busy": "true",
    }
    assert len(submissions) == 1  # the second and third presses sent nothing
    assert Response.objects.get(participant=participant).status == Response.Status.SUBMITTED


def test_without_javascript_the_form_still_sends(phone, server, participant):
    page = phone(javascript=False)
    page.goto(link(server, participant))
    answer_everything(page)

    page.get_by_role("button", name="回答を送信する").click()

    page.get_by_role("heading", name="ご回答ありがとうございました").wait_for()
    assert Response.objects.get(participant=participant).status == Response.Status.SUBMITTED


# --- Numbers, required marks and errors ---------------------------------------------


def test_question_numbers_leave_no_gap_when_a_conditional_question_is_hidden(
    phone, server, participant
):
    page = phone()
    page.goto(link(server, participant))
    understood = page.locator("#question-understood")

    assert understood.is_hidden()
    assert visible_numbers(page) == ["問1", "問2", "問3", "問4", "問5"]
    assert page.locator("#number-tool").inner_text() == "問5"

    page.locator("#question-channels").get_by_label(
        "産婦人科・小児科オンライン「夜間相談」"
    ).check()
    understood.wait_for(state="visible")
    assert visible_numbers(page) == ["問1", "問2", "問3", "問4", "問5", "問6"]
    # Shown, it applies: a plain "Required" mark and no "required if" sentence.
    assert understood.locator(".tag--required").is_visible()
    assert understood.locator(".question__required-if").is_hidden()


def test_without_javascript_the_conditional_question_says_required_if(phone, server, participant):
    page = phone(javascript=False)
    page.goto(link(server, participant))
    understood = page.locator("#question-understood")

    assert visible_numbers(page) == ["問1", "問2", "問3", "問4", "問5", "問6"]
    assert understood.locator(".tag--required").is_hidden()
    required_if = understood.locator(".question__required-if")
    assert required_if.is_visible()
    assert required_if.inner_text().endswith("のいずれかを選んだ方は、必ずお答えください。")


def test_an_error_mark_clears_once_its_question_is_answered(phone, server, participant):
    page = phone()
    page.goto(link(server, participant))
    answer_everything(page, but="tool")
    page.get_by_role("button", name="回答を送信する").click()

    tool = page.locator("#question-tool")
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert "question--error" in (tool.get_attribute("class") or "")
    assert tool.locator(".question__error").is_visible()

    tool.get_by_label("電話").check()

    assert "question--error" not in (tool.get_attribute("class") or "")
    assert tool.locator(".question__error").count() == 0
    assert tool.locator("[aria-invalid]").count() == 0
    assert summary.count() == 0  # its only entry is gone, and the summary with it
    assert not page.title().startswith("エラー")


# --- axe-core ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_axe_finds_no_violation_from_start_to_thank_you(phone, server, participant, lang):
    page = phone()
    page.goto(link(server, participant, lang))
    assert_no_axe_violations(page, f"start ({lang})")

    page.locator("button[value=submit]").click()
    page.locator("#error-summary").wait_for()
    assert_no_axe_violations(page, f"errors shown ({lang})")

    answer_everything_in_any_language(page)
    page.locator("button[value=submit]").click()
    page.locator(".panel--done").wait_for()
    assert_no_axe_violations(page, f"thank-you ({lang})")


def answer_everything_in_any_language(page) -> None:  # type: ignore[no-untyped-def]
    """By choice code, so that the same steps answer the Japanese and the English page."""
    for code, value in [
        ("channels", "ward_phone"),
        ("reassured", "agree"),
        ("continue", "somewhat_agree"),
        ("reuse", "agree"),
        ("tool", "line"),
    ]:
        page.locator(f'input[name="{code}"][value="{value}"]').check()
