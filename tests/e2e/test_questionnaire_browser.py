"""The questionnaire in a real headless Chromium, at a phone's width, with JavaScript on
(the browser and the live server: tests/e2e/conftest.py)."""

from __future__ import annotations

import pytest

from surveys.models import Answer, Response
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, reference_instrument

pytestmark = [
    pytest.mark.e2e,
    # WhiteNoise warns at start-up when STATIC_ROOT has not been collected (as in tests).
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def test_a_participant_answers_on_a_phone_and_submits_once(browser, server, tmp_path):
    study = StudyFactory()
    reference_instrument(study)
    participant = ParticipantFactory(site=SiteFactory(study=study))
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)

    # An English browser still gets Japanese: that is the questionnaire's default.
    page.goto(f"{server.url}/r/{participant.token}/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert (
        page.get_by_role("heading", level=1).inner_text() == "産後サポート実証実験 事後アンケート"
    )

    channels = page.locator("#question-channels")
    understood = page.locator("#question-understood")
    # The understanding question waits for an online channel.
    assert understood.is_hidden()
    channels.get_by_label("区の電話相談窓口").check()
    assert understood.is_hidden()
    channels.get_by_label("産婦人科・小児科オンライン「夜間相談」").check()
    understood.wait_for(state="visible")

    # "None of these" unticks the others (and hides the question again); ticking another
    # channel unticks "none".
    channels.get_by_label("いずれも利用しなかった").check()
    understood.wait_for(state="hidden")
    assert not channels.get_by_label("区の電話相談窓口").is_checked()
    channels.get_by_label("産婦人科・小児科オンライン「いつでも相談」").check()
    assert not channels.get_by_label("いずれも利用しなかった").is_checked()
    understood.wait_for(state="visible")
    channels.get_by_label("区の電話相談窓口").check()

    page.locator("#question-reassured").get_by_label("そう思う", exact=True).check()
    page.locator("#question-continue").get_by_label("どちらかといえばそう思う").check()
    page.locator("#question-reuse").get_by_label("そう思う", exact=True).check()
    understood.get_by_label("十分理解できた").check()
    page.locator("#question-tool").get_by_label("LINE").check()

    # Autosave keeps a draft as the participant goes.
    page.get_by_role("status").filter(has_text="自動で保存しました").wait_for()
    draft = Response.objects.get(participant=participant)
    assert draft.status == Response.Status.DRAFT

    page.screenshot(path=str(tmp_path / "questionnaire-answered.png"), full_page=True)
    page.get_by_role("button", name="回答を送信する").click()
    page.get_by_role("heading", name="ご回答ありがとうございました").wait_for()
    page.screenshot(path=str(tmp_path / "questionnaire-thanks.png"), full_page=True)
    context.close()

    responses = Response.objects.filter(participant=participant)
    assert responses.count() == 1
    response = responses.get()
    assert response.status == Response.Status.SUBMITTED
    assert response.language == "ja"
    rows = set(
        Answer.objects.filter(response=response).values_list("question__code", "choice__code")
    )
    assert rows == {
        ("channels", "anytime"),
        ("channels", "ward_phone"),
        ("reassured", "agree"),
        ("continue", "somewhat_agree"),
        ("reuse", "agree"),
        ("understood", "fully"),
        ("tool", "line"),
    }
