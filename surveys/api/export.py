"""Responses as CSV, one row per response, generated while it is sent.

Columns: the response's facts, then per question its code (choice codes, several joined
with ``|``, or the text or number) and, for choice questions, ``<code>__label`` with the
choices' labels in the request's language. Questions are the union over the instrument
versions of the exported responses, matched by their stable codes. Rows are read in chunks
(``iterator(chunk_size=...)``: the responses and, beside them, their answers in the same
order), so memory stays flat whatever the number of responses.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from django.db.models import QuerySet
from django.utils import timezone

from .. import csvfiles
from ..csvfiles import Cell
from ..models import Answer, Choice, Question, Response, _pick

SEPARATOR = "|"
CHUNK = 500
FIXED_COLUMNS = [
    "response_id",
    "study",
    "site",
    "participant",
    "instrument_version",
    "status",
    "source",
    "language",
    "started_at",
    "submitted_at",
]


@dataclass(frozen=True)
class Column:
    code: str
    has_choices: bool


def _columns(instrument_ids: list[int]) -> tuple[list[Column], dict[int, str], dict[int, Choice]]:
    """Question columns (newest instrument's order first), question id → code, choices."""
    questions = list(
        Question.objects.filter(instrument_id__in=instrument_ids).order_by(
            "-instrument__version", "order"
        )
    )
    columns: dict[str, Column] = {}
    for question in questions:
        columns.setdefault(question.code, Column(question.code, question.has_choices))
    choices = {
        c.pk: c
        for c in Choice.objects.filter(question__instrument_id__in=instrument_ids).only(
            "pk", "code", "order", "label_ja", "label_en", "question_id"
        )
    }
    return list(columns.values()), {q.pk: q.code for q in questions}, choices


def _time(value: object) -> str:
    return timezone.localtime(value).isoformat() if value else ""  # type: ignore[arg-type]


def rows(queryset: QuerySet[Response], language: str) -> Iterator[list[Cell]]:
    """The header, then one row per response of ``queryset`` (already scoped), with labels
    in ``language`` (given, not read from the active language: the rows are generated
    while the answer is sent, after the view has returned). Text is text and numbers are
    numbers: the writer (``surveys/csvfiles.py``) neutralises the text.

    Two streams of plain tuples, both in response order, merged here: the responses'
    facts, and their answers (``iterator``: server-side cursors on PostgreSQL). Building
    a model instance per answer (seven per response) was most of the time at a million
    responses (bench/admin.py)."""
    instrument_ids = sorted(set(queryset.order_by().values_list("instrument_id", flat=True)))
    columns, question_code, choices = _columns(instrument_ids)
    header: list[Cell] = list(FIXED_COLUMNS)
    for column in columns:
        header.append(column.code)
        if column.has_choices:
            header.append(f"{column.code}__label")
    yield header
    # Per choice, what a cell needs: its order, code and label in ``language``.
    chosen_as = {pk: (c.order, c.code, _pick(c, "label", language)) for pk, c in choices.items()}
    facts = (
        queryset.order_by("pk")
        .values_list(
            "pk",
            "site__study__code",
            "site__code",
            "participant__reference",
            "instrument__version",
            "status",
            "source",
            "language",
            "started_at",
            "submitted_at",
        )
        .iterator(chunk_size=CHUNK)
    )
    answers = groupby(
        Answer.objects.filter(response__in=queryset.order_by().values("pk"))
        .order_by("response_id")
        .values_list("response_id", "question_id", "choice_id", "text_value", "number_value")
        .iterator(chunk_size=CHUNK * 8),
        key=itemgetter(0),
    )
    pending = next(answers, None)
    for pk, study, site, reference, version, status, source, lang, started, submitted in facts:
        while pending is not None and pending[0] < pk:
            pending = next(answers, None)  # answers of no exported response: none expected
        matched = pending is not None and pending[0] == pk
        mine = pending[1] if matched else ()  # type: ignore[index]
        picked: dict[str, list[tuple[int, str, str]]] = {}
        values: dict[str, Cell] = {}
        for _, question_id, choice_id, text_value, number_value in mine:
            code = question_code[question_id]
            if choice_id is not None:
                picked.setdefault(code, []).append(chosen_as[choice_id])
            elif text_value is not None:
                values[code] = text_value
            elif number_value is not None:
                values[code] = number_value
        row: list[Cell] = [
            pk,
            study,
            site,
            reference,
            version,
            status,
            source,
            lang,
            _time(started),
            _time(submitted),
        ]
        for column in columns:
            if column.has_choices:
                chosen = sorted(picked.get(column.code, ()))
                row.append(SEPARATOR.join(c[1] for c in chosen))
                row.append(SEPARATOR.join(c[2] for c in chosen))
            else:
                row.append(values.get(column.code, ""))
        yield row
        if matched:
            pending = next(answers, None)


def stream(
    queryset: QuerySet[Response], *, language: str, rows_per_chunk: int = 200
) -> Iterator[str]:
    """CSV text in chunks of a few hundred rows, with a byte-order mark (Excel reads it as
    UTF-8)."""
    buffer = io.StringIO()
    writer = csvfiles.Writer(buffer)
    buffer.write("\ufeff")
    for count, row in enumerate(rows(queryset, language), start=1):
        writer.writerow(row)
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
