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
from typing import Any

from .. import csvfiles
from ..csvfiles import Cell
from ..models import Question
from .layout import Kind
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


def block_rows(reader: Reader, block: Block) -> Iterator[list[Cell]]:
    layout, language = reader.layout, reader.layout.language
    fixed = [block.fixed[v.name] for v in layout.variables if v.question is None]
    # Codes and labels are looked up once per question, not per cell.
    per_question: list[tuple[str, Any, Any]] = []
    for info in layout.questions:
        variables = layout.by_question[info.code]
        if info.type == Question.Type.MULTIPLE:
            columns = [block.columns[v.name] for v in variables]
            texts = [(v.choice.code, v.choice.label(language)) for v in variables if v.choice]
            per_question.append(("multiple", columns, texts))
        elif info.choices:
            labels = {c.value: (c.code, c.label(language)) for c in info.choices}
            per_question.append(("single", block.columns[variables[0].name], labels))
        else:
            per_question.append(("value", block.columns[variables[0].name], None))
    joined: dict[tuple[int, ...], tuple[str, str]] = {}
    times = [i for i, v in enumerate(layout.variables) if v.kind == Kind.TIME]
    empty = ("", "")
    for i in range(block.size):
        row: list[Any] = [column[i] for column in fixed]
        for t in times:
            row[t] = row[t].isoformat() if row[t] is not None else None
        for kind, data, texts in per_question:
            if kind == "multiple":
                key = tuple(int(column[i]) for column in data)
                pair = joined.get(key)
                if pair is None:
                    chosen = [text for text, flag in zip(texts, key, strict=True) if flag == 1]
                    pair = (
                        SEPARATOR.join(code for code, _label in chosen),
                        SEPARATOR.join(label for _code, label in chosen),
                    )
                    joined[key] = pair
                row.extend(pair)
            elif kind == "single":
                row.extend(texts.get(int(data[i]), empty))
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
