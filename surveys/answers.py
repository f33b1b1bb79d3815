"""Validate raw answers against an instrument: the one set of rules behind the web
questionnaire, the API and imports.

Raw answers map question codes to what a client sends: a choice code (single choice and
scale items), a list of choice codes (multiple choice), or a string (free text, number).
Clean answers map question codes to ``Choice``, ``list[Choice]``, ``str`` or ``Decimal``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from .bidi import strip_bidi_controls
from .models import Answer, Choice, Instrument, Question
from .text import forbidden_character, forbidden_message

CleanValue = Choice | list[Choice] | str | Decimal
CleanAnswers = dict[str, CleanValue]

# Choice bits live in a signed 64-bit column: bits 0 to 62.
MAX_CHOICES = 63

# A number answer must fit its column (``Answer.number_value``) exactly: no more decimal
# places than it keeps (rounding would change the answer, and 9999999999.99999 would round
# up past the largest number it holds) and no more integer digits than it has room for.
_NUMBER = Answer._meta.get_field("number_value")
NUMBER_PLACES: int = _NUMBER.decimal_places  # type: ignore[union-attr]
NUMBER_DIGITS: int = _NUMBER.max_digits - NUMBER_PLACES  # type: ignore[union-attr,operator]
_NUMBER_STEP = Decimal(1).scaleb(-NUMBER_PLACES)


@dataclass
class InstrumentForm:
    """An instrument with its questions and choices loaded once, in order."""

    instrument: Instrument
    questions: list[Question]
    by_code: dict[str, Question] = field(init=False)
    choices: dict[str, dict[str, Choice]] = field(init=False)
    condition_codes: dict[str, frozenset[str]] = field(init=False)
    bit_of: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.by_code = {q.code: q for q in self.questions}
        # Every choice of the instrument gets a bit, in question then choice order; a
        # published instrument is frozen, so the positions never change for its responses.
        self.bit_of = {
            c.pk: i for i, c in enumerate(c for q in self.questions for c in q.choices.all())
        }
        self.choices = {q.code: {c.code: c for c in q.choices.all()} for q in self.questions}
        self.condition_codes = {
            q.code: frozenset(c.code for c in q.condition_choices.all())
            for q in self.questions
            if q.condition_question_id
        }

    @classmethod
    def load(cls, instrument: Instrument) -> InstrumentForm:
        """The instrument's form. A published instrument is frozen, so its form is kept per
        process (keyed by id and publication time) and shared read-only by requests."""
        if not instrument.is_frozen:
            return cls._build(instrument)
        key = (instrument.pk, instrument.published_at)
        form = _FROZEN_FORMS.get(key)
        if form is None:
            form = cls._build(instrument)
            if len(_FROZEN_FORMS) >= _FROZEN_FORMS_MAX:
                _FROZEN_FORMS.pop(next(iter(_FROZEN_FORMS)))
            _FROZEN_FORMS[key] = form
        return form

    @classmethod
    def _build(cls, instrument: Instrument) -> InstrumentForm:
        questions = list(
            instrument.questions.select_related("condition_question")
            .prefetch_related("choices", "condition_choices")
            .order_by("order")
        )
        return cls(instrument=instrument, questions=questions)

    def is_shown(self, question: Question, answers: Mapping[str, CleanValue]) -> bool:
        """A conditional question is shown when its condition question is shown and was
        answered with one of the condition's choices."""
        if not question.condition_question_id:
            return True
        source = question.condition_question
        assert source is not None
        if not self.is_shown(self.by_code[source.code], answers):
            return False
        value = answers.get(source.code)
        chosen = {c.code for c in _as_choice_list(value)}
        return bool(chosen & self.condition_codes[question.code])

    def clean(
        self,
        raw: Mapping[str, Any],
        *,
        questions: Iterable[Question] | None = None,
        known: Mapping[str, CleanValue] | None = None,
        complete: bool,
    ) -> tuple[CleanAnswers, dict[str, str]]:
        """Clean ``raw`` for ``questions`` (all by default).

        ``known`` are answers already stored (earlier pages); conditions see them merged
        with this request's answers. ``complete`` requires every shown required question to
        be answered. Answers to questions that are not shown are dropped, never stored.
        Returns the clean answers (shown questions only) and per-question error messages.
        """
        targets = list(questions) if questions is not None else self.questions
        merged: CleanAnswers = dict(known or {})
        clean: CleanAnswers = {}
        errors: dict[str, str] = {}
        # Questions are cleaned in order so a condition sees the value given just before it.
        for question in sorted(targets, key=lambda q: q.order):
            merged.pop(question.code, None)
            if not self.is_shown(question, merged):
                continue
            value, error = self._clean_one(question, raw.get(question.code))
            if error:
                errors[question.code] = error
                continue
            if value is None:
                if complete and question.required:
                    errors[question.code] = _("Please answer this question.")
                continue
            clean[question.code] = value
            merged[question.code] = value
        return clean, errors

    def _clean_one(self, question: Question, raw: Any) -> tuple[CleanValue | None, str | None]:
        values = _as_strings(raw)
        if values is None:
            return None, _("This answer is not in a form we can read.")
        values = [v for v in values if v != ""]
        if not values:
            return None, None
        qtype = question.type
        if qtype in (Question.Type.SINGLE, Question.Type.SCALE4):
            if len(values) > 1:
                return None, _("Choose only one answer.")
            choice = self.choices[question.code].get(values[0])
            if choice is None:
                return None, _("This is not one of the choices offered.")
            return choice, None
        if qtype == Question.Type.MULTIPLE:
            options = self.choices[question.code]
            picked: list[Choice] = []
            for code in dict.fromkeys(values):  # keeps order, drops repeats
                choice = options.get(code)
                if choice is None:
                    return None, _("This is not one of the choices offered.")
                picked.append(choice)
            exclusive = [c for c in picked if c.exclusive]
            if exclusive and len(picked) > 1:
                return None, _("“%(label)s” cannot be combined with other answers.") % {
                    "label": exclusive[0].label
                }
            return sorted(picked, key=lambda c: c.order), None
        if len(values) > 1:
            return None, _("Give one answer only.")
        text = values[0]
        character = forbidden_character(text)
        if character is not None:
            return None, forbidden_message(character)
        if qtype == Question.Type.TEXT:
            # Browsers send a textarea's line breaks as CRLF; count and keep them as one.
            text = strip_bidi_controls(text.replace("\r\n", "\n")).strip()
            if len(text) > question.text_limit:
                return None, _(
                    "Keep your answer to %(limit)d characters or fewer (it has %(length)d)."
                ) % {"limit": question.text_limit, "length": len(text)}
            return (text or None), None
        # Number. NFKC turns full-width digits from Japanese keyboards into ASCII.
        text = unicodedata.normalize("NFKC", text).strip().replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None, _("Enter a number, for example 3.")
        if not number.is_finite():
            return None, _("Enter a number, for example 3.")
        if number.is_zero():
            number = Decimal(0)  # "-0", "0e-5", "0e999": zero, stored and shown as 0
        # Compared by its exponent, not its value: arithmetic on 1e999999999999999999
        # overflows the decimal context.
        if number.adjusted() >= NUMBER_DIGITS:
            return None, _("Enter a number, for example 3.")
        if number != number.quantize(_NUMBER_STEP):
            return None, _("Enter a number with at most %(places)d decimal places.") % {
                "places": NUMBER_PLACES
            }
        if question.min_value is not None and number < question.min_value:
            return None, _("Enter a number of at least %(min)s.") % {
                "min": _plain(question.min_value)
            }
        if question.max_value is not None and number > question.max_value:
            return None, _("Enter a number of at most %(max)s.") % {
                "max": _plain(question.max_value)
            }
        return number, None

    def bits(self, clean: Mapping[str, CleanValue]) -> int:
        """The chosen choices of ``clean`` as an integer with one bit per choice."""
        bits = 0
        for value in clean.values():
            for choice in _as_choice_list(value):
                bits |= 1 << self.bit_of[choice.pk]
        return bits

    def clean_from_rows(self, answers: Iterable[Answer]) -> CleanAnswers:
        """Stored answer rows back into clean answers (to resume a draft)."""
        clean: CleanAnswers = {}
        for answer in answers:
            question = self.by_code.get(answer.question.code)
            if question is None:
                continue
            if question.type == Question.Type.MULTIPLE:
                picked = clean.setdefault(question.code, [])
                assert isinstance(picked, list)
                picked.append(answer.choice)  # type: ignore[arg-type]
            elif answer.choice_id:
                clean[question.code] = answer.choice  # type: ignore[assignment]
            elif answer.text_value is not None:
                clean[question.code] = answer.text_value
            elif answer.number_value is not None:
                clean[question.code] = answer.number_value.normalize()
        for value in clean.values():
            if isinstance(value, list):
                value.sort(key=lambda c: c.order)
        return clean

    def to_raw(self, clean: Mapping[str, CleanValue]) -> dict[str, str | list[str]]:
        """Clean answers as codes and strings, the shape a form or an API client sends."""
        raw: dict[str, str | list[str]] = {}
        for code, value in clean.items():
            if isinstance(value, list):
                raw[code] = [c.code for c in value]
            elif isinstance(value, Choice):
                raw[code] = value.code
            elif isinstance(value, Decimal):
                raw[code] = format(value.normalize(), "f")
            else:
                raw[code] = value
        return raw


