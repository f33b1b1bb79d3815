"""The validation rules behind the questionnaire, the API and imports (surveys/answers.py),
through its public API: ``InstrumentForm.load(...).clean(...)``, ``is_shown``, ``to_raw``."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from surveys import services
from surveys.answers import InstrumentForm
from surveys.models import Choice, Instrument, Question
from tests.factories import StudyFactory, complete_answers


@pytest.fixture(autouse=True)
def in_english():  # type: ignore[no-untyped-def]
    """Messages in English unless a test says Japanese (the project's default)."""
    with translation.override("en"):
        yield


@pytest.fixture
def form(study) -> InstrumentForm:  # type: ignore[no-untyped-def]
    """The reference questionnaire."""
    return InstrumentForm.load(study.instruments.get())


@pytest.fixture
def numbers_form(db) -> InstrumentForm:  # type: ignore[no-untyped-def]
    """A questionnaire with a bounded number, an unbounded number and a short text."""
    instrument = Instrument.objects.create(
        study=StudyFactory(), version=1, title_ja="数と文字", title_en="Numbers and text"
    )
    common = {"instrument": instrument, "text_ja": "問", "text_en": "Q"}
    Question.objects.create(
        **common,
        code="children",
        order=1,
        type=Question.Type.NUMBER,
        min_value=Decimal(0),
        max_value=Decimal(20),
    )
    Question.objects.create(
        **common, code="amount", order=2, type=Question.Type.NUMBER, required=False
    )
    Question.objects.create(
        **common, code="comment", order=3, type=Question.Type.TEXT, required=False, max_length=5
    )
    services.instrument_publish(instrument=instrument)
    return InstrumentForm.load(instrument)


def codes(value) -> object:  # type: ignore[no-untyped-def]
    """A clean value in plain terms: choice codes instead of Choice objects."""
    if isinstance(value, Choice):
        return value.code
    if isinstance(value, list):
        return [c.code for c in value]
    return value


def clean(form: InstrumentForm, raw: dict, *, complete: bool = True) -> tuple[dict, dict]:
    answers, errors = form.clean(raw, complete=complete)
    return {k: codes(v) for k, v in answers.items()}, errors


# --- Choices -----------------------------------------------------------------------------


def test_a_complete_set_of_answers_is_clean(form):
    answers, errors = clean(form, complete_answers())

    assert errors == {}
    assert answers == {
        "channels": ["anytime", "ward_phone"],
        "reassured": "agree",
        "continue": "somewhat_agree",
        "reuse": "agree",
        "understood": "fully",
        "tool": "line",
    }


def test_multiple_choices_come_back_in_the_instruments_order_without_repeats(form):
    answers, errors = clean(
        form, {"channels": ["ward_phone", "anytime", "ward_phone"]}, complete=False
    )

    assert errors == {}
    assert answers["channels"] == ["anytime", "ward_phone"]


def test_a_choice_code_of_another_question_is_refused(form):
    _answers, errors = clean(form, complete_answers(tool="agree"))

    assert errors == {"tool": "This is not one of the choices offered."}


def test_an_unknown_choice_in_a_multiple_choice_is_refused(form):
    _answers, errors = clean(form, complete_answers(channels=["anytime", "pigeon"]))

    assert errors["channels"] == "This is not one of the choices offered."


def test_two_choices_on_a_single_choice_item_are_refused(form):
    _answers, errors = clean(form, complete_answers(tool=["line", "phone"]))

    assert errors == {"tool": "Choose only one answer."}


def test_an_exclusive_choice_cannot_be_combined(form):
    _answers, errors = clean(form, complete_answers(channels=["none", "night"]))

    assert errors["channels"] == "“None of these” cannot be combined with other answers."


def test_the_exclusive_message_uses_the_label_in_japanese(form):
    with translation.override("ja"):
        _answers, errors = clean(form, complete_answers(channels=["checkup", "none"]))

    assert errors["channels"] == (
        "「いずれも利用しなかった」は、ほかの回答と一緒に選ぶことはできません。"
    )


def test_an_exclusive_choice_alone_is_fine(form):
    answers, errors = clean(form, complete_answers(channels=["none"], understood=None))

    assert errors == {}
    assert answers["channels"] == ["none"]


def test_unknown_question_codes_are_ignored(form):
    answers, errors = clean(form, complete_answers() | {"favourite_colour": "blue", "": "x"})

    assert errors == {}
    assert set(answers) == {"channels", "reassured", "continue", "reuse", "understood", "tool"}


def test_empty_strings_count_as_unanswered(form):
    answers, errors = clean(form, {"tool": "", "channels": ["", ""]}, complete=False)

    assert errors == {}
    assert answers == {}


# --- Required answers ------------------------------------------------------------------


def test_a_complete_submission_requires_every_shown_required_question(form):
    _answers, errors = clean(form, {"channels": ["ward_desk"]})

    assert errors == {
        "reassured": "Please answer this question.",
        "continue": "Please answer this question.",
        "reuse": "Please answer this question.",
        "tool": "Please answer this question.",
    }


def test_a_draft_may_leave_questions_unanswered(form):
    answers, errors = clean(form, {"tool": "phone"}, complete=False)

    assert errors == {}
    assert answers == {"tool": "phone"}


def test_the_required_message_in_japanese(form):
    with translation.override("ja"):
        _answers, errors = clean(form, complete_answers(tool=None))

    assert errors == {"tool": "この質問にお答えください。"}


# --- Conditions --------------------------------------------------------------------------


@pytest.mark.parametrize("online", ["anytime", "night", "midwife_chat"])
def test_the_understanding_question_is_required_when_an_online_channel_is_chosen(form, online):
    _answers, errors = clean(form, complete_answers(channels=[online], understood=None))

    assert errors == {"understood": "Please answer this question."}


@pytest.mark.parametrize("offline", [["ward_phone"], ["ward_desk", "live"], ["none"]])
def test_the_understanding_answer_is_dropped_when_no_online_channel_is_chosen(form, offline):
    answers, errors = clean(form, complete_answers(channels=offline, understood="fully"))

    assert errors == {}
    assert "understood" not in answers


def test_a_condition_on_a_question_in_error_hides_its_dependent(form):
    _answers, errors = clean(
        form, complete_answers(channels=["anytime", "pigeon"], understood=None)
    )

    # The channels answer is wrong, so whether to ask about understanding is unknown:
    # only the wrong answer is reported.
    assert set(errors) == {"channels"}


def test_is_shown_follows_the_answers(form):
    understood = form.by_code["understood"]
    online, _ = form.clean({"channels": ["night"]}, complete=False)
    offline, _ = form.clean({"channels": ["checkup"]}, complete=False)

    assert form.is_shown(understood, online) is True
    assert form.is_shown(understood, offline) is False
    assert form.is_shown(understood, {}) is False
    assert form.is_shown(form.by_code["tool"], {}) is True


# --- Numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", Decimal(3)),
        ("３", Decimal(3)),  # full-width digit from a Japanese keyboard
        ("１２", Decimal(12)),
        ("１．５", Decimal("1.5")),
        (" 7 ", Decimal(7)),
        ("0", Decimal(0)),
        ("20", Decimal(20)),
        (4, Decimal(4)),  # an API client may send a JSON number
    ],
)
def test_numbers_are_read_generously(numbers_form, raw, expected):
    answers, errors = clean(numbers_form, {"children": raw})

    assert errors == {}
    assert answers["children"] == expected


