"""The exported responses, read in keyset chunks as columns.

Memory stays flat whatever the number of responses: one chunk (``CHUNK`` responses) at a
time. Per chunk, one query reads the responses' own columns and ``choice_bits`` (every
chosen choice as a bit, ``InstrumentForm.bit_of``: what scoring counts), and one query
reads the text and number answers of those responses. The choices are decoded from the
bits with numpy, a column at a time, never a Python loop over responses and choices; and
so is whether each question was shown (its condition met) or left unanswered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import QuerySet
from django.utils import timezone

from ..answers import InstrumentForm
from ..models import Answer, Instrument, Question, Response, Site
from .layout import CHOICE_TYPES, NO_ANSWER, NOT_SHOWN, Kind, Layout, QuestionInfo, build

CHUNK = 2000
VALUE_TYPES = (Question.Type.TEXT, Question.Type.NUMBER)


@dataclass
class Block:
    """``size`` responses: the fixed columns as lists, each question variable as a numpy
    array (choices: value or missing code; dummies: 0/1 or missing code) or, for text and
    numbers, a list of values with a missing-code array beside it (0: answered)."""

    size: int
    fixed: dict[str, list[Any]]
    columns: dict[str, Any]
    missing: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Question:
    """How one layout question is found in one instrument version's bits."""

    info: QuestionInfo
    pk: int
    bits: dict[int, int]  # layout choice value -> bit
    mask: int
    condition: tuple[str, int] | None  # (source question code, mask of its choices)


@dataclass
class _Decoder:
    version: int
    questions: dict[str, _Question]


def _decoder(instrument: Instrument, layout: Layout) -> _Decoder:
    form = InstrumentForm.load(instrument)
    questions: dict[str, _Question] = {}
    for question in form.questions:
        info = next((q for q in layout.questions if q.code == question.code), None)
        if info is None:
            continue
        bits: dict[int, int] = {}
        for choice in question.choices.all():
            merged = info.choice(choice.code)
            if merged is not None:
                bits[merged.value] = form.bit_of[choice.pk]
        condition = None
        if question.condition_question_id and question.condition_question is not None:
            mask = sum(1 << form.bit_of[c.pk] for c in question.condition_choices.all())
            condition = (question.condition_question.code, mask)
        mask = sum(1 << b for b in bits.values())
        questions[question.code] = _Question(info, question.pk, bits, mask, condition)
    return _Decoder(instrument.version, questions)


def _shown(decoder: _Decoder, code: str, bits: np.ndarray, memo: dict[str, np.ndarray]) -> Any:
    """Per response of ``bits``, whether question ``code`` was shown in this version."""
    if code in memo:
        return memo[code]
    question = decoder.questions.get(code)
    if question is None:
        result = np.zeros(len(bits), dtype=bool)  # not in this version
    elif question.condition is None:
        result = np.ones(len(bits), dtype=bool)
    else:
        source, mask = question.condition
        result = _shown(decoder, source, bits, memo) & ((bits & np.int64(mask)) != 0)
    memo[code] = result
    return result