_FROZEN_FORMS: dict[tuple[int, object], InstrumentForm] = {}
_FROZEN_FORMS_MAX = 64


def frozen_form(instrument_id: int, published_at: object) -> InstrumentForm | None:
    """The kept form of a published instrument, if this process has loaded it (the key
    holds the publication time, so a stale entry is never found)."""
    return _FROZEN_FORMS.get((instrument_id, published_at))


def _plain(number: Decimal) -> str:
    """20.00 as "20", 2.50 as "2.5": a bound as a participant would write it."""
    return format(number.normalize(), "f")


def _as_choice_list(value: CleanValue | None) -> list[Choice]:
    if isinstance(value, Choice):
        return [value]
    if isinstance(value, list):
        return value
    return []


def _as_strings(raw: Any) -> list[str] | None:
    """Raw input as a list of strings; ``None`` when it cannot be one (a dict, a nested list)."""
    if raw is None:
        return []
    if isinstance(raw, bool | bytes | bytearray):
        return None
    if isinstance(raw, str | int | float | Decimal):
        return [str(raw)]
    if isinstance(raw, Sequence):
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in raw):
            return None
        return [str(v) for v in raw]
    return None


# An answer row's values, in this order: what ``answer_values`` gives and ``Answer`` stores.
ANSWER_COLUMNS = ("response_id", "question_id", "choice_id", "text_value", "number_value")
AnswerValues = tuple[int, int, int | None, str | None, Decimal | None]


def answer_values(
    response_id: int, form: InstrumentForm, clean: CleanAnswers
) -> list[AnswerValues]:
    """The values of the ``Answer`` rows that store ``clean`` for a response
    (``ANSWER_COLUMNS``)."""
    rows: list[AnswerValues] = []
    for code, value in clean.items():
        question_id = form.by_code[code].pk
        if isinstance(value, list):
            rows.extend((response_id, question_id, c.pk, None, None) for c in value)
        elif isinstance(value, Choice):
            rows.append((response_id, question_id, value.pk, None, None))
        elif isinstance(value, Decimal):
            rows.append((response_id, question_id, None, None, value))
        else:
            rows.append((response_id, question_id, None, value, None))
    return rows


def answer_rows(response_id: int, form: InstrumentForm, clean: CleanAnswers) -> list[Answer]:
    """The ``Answer`` rows that store ``clean`` for a response."""
    return [
        Answer(**dict(zip(ANSWER_COLUMNS, values, strict=True)))
        for values in answer_values(response_id, form, clean)
    ]
