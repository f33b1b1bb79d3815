"""Responses as CSV: one row per response, codes and labels side by side.

Columns: the response's facts (``layout.FIXED``), then per question its code: the chosen
choice's code (several joined with ``|``, in the choices' order), or the text or number;
and for choice questions ``<code>__label``, the chosen choices' labels in the export's
language. A question not shown and one left unanswered are both empty (the ``.sav`` and
``.dta`` exports tell them apart). Every cell goes through ``surveys/csvfiles.py``, which
neutralises text a spreadsheet would read as a formula.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .. import csvfiles
from ..csvfiles import Cell
from ..models import Question
from .reading import Block, Reader

SEPARATOR = "|"


def header(reader: Reader) -> list[Cell]:
    layout = reader.layout
    cells: list[Cell] = [v.name for v in layout.variables if v.question is None]
    for info in layout.questions:
        cells.append(info.code)
        if info.choices:
            cells.append(f"{info.code}__label")
    return cells


def _fixed(value: object) -> Cell:
    if isinstance(value, datetime):
        return value.isoformat()
    return value  # type: ignore[return-value]


def block_rows(reader: Reader, block: Block) -> Iterator[list[Cell]]:
    layout, language = reader.layout, reader.layout.language
    fixed = [block.fixed[v.name] for v in layout.variables if v.question is None]
    per_question: list[tuple[str, Any]] = []
    for info in layout.questions:
        variables = layout.by_question[info.code]
        if info.type == Question.Type.MULTIPLE:
            per_question.append(
                ("multiple", [(v.choice, block.columns[v.name]) for v in variables])
            )
        elif info.choices:
            choices = {c.value: c for c in info.choices}
            per_question.append(("single", (choices, block.columns[variables[0].name])))
        else:
            per_question.append(("value", block.columns[variables[0].name]))
    for i in range(block.size):
        row: list[Cell] = [_fixed(column[i]) for column in fixed]
        for kind, data in per_question:
            if kind == "multiple":
                chosen = [choice for choice, column in data if column[i] == 1]
                row.append(SEPARATOR.join(c.code for c in chosen))
                row.append(SEPARATOR.join(c.label(language) for c in chosen))
            elif kind == "single":
                choices, column = data
                choice = choices.get(int(column[i]))
                row.append(choice.code if choice else "")
                row.append(choice.label(language) if choice else "")
            else:
                value = data[i]
                row.append("" if value is None else value)
        yield row


def rows(reader: Reader) -> Iterator[list[Cell]]:
    yield header(reader)
    for block in reader.blocks():
        yield from block_rows(reader, block)


def stream(reader: Reader, *, rows_per_chunk: int = 200) -> Iterator[str]:
    """CSV text in chunks of a few hundred rows, with a byte-order mark (Excel reads it as
    UTF-8). Counts the data rows in ``reader.rows_written``."""
    buffer = io.StringIO()
    writer = csvfiles.Writer(buffer)
    buffer.write("\ufeff")
    reader.rows_written = 0
    for count, row in enumerate(rows(reader)):
        writer.writerow(row)
        reader.rows_written = count
        if (count + 1) % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