class Reader:
    """Reads ``queryset`` (already scoped and filtered) in chunks, for ``layout``."""

    rows_written = 0  # set by a writer as it goes: the audit record's row count

    def __init__(self, queryset: QuerySet[Response], *, language: str) -> None:
        self.queryset = queryset.order_by()
        # Looked up once: ``timezone.localtime`` per value was half the reading time.
        self.zone = timezone.get_default_timezone()
        instrument_ids = sorted(set(self.queryset.values_list("instrument_id", flat=True)))
        self.layout = build(instrument_ids, language=language)
        instruments = Instrument.objects.filter(pk__in=instrument_ids)
        self.decoders = {i.pk: _decoder(i, self.layout) for i in instruments}
        self.sites = {
            s.pk: (s.study.code, s.code)
            for s in Site.objects.filter(
                pk__in=self.queryset.values("site_id").distinct()
            ).select_related("study")
        }
        self.value_questions = {
            q.pk: (code, q.info.type)
            for d in self.decoders.values()
            for code, q in d.questions.items()
            if q.info.type in VALUE_TYPES
        }

    def blocks(self, chunk: int = CHUNK) -> Iterator[Block]:
        last = 0
        columns = (
            "pk",
            "site_id",
            "participant__reference",
            "instrument_id",
            "status",
            "source",
            "language",
            "started_at",
            "submitted_at",
            "choice_bits",
        )
        while True:
            rows = list(
                self.queryset.filter(pk__gt=last).order_by("pk").values_list(*columns)[:chunk]
            )
            if not rows:
                return
            last = rows[-1][0]
            yield self._block(rows)
            if len(rows) < chunk:
                return

    def _block(self, rows: list[tuple[Any, ...]]) -> Block:
        size = len(rows)
        ids, site_ids, refs, instrument_ids, statuses, sources, languages, started, submitted, _ = (
            list(c) for c in zip(*rows, strict=True)
        )
        bits = np.fromiter((r[9] for r in rows), dtype=np.int64, count=size)
        instruments = np.asarray(instrument_ids, dtype=np.int64)
        fixed: dict[str, list[Any]] = {
            "response_id": ids,
            "study": [self.sites[s][0] for s in site_ids],
            "site": [self.sites[s][1] for s in site_ids],
            "participant": refs,
            "instrument_version": [self.decoders[i].version for i in instrument_ids],
            "status": statuses,
            "source": sources,
            "language": languages,
            "started_at": [_local(t, self.zone) for t in started],
            "submitted_at": [_local(t, self.zone) for t in submitted],
        }
        block = Block(size=size, fixed=fixed, columns={})
        values = self._values(ids)
        position = {response_id: i for i, response_id in enumerate(ids)}
        for info in self.layout.questions:
            variables = self.layout.by_question[info.code]
            if info.type in VALUE_TYPES:
                state = np.full(size, NOT_SHOWN, dtype=np.int8)
                column: list[Any] = [None] * size
                block.columns[variables[0].name] = column
                block.missing[variables[0].name] = state
            elif info.type in CHOICE_TYPES:
                dtype = np.int8 if len(info.choices) < 100 else np.int16
                block.columns[variables[0].name] = np.full(size, NOT_SHOWN, dtype=dtype)
            else:
                for variable in variables:
                    block.columns[variable.name] = np.full(size, NOT_SHOWN, dtype=np.int8)
        for instrument_id, decoder in self.decoders.items():
            rows_of = instruments == instrument_id
            if not rows_of.any():
                continue
            self._decode(block, decoder, bits, rows_of)
        for response_id, code, value in values:
            name = self.layout.by_question[code][0].name
            block.columns[name][position[response_id]] = value
            block.missing[name][position[response_id]] = 0
        return block

    def _decode(
        self, block: Block, decoder: _Decoder, bits: np.ndarray, rows_of: np.ndarray
    ) -> None:
        memo: dict[str, np.ndarray] = {}
        for info in self.layout.questions:
            variables = self.layout.by_question[info.code]
            shown = _shown(decoder, info.code, bits, memo) & rows_of
            question = decoder.questions.get(info.code)
            if info.type in VALUE_TYPES:
                # Answered is set from the answer rows; until then a shown question is
                # unanswered.
                block.missing[variables[0].name][shown] = NO_ANSWER
                continue
            assert question is not None or not shown.any()
            mask = question.mask if question else 0
            answered = (bits & np.int64(mask)) != 0
            blank = shown & ~answered
            if info.type in CHOICE_TYPES:
                column = block.columns[variables[0].name]
                column[blank] = NO_ANSWER
                for value, bit in (question.bits if question else {}).items():
                    column[shown & (((bits >> bit) & 1) == 1)] = value
            else:
                for variable in variables:
                    assert variable.choice is not None
                    column = block.columns[variable.name]
                    column[blank] = NO_ANSWER
                    own = question.bits.get(variable.choice.value) if question else None
                    chosen = (bits >> own) & 1 if own is not None else np.zeros_like(bits)
                    answered_rows = shown & answered
                    column[answered_rows] = chosen[answered_rows]

    def _values(self, ids: list[int]) -> list[tuple[int, str, str | Decimal]]:
        if not self.value_questions:
            return []
        found: list[tuple[int, str, str | Decimal]] = []
        answers = Answer.objects.filter(
            response_id__in=ids, question_id__in=list(self.value_questions)
        ).values_list("response_id", "question_id", "text_value", "number_value")
        for response_id, question_id, text, number in answers:
            code, qtype = self.value_questions[question_id]
            if qtype == Question.Type.NUMBER:
                if number is not None:
                    found.append((response_id, code, number.normalize()))
            elif text is not None:
                found.append((response_id, code, text))
        return found


def _local(value: Any, zone: Any) -> Any:
    """A time in the project's time zone, naive (what the formats' date cells take)."""
    return value.astimezone(zone).replace(tzinfo=None) if value else None


__all__ = ["Block", "Kind", "Reader"]