def test_thousands_separators_are_accepted(numbers_form):
    answers, errors = clean(numbers_form, {"children": "1", "amount": "1,234,567"})

    assert errors == {}
    assert answers["amount"] == Decimal(1234567)


@pytest.mark.parametrize(
    "raw", ["three", "二", "3人", "1.2.3", "NaN", "Infinity", "-inf", "1e10", "12345678901", "--1"]
)
def test_what_is_not_a_usable_number_is_refused(numbers_form, raw):
    _answers, errors = clean(numbers_form, {"children": "1", "amount": raw})

    assert errors == {"amount": "Enter a number, for example 3."}


@pytest.mark.parametrize("raw", ["-1", "21", "20.01", "-0.5"])
def test_numbers_outside_the_bounds_are_refused(numbers_form, raw):
    _answers, errors = clean(numbers_form, {"children": raw})

    assert set(errors) == {"children"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-1", "Enter a number of at least 0."),
        ("21", "Enter a number of at most 20."),
    ],
)
def test_the_bounds_message_names_the_bound_as_a_participant_would_write_it(
    numbers_form, raw, message
):
    _answers, errors = clean(numbers_form, {"children": raw})

    assert errors == {"children": message}


def test_the_number_message_in_japanese(numbers_form):
    with translation.override("ja"):
        _answers, errors = clean(numbers_form, {"children": "たくさん"})

    assert errors == {"children": "数字で入力してください（例：3）。"}


