"""Responses as CSV, one row per response, generated while it is sent.

Columns: the response's facts, then per question its code (choice codes, several joined
with ``|``, or the text or number) and, for choice questions, ``<code>__label`` with the
choices' labels in the request's language. Questions are the union over the instrument
versions of the exported responses, matched by their stable codes. Rows are read in chunks
(``iterator(chunk_size=...)`` with the answers prefetched per chunk), so memory stays flat
whatever the number of responses.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
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
    numbers: the writer (``surveys/csvfiles.py``) neutralises the text."""
    instrument_ids = sorted(set(queryset.order_by().values_list("instrument_id", flat=True)))
    columns, question_code, choices = _columns(instrument_ids)
    header: list[Cell] = list(FIXED_COLUMNS)
    for column in columns:
        header.append(column.code)
        if column.has_choices:
            header.append(f"{column.code}__label")
    yield header
    answers = Answer.objects.only("response", "question", "choice", "text_value", "number_value")
    responses = (
        queryset.select_related("site__study", "participant", "instrument")
        .prefetch_related(Prefetch("answers", queryset=answers))
        .order_by("pk")
    )
    for response in responses.iterator(chunk_size=CHUNK):
        picked: dict[str, list[Choice]] = {}
        values: dict[str, Cell] = {}
        for answer in response.answers.all():
            code = question_code[answer.question_id]
            if answer.choice_id is not None:
                picked.setdefault(code, []).append(choices[answer.choice_id])
            elif answer.text_value is not None:
                values[code] = answer.text_value
            elif answer.number_value is not None:
                values[code] = answer.number_value
        row: list[Cell] = [
            response.pk,
            response.site.study.code,
            response.site.code,
            response.participant.reference,
            response.instrument.version,
            response.status,
            response.source,
            response.language,
            _time(response.started_at),
            _time(response.submitted_at),
        ]
        for column in columns:
            if column.has_choices:
                chosen = sorted(picked.get(column.code, []), key=lambda c: c.order)
                row.append(SEPARATOR.join(c.code for c in chosen))
                row.append(SEPARATOR.join(_pick(c, "label", language) for c in chosen))
            else:
                row.append(values.get(column.code, ""))
        yield row


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
