"""The variables of a response export, defined once for every format.

Questions are the union over the instrument versions of the exported responses, matched
by their stable codes (the newest version's order and texts first); a question's choices
likewise. Per question:

- single choice and four-point scale: one variable holding the choice's **value**, its
  position in the question (1 = first choice), with the choices' labels as value labels
  (CSV and XLSX: the choice code and, beside it, ``<code>__label``);
- multiple choice: one 0/1 variable per choice, ``<question>__<choice>`` (CSV keeps one
  column of codes joined by ``|`` and one of labels, as it always had);
- free text: a string; number: a number.

Two reasons a value is missing are told apart where the format allows (``.sav``: user-
defined missing values; ``.dta``: extended missing values): the question was **not shown**
(its condition was not met, or the response's version did not have it) and the question
was shown but **not answered**. CSV and XLSX leave both cells empty.

Names and labels follow the strictest of the formats, so one name works everywhere:
Stata's variable names (at most 32 characters, ASCII letters, digits and ``_``, starting
with a letter), SPSS's labels in bytes (a variable label at most 255 bytes of UTF-8, a
value label at most 120 bytes: 85 and 40 Japanese characters) and Stata's variable
labels (at most 80 characters). Longer labels are cut at a character boundary with ``…``
and the codebook says so; the codebook sheet of the XLSX export always has them whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Prefetch
from django.utils.translation import gettext as _

from ..models import Choice, Question, _pick

# Missing-value codes of the choice variables in .sav (user-defined missing values;
# choice values are 1…n and dummies 0/1, so no answer can take them) and the extended
# missing values of every numeric variable in .dta.
NOT_SHOWN = -1
NO_ANSWER = -9
STATA_NOT_SHOWN = "a"
STATA_NO_ANSWER = "b"

SPSS_VARIABLE_LABEL_BYTES = 255
SPSS_VALUE_LABEL_BYTES = 120
STATA_VARIABLE_LABEL_CHARS = 80
NAME_MAX = 32
ELLIPSIS = "…"

CHOICE_TYPES = (Question.Type.SINGLE, Question.Type.SCALE4)


@dataclass(frozen=True)
class ChoiceInfo:
    code: str
    value: int  # 1-based position: the numeric code in .sav and .dta
    label_ja: str
    label_en: str
    score: int | None
    tags: tuple[str, ...]
    exclusive: bool

    def label(self, language: str) -> str:
        return _pick(self, "label", language)


@dataclass(frozen=True)
class QuestionInfo:
    code: str
    type: str
    required: bool
    text_ja: str
    text_en: str
    condition: str  # "channels = anytime | night", or ""
    choices: tuple[ChoiceInfo, ...]

    def text(self, language: str) -> str:
        return _pick(self, "text", language)

    def choice(self, code: str) -> ChoiceInfo | None:
        return next((c for c in self.choices if c.code == code), None)


class Kind:
    ID = "id"  # integers from the project (ids, versions)
    STRING = "string"  # fixed text columns (codes, reference, status…)
    TIME = "time"
    CHOICE = "choice"  # a single choice's value
    DUMMY = "dummy"  # a multiple choice's 0/1 per choice
    TEXT = "text"
    NUMBER = "number"


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str
    question: QuestionInfo | None = None
    choice: ChoiceInfo | None = None
    fixed_label: str = ""

    def label(self, language: str) -> str:
        """The variable label, whole (the writers cut it to their format's limit)."""
        if self.question is None:
            return self.fixed_label
        text = self.question.text(language)
        if self.choice is not None:
            return f"{self.choice.label(language)}: {text}"
        return text

    @property
    def numeric(self) -> bool:
        return self.kind in (Kind.ID, Kind.CHOICE, Kind.DUMMY, Kind.NUMBER)


FIXED = [
    ("response_id", Kind.ID),
    ("study", Kind.STRING),
    ("site", Kind.STRING),
    ("participant", Kind.STRING),
    ("instrument_version", Kind.ID),
    ("status", Kind.STRING),
    ("source", Kind.STRING),
    ("language", Kind.STRING),
    ("started_at", Kind.TIME),
    ("submitted_at", Kind.TIME),
]


def _fixed_labels() -> dict[str, str]:
    return {
        "response_id": _("response id"),
        "study": _("study code"),
        "site": _("site code"),
        "participant": _("participant reference"),
        "instrument_version": _("questionnaire version"),
        "status": _("status"),
        "source": _("source"),
        "language": _("language"),
        "started_at": _("started"),
        "submitted_at": _("submitted"),
    }


_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


def safe_name(raw: str, taken: set[str]) -> str:
    """``raw`` as a variable name every format takes, unique among ``taken``."""
    name = _NOT_NAME.sub("_", raw)
    if not name or not name[0].isalpha():
        name = "v_" + name
    name = name[:NAME_MAX]
    candidate, n = name, 2
    while candidate.lower() in taken:
        suffix = f"_{n}"
        candidate, n = name[: NAME_MAX - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def cut_bytes(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` bytes of UTF-8, cut at a character, ``…`` marking a cut."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return text.encode()[:room].decode("utf-8", "ignore") + ELLIPSIS


def cut_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


@dataclass
class Layout:
    """The questions and variables of an export, and the instruments they come from."""

    questions: list[QuestionInfo]
    variables: list[Variable]
    language: str
    by_question: dict[str, list[Variable]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]


def _condition(question: Question) -> str:
    if not question.condition_question_id:
        return ""
    source = question.condition_question
    codes = " | ".join(c.code for c in question.condition_choices.all())
    return f"{source.code if source else '?'} = {codes}"


def build(instrument_ids: Iterable[int], *, language: str) -> Layout:
    """The layout of an export of responses to ``instrument_ids`` (newest version first)."""
    questions = (
        Question.objects.filter(instrument_id__in=list(instrument_ids))
        .select_related("condition_question")
        .prefetch_related(
            Prefetch("choices", queryset=Choice.objects.order_by("order")), "condition_choices"
        )
        .order_by("-instrument__version", "instrument_id", "order")
    )
    merged: dict[str, QuestionInfo] = {}
    for question in questions:
        known = merged.get(question.code)
        choices = list(known.choices) if known else []
        codes = {c.code for c in choices}
        for choice in question.choices.all():
            if choice.code not in codes:
                codes.add(choice.code)
                choices.append(
                    ChoiceInfo(
                        code=choice.code,
                        value=len(choices) + 1,
                        label_ja=choice.label_ja,
                        label_en=choice.label_en,
                        score=choice.score,
                        tags=tuple(choice.tags or ()),
                        exclusive=choice.exclusive,
                    )
                )
        if known is None:
            merged[question.code] = QuestionInfo(
                code=question.code,
                type=question.type,
                required=question.required,
                text_ja=question.text_ja,
                text_en=question.text_en,
                condition=_condition(question),
                choices=tuple(choices),
            )
        else:
            merged[question.code] = QuestionInfo(
                **{**known.__dict__, "choices": tuple(choices)}  # type: ignore[arg-type]
            )
    taken: set[str] = set()
    labels = _fixed_labels()
    variables = [Variable(safe_name(n, taken), k, fixed_label=labels[n]) for n, k in FIXED]
    layout = Layout(questions=list(merged.values()), variables=variables, language=language)
    for info in layout.questions:
        own: list[Variable] = []
        if info.type == Question.Type.MULTIPLE:
            for option in info.choices:
                name = safe_name(f"{info.code}__{option.code}", taken)
                own.append(Variable(name, Kind.DUMMY, info, option))
        elif info.type in CHOICE_TYPES:
            own.append(Variable(safe_name(info.code, taken), Kind.CHOICE, info))
        elif info.type == Question.Type.NUMBER:
            own.append(Variable(safe_name(info.code, taken), Kind.NUMBER, info))
        else:
            own.append(Variable(safe_name(info.code, taken), Kind.TEXT, info))
        layout.by_question[info.code] = own
        variables.extend(own)
    return layout