def test_two_values_for_a_number_are_refused(numbers_form):
    _answers, errors = clean(numbers_form, {"children": ["1", "2"]})

    assert errors == {"children": "Give one answer only."}


# --- Free text -----------------------------------------------------------------------------


def test_text_up_to_the_limit_is_kept_without_surrounding_spaces(numbers_form):
    answers, errors = clean(numbers_form, {"children": "1", "comment": "  あいうえお \n"})

    assert errors == {}
    assert answers["comment"] == "あいうえお"


def test_text_over_the_limit_is_refused_with_its_length(numbers_form):
    _answers, errors = clean(numbers_form, {"children": "1", "comment": "あいうえおか"})

    assert errors == {"comment": "Keep your answer to 5 characters or fewer (it has 6)."}


def test_the_text_limit_message_in_japanese(numbers_form):
    with translation.override("ja"):
        _answers, errors = clean(numbers_form, {"children": "1", "comment": "x" * 8})

    assert errors == {"comment": "5文字以内で入力してください（現在8文字です）。"}


def test_blank_text_is_no_answer(numbers_form):
    answers, errors = clean(numbers_form, {"children": "1", "comment": "   "})

    assert errors == {}
    assert "comment" not in answers


# --- Input that is not a string ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"code": "line"},
        True,
        False,
        ["line", {"x": 1}],
        [["line"]],
        [True],
        object(),
        None.__class__,
    ],
)
def test_input_that_is_not_a_string_is_an_error_not_an_exception(form, raw):
    _answers, errors = clean(form, complete_answers(tool=raw))

    assert errors == {"tool": "This answer is not in a form we can read."}


@pytest.mark.parametrize("raw", [7, 1.5, ["7"], "LINE", " line"])
def test_scalars_that_are_not_choice_codes_are_refused(form, raw):
    _answers, errors = clean(form, complete_answers(tool=raw))

    assert errors == {"tool": "This is not one of the choices offered."}


@pytest.mark.parametrize("raw", [{"n": 1}, True, [1.5, "x"], 3.5j])
def test_a_number_question_refuses_odd_input_without_raising(numbers_form, raw):
    _answers, errors = clean(numbers_form, {"children": raw})

    assert "children" in errors


def test_a_huge_value_is_refused_quickly(form, numbers_form):
    _answers, errors = clean(form, complete_answers(tool="x" * 1_000_000))
    assert errors == {"tool": "This is not one of the choices offered."}

    _answers, errors = clean(numbers_form, {"children": "9" * 100_000})
    assert errors == {"children": "Enter a number, for example 3."}


# --- Back to raw --------------------------------------------------------------------------


def test_clean_answers_go_back_to_the_raw_shape(form, numbers_form):
    answers, _ = form.clean(complete_answers(channels=["ward_phone", "anytime"]), complete=True)

    assert form.to_raw(answers) == {
        "channels": ["anytime", "ward_phone"],
        "reassured": "agree",
        "continue": "somewhat_agree",
        "reuse": "agree",
        "understood": "fully",
        "tool": "line",
    }
    numbers, _ = numbers_form.clean({"children": "３", "amount": "1.50"}, complete=False)
    assert numbers_form.to_raw(numbers) == {"children": "3", "amount": "1.5"}
