"""Responses as an Excel workbook: a data sheet and a codebook sheet.

Written by XlsxWriter in ``constant_memory`` mode: each row goes to a temporary file as
it is written, so memory stays flat whatever the number of responses. Every cell is
written with its type (``write_string``, ``write_number``, ``write_datetime``), never
guessed from its text: a text beginning with ``=`` is stored as text, which Excel shows
and never evaluates (and the workbook's options turn off the guessing for good).

The data sheet: the response's facts, then per question: for a single choice its code
and ``<code>__label`` (the label in the export's language); for a multiple choice one 0/1
column per choice (``<question>__<choice>``); the text or the number. Missing answers
are empty cells; the codebook says what each column holds.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..errors import RuleViolation
from . import codebook
from .layout import Kind
from .reading import Reader

MAX_ROWS = 1_048_576  # Excel's limit, the header included


class TooManyRowsForExcel(RuleViolation):
    code = "export_too_many_rows"
    default_message = gettext_lazy(
        "Too many responses for one Excel sheet: export CSV, .sav or .dta."
    )


def _header(reader: Reader) -> list[str]:
    cells: list[str] = []
    for variable in reader.layout.variables:
        cells.append(variable.name)
        if variable.kind == Kind.CHOICE:
            cells.append(f"{variable.name}__label")
    return cells


def write(reader: Reader, path: Path) -> int:
    """Writes the workbook to ``path``; returns the number of data rows."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "remove_timezone": True,
        },
    )
    try:
        return _write(workbook, reader)
    finally:
        workbook.close()


def _write(workbook: Any, reader: Reader) -> int:
    layout, language = reader.layout, reader.layout.language
    bold = workbook.add_format({"bold": True})
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    data = workbook.add_worksheet(_("data"))
    book = workbook.add_worksheet(_("codebook"))
    for column, title in enumerate(codebook.header()):
        book.write_string(0, column, title, bold)
    for r, row in enumerate(codebook.rows(layout), start=1):
        for column, value in enumerate(row):
            if isinstance(value, int):
                book.write_number(r, column, value)
            elif value:
                book.write_string(r, column, str(value))
    for column, title in enumerate(_header(reader)):
        data.write_string(0, column, title, bold)
    data.freeze_panes(1, 0)
    r = 0
    for block in reader.blocks():
        if r + block.size >= MAX_ROWS:
            raise TooManyRowsForExcel(
                _("Too many responses for one Excel sheet: export CSV, .sav or .dta.")
            )
        columns: list[tuple[str, Any, Any]] = []
        for variable in layout.variables:
            if variable.question is None:
                columns.append((variable.kind, block.fixed[variable.name], None))
            elif variable.kind == Kind.CHOICE:
                assert variable.question is not None
                choices = {c.value: c for c in variable.question.choices}
                columns.append((Kind.CHOICE, block.columns[variable.name], choices))
            else:
                columns.append((variable.kind, block.columns[variable.name], None))
        for i in range(block.size):
            r += 1
            c = 0
            for kind, values, choices in columns:
                value = values[i]
                if kind == Kind.CHOICE:
                    choice = choices.get(int(value))
                    if choice is not None:
                        data.write_string(r, c, choice.code)
                        data.write_string(r, c + 1, choice.label(language))
                    c += 2
                    continue
                if value is None:
                    pass
                elif kind == Kind.DUMMY:
                    if value >= 0:
                        data.write_number(r, c, int(value))
                elif kind in (Kind.ID, Kind.NUMBER):
                    data.write_number(r, c, float(value) if isinstance(value, Decimal) else value)
                elif kind == Kind.TIME:
                    data.write_datetime(r, c, value, when)
                elif value != "":
                    data.write_string(r, c, str(value))
                c += 1
        reader.rows_written = r
    return r
