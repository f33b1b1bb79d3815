"""A cross-tab as a CSV or XLSX file: the page's table, one line per choice, then the base.

Both files hold the same cells (``table_lines``). Text is neutralised against formula
injection by ``surveys/csvfiles.py`` in both: a spreadsheet must not evaluate a choice
label or a segment name typed as ``=HYPERLINK(...)`` (and the XLSX writer is told never
to turn text into a formula). Shares and bounds are numbers of percent to one decimal.
"""

from __future__ import annotations

import io
from decimal import Decimal

from django.utils.translation import gettext as _

from surveys.csvfiles import Cell, Writer, neutralise

from .crosstab import Table, percent_value

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table_lines(table: Table) -> list[list[Cell]]:
    level = table.confidence * 100
    level_text = f"{level.normalize():f}"
    header: list[Cell] = [_("code"), _("choice")]
    for column in table.columns:
        header += [
            f"{column.label}: n",
            f"{column.label}: %",
            _("%(column)s: %(level)s %% low") % {"column": column.label, "level": level_text},
            _("%(column)s: %(level)s %% high") % {"column": column.label, "level": level_text},
        ]
    lines: list[list[Cell]] = [header]
    for row in table.rows:
        line: list[Cell] = [row.item.code, row.item.label]
        for column, cell in zip(table.columns, row.cells, strict=True):
            shown = table.chosen(row.item.code, column)
            if table.share_hidden(row.item.code, column):
                # Withheld (small-cell protection): the mark, no share or bounds.
                line += [shown.n if shown.n is not None else shown.mark, None, None, None]
                continue
            line += [
                cell.n,
                percent_value(cell.share),
                percent_value(cell.low),
                percent_value(cell.high),
            ]
        lines.append(line)
    footers = [("_base", _("Answered (base)"), "answered")]
    footers.append(("_unanswered", _("Shown, not answered"), "unanswered"))
    if table.question.conditional:
        footers.append(("_not_shown", _("Not shown"), "not_shown"))
    for code, label, name in footers:
        line = [code, label]
        for column in table.columns:
            shown = table.figure(name, column)
            line += [shown.n if shown.n is not None else shown.mark, None, None, None]
        lines.append(line)
    if table.legend:
        lines.append(["_note", table.legend])
    return lines


def as_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = Writer(out)
    for line in table_lines(table):
        writer.writerow(line)
    # A byte order mark: Excel reads the Japanese labels as UTF-8 only with it.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(table: Table, caption: str) -> bytes:
    import xlsxwriter  # the XLSX writer of the response exports too (surveys/exports/)

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    sheet = book.add_worksheet(table.question.code[:31])
    sheet.write_row(0, 0, [neutralise(caption)])
    for number, line in enumerate(table_lines(table), start=2):
        sheet.write_row(number, 0, [_xlsx_cell(value) for value in line])
    book.close()
    return out.getvalue()


def _xlsx_cell(value: Cell) -> str | int | float | None:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        return neutralise(value)
    return value
