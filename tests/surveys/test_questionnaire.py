"""The participant questionnaire through HTTP, as docs/questionnaire-contract.md describes it.

Expected texts are written out here (Japanese and English), not computed by the code under
test; question and choice codes and labels come from the reference instrument file.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import path
from django.utils import timezone

from surveys import services
from surveys.errors import AnswersInvalid
from surveys.models import Answer, Choice, Instrument, Participant, Question, Response
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, complete_answers

# WhiteNoise warns at start-up when STATIC_ROOT has not been collected (as in tests), and
# the suite turns warnings into errors. TODO: remove once settings or pyproject handle it.
pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")


# --- Helpers ---------------------------------------------------------------------------


class Page(HTMLParser):
    """Just enough of an HTML page to check its structure: every start tag with its
    attributes, the text inside chosen elements, and the text of the whole page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}  # element id -> its text
        self.legends: list[str] = []
        self.labels: dict[str, str] = {}  # for -> text
        self.textareas: dict[str, str] = {}  # name -> content
        self._open: list[tuple[str, str, str]] = []  # (tag, key, kind)
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "legend":
            self._open.append((tag, str(len(self.legends)), "legend"))
            self.legends.append("")
        elif tag == "label" and "for" in a:
            self._open.append((tag, a["for"], "label"))
            self.labels[a["for"]] = ""
        elif tag == "textarea":
            self._open.append((tag, a.get("name", ""), "textarea"))
            self.textareas[a.get("name", "")] = ""
        elif "id" in a and tag not in {"input", "br", "meta", "link"}:
            self._open.append((tag, a["id"], "id"))
            self.texts[a["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i]
                break

    def handle_data(self, data: str) -> None:
        self.text += data
        for _tag, key, kind in self._open:
            if kind == "legend":
                self.legends[int(key)] += data
            elif kind == "label":
                self.labels[key] += data
            elif kind == "textarea":
                self.textareas[key] += data
            else:
                self.texts[key] += data

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]

    def one(self, tag: str, **attrs: str) -> dict[str, str]:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def text_of(self, element_id: str) -> str:
        return " ".join(self.texts[element_id].split())

    def checked(self) -> set[tuple[str, str]]:
        return {(a["name"], a["value"]) for a in self.all("input") if "checked" in a}

    def value_of(self, name: str) -> str:
        return self.one("input", name=name).get("value", "")


def url(participant: Participant) -> str:
    return f"/r/{participant.token}/"


def page(response) -> Page:  # type: ignore[no-untyped-def]
    return Page(response.content.decode())


def post(client: Client, participant: Participant, action: str | None, answers: dict, **extra):  # type: ignore[no-untyped-def]
    data = dict(answers)
    if action is not None:
        data["action"] = action
    return client.post(url(participant), data, **extra)


def english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def stored(participant: Participant) -> set[tuple[str, str]]:
    """The participant's answer rows as (question code, choice code or value)."""
    rows = Answer.objects.filter(response__participant=participant).values_list(
        "question__code", "choice__code", "text_value", "number_value"
    )
    return {(q, c if c is not None else t if t is not None else str(n)) for q, c, t, n in rows}


def database_state() -> tuple:
    """Everything a request could change, to compare before and after."""
    return (
        sorted(Response.objects.values_list("pk", "status", "language", "submitted_at")),
        sorted(Answer.objects.values_list("pk", "question_id", "choice_id", "text_value")),
    )


# The reference instrument's question texts, as its file writes them.
QUESTION_TEXTS_JA = [
    "実証期間の6か月間に利用した相談窓口・サービスをすべて選んでください。",
    "産後の安心を感じることができましたか。",
    "今後もオンライン産後サポートを続けるべきと感じますか。",
    "今後も産婦人科・小児科オンラインを利用したいですか。",
    "産婦人科・小児科オンラインの担当医師、助産師の説明は理解できましたか。",
    "普段、友人や同居していない家族・親族に、産後の生活、子どもの健康、子育ての悩みについて"
    "相談するとき、最も多く使う手段は何ですか。",
]
QUESTION_CODES = ["channels", "reassured", "continue", "reuse", "understood", "tool"]
EXPECTED_ROWS = {
    ("channels", "anytime"),
    ("channels", "ward_phone"),
    ("reassured", "agree"),
    ("continue", "somewhat_agree"),
    ("reuse", "agree"),
    ("understood", "fully"),
    ("tool", "line"),
}


# --- The page --------------------------------------------------------------------------


def test_the_page_shows_title_intro_site_and_one_fieldset_with_a_legend_per_question(
    client, participant
):
    response = client.get(url(participant))

    assert response.status_code == 200
    html = page(response)
    assert html.one("html")["lang"] == "ja"
    assert "産後サポート実証実験 事後アンケート" in html.text
    assert "所要時間は3分ほどです。" in html.text
    assert participant.site.name_ja in html.text
    assert [a["id"] for a in html.all("fieldset")] == [f"question-{c}" for c in QUESTION_CODES]
    for legend, text in zip(html.legends, QUESTION_TEXTS_JA, strict=True):
        assert text in legend
        assert "必須" in legend  # every reference question is required


def test_every_input_has_a_label_and_help_text_is_linked_by_aria_describedby(client, participant):
    html = page(client.get(url(participant)))

    inputs = [a for a in html.all("input") if a.get("type") in {"radio", "checkbox"}]
    assert len(inputs) == 10 + 4 + 4 + 4 + 4 + 6
    for a in inputs:
        assert html.labels[a["id"]].strip(), f"input {a['id']} has no label"
    assert " ".join(html.labels["q-channels-9"].split()) == "いずれも利用しなかった"
    channels = html.one("fieldset", id="question-channels")
    assert channels["aria-describedby"] == "help-channels"
    assert html.text_of("help-channels") == "あてはまるものをすべて選んでください。"
    # The conditional question says, in its help, when to answer it (for pages without JS).
    understood = html.one("fieldset", id="question-understood")
    assert html.text_of(understood["aria-describedby"]) == (
        "産婦人科・小児科オンラインを利用した方のみお答えください。"
    )
    assert understood["data-condition-question"] == "channels"
    assert understood["data-condition-choices"].split() == ["anytime", "midwife_chat", "night"]


def test_the_form_posts_to_the_link_with_a_csrf_token_and_two_buttons(client, participant):
    html = page(client.get(url(participant)))

    form = html.one("form")
    assert form["method"] == "post"
    assert form["action"] == url(participant)
    assert html.one("input", name="csrfmiddlewaretoken")["value"]
    buttons = {a["value"] for a in html.all("button", name="action")}
    assert buttons == {"save", "submit"}


def test_the_page_is_never_cached_and_loads_no_inline_script_or_style(client, participant):
    response = client.get(url(participant))

    assert "no-store" in response["Cache-Control"]
    html = page(response)
    assert all("src" in a for a in html.all("script"))
    assert not any("style" in a for _tag, a in html.tags)
    assert not html.all("style")


def test_the_referrer_stays_on_this_site_and_is_not_suppressed(client, participant):
    # A page-level "no-referrer" makes browsers post with "Origin: null", which Django's
    # CSRF check rejects; the header policy already keeps the link away from other sites.
    response = client.get(url(participant))

    assert response["Referrer-Policy"] == "same-origin"
    assert not page(response).all("meta", name="referrer")


def test_every_participant_sees_the_same_untouched_form_but_for_their_link_and_token(client, site):
    first, second = ParticipantFactory(site=site), ParticipantFactory(site=site)
    post(client, second, "save", {})  # an empty draft is still an untouched form

    def normalised(participant: Participant) -> str:
        html = client.get(url(participant)).content.decode()
        token = Page(html).one("input", name="csrfmiddlewaretoken")["value"]
        return html.replace(participant.token, "TOKEN").replace(token, "CSRF")

    assert normalised(first) == normalised(second)


def test_head_answers_like_get(client, participant):
    assert client.head(url(participant)).status_code == 200


# --- Language --------------------------------------------------------------------------


def test_lang_en_switches_the_page_to_english_and_remembers_it_in_a_cookie(client, participant):
    response = client.get(url(participant) + "?lang=en")

    assert response.status_code == 200
    html = page(response)
    assert html.one("html")["lang"] == "en"
    assert "Did you feel reassured after giving birth?" in html.text
    assert "Send my answers" in html.text
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    # Later visits keep English without the parameter.
    again = page(client.get(url(participant)))
    assert again.one("html")["lang"] == "en"


def test_lang_ja_switches_back_to_japanese(client, participant):
    client.get(url(participant) + "?lang=en")

    response = client.get(url(participant) + "?lang=ja")

    html = page(response)
    assert html.one("html")["lang"] == "ja"
    assert "回答を送信する" in html.text
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"


def test_the_language_switch_is_a_pair_of_plain_links(client, participant):
    html = page(client.get(url(participant)))

    hrefs = {a["href"]: a for a in html.all("a") if a.get("href", "").startswith("?lang=")}
    assert set(hrefs) == {"?lang=ja", "?lang=en"}
    assert hrefs["?lang=ja"].get("aria-current") == "true"


def test_japanese_is_the_default_even_for_an_english_browser(client, participant):
    html = page(client.get(url(participant), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"))

    assert html.one("html")["lang"] == "ja"


@pytest.mark.parametrize("lang", ["xx", "", "EN-gb" * 100, "../", "ja\x00"])
def test_an_unknown_lang_is_ignored(client, participant, lang):
    response = client.get(url(participant), {"lang": lang})

    assert response.status_code == 200
    assert page(response).one("html")["lang"] == "ja"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_the_response_records_the_language_it_was_answered_in(client, participant):
    english(client)

    assert post(client, participant, "submit", complete_answers()).status_code == 303

    assert Response.objects.get(participant=participant).language == "en"


def test_a_japanese_submission_records_japanese(client, participant):
    post(client, participant, "submit", complete_answers())

    assert Response.objects.get(participant=participant).language == "ja"


# --- Save and resume -------------------------------------------------------------------


def test_save_keeps_a_draft_and_redirects_to_the_saved_notice(client, participant):
    response = post(
        client, participant, "save", {"channels": ["anytime", "ward_phone"], "reassured": "agree"}
    )

    assert response.status_code == 303
    assert response["Location"] == url(participant) + "?saved=1"
    draft = Response.objects.get(participant=participant)
    assert draft.status == Response.Status.DRAFT
    assert draft.source == Response.Source.WEB
    assert stored(participant) == {
        ("channels", "anytime"),
        ("channels", "ward_phone"),
        ("reassured", "agree"),
    }


def test_reopening_the_link_refills_the_form_from_the_draft(client, participant):
    post(client, participant, "save", {"channels": ["night"], "tool": "email"})

    saved = page(client.get(url(participant) + "?saved=1"))
    assert "回答を一時保存しました。" in saved.text
    assert saved.one("div", role="status")

    reopened = page(Client().get(url(participant)))  # another device: no cookies at all
    assert reopened.checked() == {("channels", "night"), ("tool", "email")}
    assert "回答を一時保存しました。" not in reopened.text


def test_saving_again_replaces_the_draft(client, participant):
    post(client, participant, "save", {"channels": ["anytime"], "understood": "fully"})
    post(client, participant, "save", {"channels": ["ward_desk"], "understood": "fully"})

    # ward_desk is not online, so the understanding question is hidden and not kept.
    assert stored(participant) == {("channels", "ward_desk")}


def test_autosave_with_json_answers_saved_true(client, participant):
    response = post(
        client, participant, "save", {"reuse": "disagree"}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 200
    assert response.json() == {"saved": True}
    assert stored(participant) == {("reuse", "disagree")}


def test_autosave_with_an_invalid_value_answers_400_with_the_errors_and_stores_nothing(
    client, participant
):
    post(client, participant, "save", {"reuse": "agree"})
    before = database_state()

    response = post(
        client,
        participant,
        "save",
        {"reuse": "disagree", "tool": "fax"},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {"saved": False, "errors": {"tool": "選択肢にない回答です。"}} | {
        "reason": "answers_invalid",
        "message": "確認が必要な回答があります。",
    }
    assert database_state() == before


def test_autosave_errors_come_in_the_participants_language(client, participant):
    english(client)

    response = post(client, participant, "save", {"tool": "fax"}, HTTP_ACCEPT="application/json")

    assert response.json()["errors"] == {"tool": "This is not one of the choices offered."}


def test_a_plain_save_with_an_invalid_value_shows_the_form_with_errors_and_stores_nothing(
    client, participant
):
    response = post(client, participant, "save", {"reassured": ["agree", "disagree"]})

    assert response.status_code == 200
    html = page(response)
    assert html.text_of("error-reassured") == "エラー： 回答は1つだけ選んでください。"
    assert not Response.objects.exists()


# --- Submit once -----------------------------------------------------------------------


def test_submitting_stores_one_submitted_response_with_its_answer_rows(client, participant):
    response = post(client, participant, "submit", complete_answers())

    assert response.status_code == 303
    assert response["Location"] == url(participant)
    submitted = Response.objects.get(participant=participant)
    assert submitted.status == Response.Status.SUBMITTED
    assert submitted.submitted_at is not None
    assert submitted.source == Response.Source.WEB
    assert stored(participant) == EXPECTED_ROWS


def test_after_submission_the_link_shows_the_thank_you_page(client, participant):
    post(client, participant, "submit", complete_answers())

    response = client.get(url(participant))

    assert response.status_code == 200
    html = page(response)
    assert "ご回答ありがとうございました" in html.text
    assert not html.all("form")


def test_the_thank_you_page_in_english(client, participant):
    post(client, participant, "submit", complete_answers())

    html = page(client.get(url(participant) + "?lang=en"))

    assert "Thank you for your answers" in html.text


def test_a_second_submission_answers_409_and_changes_nothing(client, participant):
    post(client, participant, "submit", complete_answers())
    before = database_state()

    response = post(client, participant, "submit", complete_answers(tool="phone"))

    assert response.status_code == 409
    assert "ご回答ありがとうございました" in page(response).text
    assert database_state() == before


def test_a_save_after_submission_answers_409_and_changes_nothing(client, participant):
    post(client, participant, "submit", complete_answers())
    before = database_state()

    assert post(client, participant, "save", {"tool": "phone"}).status_code == 409
    json_response = post(
        client, participant, "save", {"tool": "phone"}, HTTP_ACCEPT="application/json"
    )
    assert json_response.status_code == 409
    assert json_response.json()["saved"] is False
    assert database_state() == before


def test_submitting_after_a_draft_submits_the_posted_answers(client, participant):
    post(client, participant, "save", {"tool": "email"})

    post(client, participant, "submit", complete_answers())

    assert Response.objects.get().status == Response.Status.SUBMITTED
    assert stored(participant) == EXPECTED_ROWS


# --- Invalid answers -------------------------------------------------------------------

INVALID_CASES = {
    "missing_required": (
        complete_answers(reassured=None),
        "reassured",
        "この質問にお答えください。",
        "Please answer this question.",
    ),
    "choice_of_another_question": (
        complete_answers(tool="agree"),
        "tool",
        "選択肢にない回答です。",
        "This is not one of the choices offered.",
    ),
    "unknown_choice": (
        complete_answers(tool="fax" * 1000),
        "tool",
        "選択肢にない回答です。",
        "This is not one of the choices offered.",
    ),
    "two_choices_on_a_single_choice_item": (
        complete_answers(tool=["line", "phone"]),
        "tool",
        "回答は1つだけ選んでください。",
        "Choose only one answer.",
    ),
    "two_choices_on_a_scale_item": (
        complete_answers(reuse=["agree", "disagree"]),
        "reuse",
        "回答は1つだけ選んでください。",
        "Choose only one answer.",
    ),
    "exclusive_none_with_another_channel": (
        complete_answers(channels=["none", "ward_phone"], understood=None),
        "channels",
        "「いずれも利用しなかった」は、ほかの回答と一緒に選ぶことはできません。",
        "“None of these” cannot be combined with other answers.",
    ),
    "conditional_question_unanswered_when_its_condition_is_met": (
        complete_answers(channels=["midwife_chat"], understood=None),
        "understood",
        "この質問にお答えください。",
        "Please answer this question.",
    ),
}


@pytest.mark.parametrize("case", INVALID_CASES)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_an_invalid_submission_returns_the_form_with_a_summary_and_a_message_at_the_field(
    client, participant, case, language
):
    answers, code, message_ja, message_en = INVALID_CASES[case]
    message = {"ja": message_ja, "en": message_en}[language]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    before = database_state()

    response = post(client, participant, "submit", answers)

    assert response.status_code == 200
    html = page(response)
    assert html.one("html")["lang"] == language
    summary = html.one("div", id="error-summary")
    assert summary["role"] == "alert"
    assert summary["tabindex"] == "-1"
    link = html.one("a", href=f"#q-{code}-0")
    assert link["href"][1:] == html.all("input", name=code)[0]["id"]  # the first input
    number = QUESTION_CODES.index(code) + 1
    prefix = {"ja": f"問{number}：", "en": f"Question {number}: "}[language]
    assert prefix + message in html.text_of("error-summary")
    error_prefix = {"ja": "エラー： ", "en": "Error: "}[language]
    assert html.text_of(f"error-{code}") == error_prefix + message
    fieldset = html.one("fieldset", id=f"question-{code}")
    assert f"error-{code}" in fieldset["aria-describedby"].split()
    invalid = {a["id"] for a in html.all("input") if a.get("aria-invalid") == "true"}
    assert invalid == {a["id"] for a in html.all("input", name=code)}
    # Only that question is in error.
    assert [a["id"] for a in html.all("p") if a.get("id", "").startswith("error-")] == [
        f"error-{code}"
    ]
    assert database_state() == before


@pytest.mark.parametrize("case", INVALID_CASES)
def test_an_invalid_submission_keeps_the_entered_values_in_the_form(client, participant, case):
    answers = INVALID_CASES[case][0]
    posted = {
        (code, value)
        for code, values in answers.items()
        for value in (values if isinstance(values, list) else [values])
    }

    html = page(post(client, participant, "submit", answers))

    offered = {(a["name"], a["value"]) for a in html.all("input") if a.get("type") != "hidden"}
    assert html.checked() == posted & offered
    assert len(html.checked()) >= 5


def test_an_invalid_submission_keeps_the_earlier_draft_as_it_was(client, participant):
    post(client, participant, "save", {"tool": "email"})
    before = database_state()

    post(client, participant, "submit", complete_answers(reassured=None))

    assert database_state() == before
    assert Response.objects.get().status == Response.Status.DRAFT


def test_a_refusal_without_field_errors_is_still_shown_in_the_summary(
    client, participant, monkeypatch
):
    def refuse(**kwargs):  # type: ignore[no-untyped-def]
        raise AnswersInvalid("この回答は受け付けられませんでした。")

    monkeypatch.setattr("surveys.views.response_submit", refuse)

    response = post(client, participant, "submit", complete_answers())

    assert response.status_code == 200
    html = page(response)
    assert html.one("div", id="error-summary")["role"] == "alert"
    assert "この回答は受け付けられませんでした。" in html.text_of("error-summary")


def test_the_page_title_says_there_is_an_error(client, participant):
    response = post(client, participant, "submit", complete_answers(tool=None))

    assert "<title>エラー：" in response.content.decode()


def test_several_errors_are_listed_in_question_order(client, participant):
    response = post(client, participant, "submit", {"channels": ["anytime"], "tool": "fax"})

    html = page(response)
    links = [a["href"] for a in html.all("a") if a.get("href", "").startswith("#q-")]
    assert links == [
        "#q-reassured-0",
        "#q-continue-0",
        "#q-reuse-0",
        "#q-understood-0",
        "#q-tool-0",
    ]


# --- Free text and numbers (an instrument with those types) ----------------------------


@pytest.fixture
def text_and_number_participant(db):  # type: ignore[no-untyped-def]
    study = StudyFactory()
    instrument = Instrument.objects.create(
        study=study,
        version=1,
        title_ja="自由記述と数値の調査",
        title_en="Text and number questionnaire",
    )
    Question.objects.create(
        instrument=instrument,
        code="children",
        order=1,
        type=Question.Type.NUMBER,
        text_ja="お子さんは何人ですか。",
        text_en="How many children do you have?",
        min_value=Decimal(0),
        max_value=Decimal(20),
    )
    Question.objects.create(
        instrument=instrument,
        code="comment",
        order=2,
        type=Question.Type.TEXT,
        required=False,
        text_ja="ご意見をお聞かせください。",
        text_en="Any comments?",
        max_length=10,
    )
    services.instrument_publish(instrument=instrument)
    return ParticipantFactory(site=SiteFactory(study=study))


def test_text_and_number_questions_render_labelled_inputs(client, text_and_number_participant):
    html = page(client.get(url(text_and_number_participant)))

    number = html.one("input", name="children")
    assert number["inputmode"] == "decimal"
    assert html.labels[number["id"]].strip() == "回答（数字）"
    assert html.labels["q-comment"].strip() == "回答（10文字以内）"
    assert "任意" in html.legends[1]


@pytest.mark.parametrize(
    ("answers", "code", "message_ja", "message_en"),
    [
        (
            {"children": "二人"},
            "children",
            "数字で入力してください（例：3）。",
            "Enter a number, for example 3.",
        ),
        (
            {"children": "3.5.1"},
            "children",
            "数字で入力してください（例：3）。",
            "Enter a number, for example 3.",
        ),
        (
            {"children": "21"},
            "children",
            "20以下の数を入力してください。",
            "Enter a number of at most 20.",
        ),
        (
            {"children": "1", "comment": "あ" * 11},
            "comment",
            "10文字以内で入力してください（現在11文字です）。",
            "Keep your answer to 10 characters or fewer (it has 11).",
        ),
    ],
)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_bad_number_or_a_long_text_is_refused_at_its_field_and_kept_in_the_form(
    client, text_and_number_participant, answers, code, message_ja, message_en, language
):
    participant = text_and_number_participant
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    response = post(client, participant, "submit", answers)

    assert response.status_code == 200
    html = page(response)
    message = {"ja": message_ja, "en": message_en}[language]
    assert html.text_of(f"error-{code}").endswith(message)
    assert html.one("a", href=f"#q-{code}")
    field = html.one("input" if code == "children" else "textarea", id=f"q-{code}")
    assert field["aria-invalid"] == "true"
    assert f"error-{code}" in field["aria-describedby"].split()
    assert html.value_of("children") == answers["children"]
    if "comment" in answers:
        assert html.textareas["comment"].strip() == answers["comment"]
    assert not Response.objects.exists()


def test_full_width_digits_are_accepted_as_a_number(client, text_and_number_participant):
    participant = text_and_number_participant

    response = post(client, participant, "submit", {"children": "３", "comment": " よかった "})

    assert response.status_code == 303
    assert stored(participant) == {("children", "3.0000"), ("comment", "よかった")}


@pytest.fixture
def pets_participant(db):  # type: ignore[no-untyped-def]
    """A questionnaire whose conditional question has no help text of its own."""
    study = StudyFactory()
    instrument = Instrument.objects.create(study=study, version=1, title_ja="ペット")
    pets = Question.objects.create(
        instrument=instrument, code="pets", order=1, type=Question.Type.SINGLE, text_ja="ペット"
    )
    for order, (code, ja, en) in enumerate(
        [("dog", "犬", "Dog"), ("cat", "猫", "Cat"), ("none", "いない", "None")], start=1
    ):
        Choice.objects.create(question=pets, code=code, order=order, label_ja=ja, label_en=en)
    name = Question.objects.create(
        instrument=instrument,
        code="name",
        order=2,
        type=Question.Type.TEXT,
        text_ja="名前",
        condition_question=pets,
    )
    name.condition_choices.set(pets.choices.exclude(code="none"))
    services.instrument_publish(instrument=instrument)
    return ParticipantFactory(site=SiteFactory(study=study))


@pytest.mark.parametrize(
    ("language", "hint"),
    [
        ("ja", "問1で「犬」、「猫」のいずれかを選んだ方のみお答えください。"),
        ("en", "Answer this only if you chose any of “Dog”, “Cat” in question 1."),
    ],
)
def test_a_conditional_question_without_help_says_when_to_answer_it(
    client, pets_participant, language, hint
):
    html = page(client.get(url(pets_participant) + f"?lang={language}"))

    assert html.text_of("help-name") == hint
    assert html.one("textarea", name="name")["aria-describedby"] == "help-name"


def test_a_hidden_text_answer_is_dropped_and_a_shown_one_kept(client, pets_participant):
    no_pet = ParticipantFactory(site=pets_participant.site)

    post(client, pets_participant, "submit", {"pets": "dog", "name": "ポチ"})
    post(client, no_pet, "submit", {"pets": "none", "name": "ポチ"})

    assert stored(pets_participant) == {("pets", "dog"), ("name", "ポチ")}
    assert stored(no_pet) == {("pets", "none")}


# --- Conditional and exclusive questions -----------------------------------------------


def test_the_conditional_question_is_stored_when_an_online_channel_is_ticked(client, participant):
    post(client, participant, "submit", complete_answers(channels=["night"], understood="fairly"))

    assert ("understood", "fairly") in stored(participant)


def test_the_conditional_answer_is_dropped_when_no_online_channel_is_ticked(client, participant):
    # Without JavaScript the question stays on the page and may be answered anyway.
    response = post(
        client, participant, "submit", complete_answers(channels=["ward_desk"], understood="fully")
    )

    assert response.status_code == 303
    assert {q for q, _value in stored(participant)} == {
        "channels",
        "reassured",
        "continue",
        "reuse",
        "tool",
    }


def test_with_or_without_javascript_the_stored_answers_are_the_same(client, site):
    without_js, with_js = ParticipantFactory(site=site), ParticipantFactory(site=site)
    answers = complete_answers(channels=["ward_phone"])

    # No JavaScript: the hidden question was answered and is posted.
    post(client, without_js, "submit", answers | {"understood": "fully"})
    # JavaScript: the hidden question's inputs are disabled, so it is not posted.
    post(client, with_js, "submit", {k: v for k, v in answers.items() if k != "understood"})

    assert stored(without_js) == stored(with_js)
    assert stored(with_js) == {
        ("channels", "ward_phone"),
        ("reassured", "agree"),
        ("continue", "somewhat_agree"),
        ("reuse", "agree"),
        ("tool", "line"),
    }


def test_none_alone_is_accepted_and_needs_no_understanding_answer(client, participant):
    response = post(
        client, participant, "submit", complete_answers(channels=["none"], understood=None)
    )

    assert response.status_code == 303
    assert ("channels", "none") in stored(participant)
    assert not any(q == "understood" for q, _value in stored(participant))


def test_the_page_marks_the_exclusive_choice_for_the_script(client, participant):
    html = page(client.get(url(participant)))

    exclusive = [a["value"] for a in html.all("input") if "data-exclusive" in a]
    assert exclusive == ["none"]


def test_the_server_marks_the_conditional_question_hidden_when_its_condition_is_unmet(
    client, participant
):
    post(client, participant, "save", {"channels": ["ward_phone"]})

    html = page(client.get(url(participant)))

    assert html.one("fieldset", id="question-understood")["data-shown"] == "false"
    post(client, participant, "save", {"channels": ["anytime"]})
    html = page(client.get(url(participant)))
    assert html.one("fieldset", id="question-understood")["data-shown"] == "true"


# --- Links that do not work ------------------------------------------------------------


@pytest.fixture
def invalid_link_pages(client, participant):  # type: ignore[no-untyped-def]
    """The 404 page for a malformed token, to compare every other cause with."""
    response = client.get("/r/not-a-token/")
    assert response.status_code == 404
    return response.content


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "A" * 43,  # well-formed, unknown
        "A" * 42 + "!",
        "a" * 5000,
        "%00%01",
        "%FF%FE",  # not UTF-8
        "%E6%97%A5%E6%9C%AC",  # 日本
        "..%2F..",
        "%0A" + "A" * 43,
        "A" * 43 + "%0A",
        "<script>",
        "' OR 1=1 --",
    ],
)
def test_every_unknown_or_malformed_token_gets_the_same_404_page(client, invalid_link_pages, token):
    response = client.get(f"/r/{token}/")

    assert response.status_code == 404
    assert response.content == invalid_link_pages
    assert "このリンクは無効です" in page(response).text


def test_a_replaced_link_gets_the_same_404_page(client, participant, invalid_link_pages):
    services.participant_replace_links(participants=[participant])

    response = client.get(url(participant))

    assert response.status_code == 404
    assert response.content == invalid_link_pages


def test_a_withdrawn_participants_link_gets_the_same_404_page(
    client, participant, invalid_link_pages
):
    services.participant_withdraw(participant=participant)

    response = client.get(url(participant))

    assert response.status_code == 404
    assert response.content == invalid_link_pages


def test_posting_to_an_invalid_link_gets_404_and_stores_nothing(client, participant):
    response = client.post("/r/" + "A" * 43 + "/", complete_answers() | {"action": "submit"})

    assert response.status_code == 404
    assert not Response.objects.exists()


def test_any_unknown_address_gets_the_same_invalid_link_page(client, invalid_link_pages):
    for address in ["/r/", "/r/a/b/", "/nothing-here/"]:
        response = client.get(address)
        assert response.status_code == 404
        assert response.content == invalid_link_pages


def test_the_invalid_link_page_in_english(client):
    response = client.get("/r/nope/?lang=en")

    assert response.status_code == 404
    assert "This link is not valid" in page(response).text


# --- A questionnaire that is not open --------------------------------------------------


def test_a_site_not_open_yet_gets_a_polite_closed_page_with_the_opening_date(client, study):
    opens = dt.datetime(2031, 5, 1, 9, 0, tzinfo=dt.UTC)
    participant = ParticipantFactory(site=SiteFactory(study=study, survey_opens_at=opens))

    response = client.get(url(participant))

    assert response.status_code == 403
    text = " ".join(page(response).text.split())
    assert "現在、回答を受け付けていません" in text
    assert "2031年5月1日から" in text  # 18:00 in Tokyo


def test_a_closed_site_gets_the_closed_page_in_english_too(client, study):
    closes = timezone.now() - dt.timedelta(days=2)
    site = SiteFactory(study=study, survey_opens_at=closes - dt.timedelta(days=30))
    site.survey_closes_at = closes
    site.save()
    participant = ParticipantFactory(site=site)

    response = client.get(url(participant) + "?lang=en")

    assert response.status_code == 403
    assert "The questionnaire closed on" in page(response).text


def test_a_site_without_an_opening_time_is_closed(client, study):
    participant = ParticipantFactory(site=SiteFactory(study=study, survey_opens_at=None))

    assert client.get(url(participant)).status_code == 403


def test_posting_to_a_closed_site_gets_403_and_stores_nothing(client, study):
    participant = ParticipantFactory(site=SiteFactory(study=study, survey_opens_at=None))

    for action in ["save", "submit"]:
        assert post(client, participant, action, complete_answers()).status_code == 403
    response = post(client, participant, "save", {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json()["reason"] == "survey_closed"
    assert not Response.objects.exists()


def test_a_study_without_a_published_questionnaire_is_closed(client, db):
    participant = ParticipantFactory(site=SiteFactory(study=StudyFactory()))

    assert client.get(url(participant)).status_code == 403
    assert post(client, participant, "submit", complete_answers()).status_code == 403


# --- CSRF --------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_gets_403_asking_to_reload(participant):
    client = Client(enforce_csrf_checks=True)

    response = post(client, participant, "submit", complete_answers())

    assert response.status_code == 403
    html = page(response)
    assert html.one("html")["lang"] == "ja"
    assert "ページを再読み込みしてください" in html.text
    assert html.one("a", href=url(participant))
    assert not Response.objects.exists()


def test_the_csrf_page_speaks_the_participants_language(participant):
    client = english(Client(enforce_csrf_checks=True))

    response = post(client, participant, "submit", complete_answers())

    assert response.status_code == 403
    assert "Please reload the page" in page(response).text


def test_the_form_token_passes_the_csrf_check(participant):
    client = Client(enforce_csrf_checks=True)
    token = page(client.get(url(participant))).one("input", name="csrfmiddlewaretoken")["value"]

    response = post(client, participant, "submit", complete_answers(csrfmiddlewaretoken=token))

    assert response.status_code == 303


def test_autosave_passes_the_csrf_check_with_the_header(participant):
    client = Client(enforce_csrf_checks=True)
    token = page(client.get(url(participant))).one("input", name="csrfmiddlewaretoken")["value"]

    response = post(
        client,
        participant,
        "save",
        {"tool": "line"},
        HTTP_ACCEPT="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.json() == {"saved": True}


def test_autosave_without_a_token_gets_a_json_403(participant):
    client = Client(enforce_csrf_checks=True)

    response = post(client, participant, "save", {"tool": "line"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert response.json()["saved"] is False


# --- Nothing a client sends gives a 500 --------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({}, 400),  # no action at all
        ({"action": "delete"}, 400),
        ({"action": ["save", "submit"]}, 200),  # the last one counts: submit, unanswered
        ({"action": "submit", "unknown": "x", "csrf": "y", "channels[]": "anytime"}, 200),
        ({"action": "submit", "tool": ["line"] * 500}, 200),
        ({"action": "save", "tool": "x" * 3_000_000}, 400),  # over the upload limit
        ({"action": "save", "tool": "x" * 100_000}, 200),
        ({"action": "save", "channels": ["anytime", "anytime"]}, 303),
        ({"action": "save", "tool": "\x00"}, 200),
    ],
)
def test_odd_form_posts_never_cause_a_server_error(client, participant, data, status):
    response = client.post(url(participant), data)

    assert response.status_code == status
    assert not Response.objects.filter(status=Response.Status.SUBMITTED).exists()


def test_too_many_fields_get_a_friendly_400(client, participant):
    data = {f"f{i}": "x" for i in range(1200)} | {"action": "save"}

    response = client.post(url(participant), data)

    assert response.status_code == 400
    assert "送信内容を読み取れませんでした" in page(response).text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"action=submit&tool=%FF%FE&channels=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00\x00", "application/x-www-form-urlencoded; charset=utf-16"),
        (b"action=save&tool=line", "application/x-www-form-urlencoded; charset=nonsense"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"action=save", "multipart/form-data"),  # no boundary
        (b'{"action": "submit"}', "application/json"),
        (b"\x00" * 1000, "text/plain"),
    ],
)
def test_broken_bodies_never_cause_a_server_error(client, participant, body, content_type):
    response = client.generic("POST", url(participant), body, content_type=content_type)

    assert response.status_code in {200, 303, 400}
    assert not Response.objects.filter(status=Response.Status.SUBMITTED).exists()


def test_a_query_string_with_too_many_fields_gets_a_friendly_400(client, participant):
    query = "&".join(f"q{i}=x" for i in range(1200))

    response = client.get(f"{url(participant)}?{query}")
    assert response.status_code == 400
    assert "送信内容を読み取れませんでした" in page(response).text
    # Invalid links stay invalid links, whatever the query string.
    for address in ["/r/nope/", "/elsewhere/"]:
        assert client.get(f"{address}?{query}").status_code == 404


def test_a_broken_body_gets_400_before_the_csrf_check_too(participant):
    client = Client(enforce_csrf_checks=True)

    response = client.generic(
        "POST", url(participant), b"--x\r\nbroken", content_type="multipart/form-data; boundary=x"
    )

    assert response.status_code in {400, 403}
    assert not Response.objects.exists()


def _fail(request):  # type: ignore[no-untyped-def]
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", _fail)]
handler500 = "surveys.views.server_error"


@override_settings(ROOT_URLCONF=__name__)
def test_an_unexpected_error_gets_a_translated_500_page(db):
    client = Client(raise_request_exception=False)

    response = client.get("/boom/?lang=en")

    assert response.status_code == 500
    html = page(response)
    assert html.one("html")["lang"] == "en"
    assert "Something went wrong" in html.text
    assert "エラーが発生しました" in page(client.get("/boom/")).text


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_not_allowed(client, participant, method):
    assert getattr(client, method)(url(participant)).status_code == 405


@pytest.mark.parametrize("accept", ["garbage;;;q=abc", "application/json;q=nan", "*/*", ""])
def test_odd_accept_headers_are_handled(client, participant, accept):
    response = post(client, participant, "save", {"tool": "line"}, HTTP_ACCEPT=accept)

    assert response.status_code in {200, 303}


# --- Performance ---------------------------------------------------------------------------


def test_showing_a_draft_takes_a_fixed_handful_of_queries(
    client, participant, django_assert_max_num_queries
):
    post(client, participant, "save", complete_answers())
    client.get(url(participant))  # the instrument's questions are loaded once per process

    with django_assert_max_num_queries(3):
        assert client.get(url(participant)).status_code == 200


def test_submitting_takes_a_fixed_handful_of_queries(
    client, participant, django_assert_max_num_queries
):
    client.get(url(participant))

    with django_assert_max_num_queries(12):
        assert post(client, participant, "submit", complete_answers()).status_code == 303


# --- Draft saves per link (HYOKA_DRAFT_SAVE_RATE) ---------------------------------------


def test_a_link_saving_more_often_than_the_limit_gets_429_and_nothing_stored(
    client, participant, site, settings
):
    settings.HYOKA_DRAFT_SAVE_RATE = "3/m"
    json = {"HTTP_ACCEPT": "application/json"}
    for answer in ("agree", "disagree", "agree"):
        saved = post(client, participant, "save", {"reuse": answer}, **json)
        assert saved.status_code == 200
    before = database_state()
    refused = post(client, participant, "save", {"reuse": "disagree"}, **json)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json() == {
        "saved": False,
        "errors": {},
        "reason": "throttled",
        "message": _ja("Your answers are being saved too often. Wait a minute, then save again."),
    }
    assert database_state() == before
    # Without JavaScript (the save button): a page in the participant's language.
    page_429 = post(english(client), participant, "save", {"reuse": "disagree"})
    assert page_429.status_code == 429 and page_429["Retry-After"]
    assert "saved too often" in page_429.content.decode()
    assert database_state() == before
    # Another link is not slowed down, and this one still submits (submissions are not
    # counted: each link submits once).
    other = ParticipantFactory(site=site)
    assert post(client, other, "save", {"reuse": "agree"}, **json).status_code == 200
    submitted = post(client, participant, "submit", complete_answers())
    assert submitted.status_code == 303
    assert Response.objects.get(participant=participant).is_submitted


def _ja(message: str) -> str:
    """The Japanese of ``message`` (the translation lives in locale/ja; the pending
    catalogue of this change is merged there)."""
    from django.utils import translation

    with translation.override("ja"):
        return translation.gettext(message)


def test_the_default_limit_is_above_what_the_page_autosave_can_send():
    """questionnaire.js saves 1.5 s after the last change, one save at a time: at most 40 a
    minute. The default must never refuse it."""
    import re as _re
    from pathlib import Path

    from django.conf import settings as django_settings

    script = (Path(django_settings.BASE_DIR) / "static/surveys/questionnaire.js").read_text()
    delay_ms = int(_re.search(r"AUTOSAVE_DELAY_MS = (\d+);", script).group(1))
    count, period = django_settings.HYOKA_DRAFT_SAVE_RATE.split("/")
    assert period == "m"
    assert int(count) > 60_000 / delay_ms
