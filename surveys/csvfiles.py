"""Writing CSV files that managers open in a spreadsheet, safely: the one writer for every
CSV the project produces (the response export, the invitation-link files).

A cell that begins with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice
and Google Sheets, and a formula can fetch URLs, start programs (DDE) or exfiltrate the
sheet. Anyone can type text that lands in these files: a participant (free-text answers),
a manager (references, site and study names, choice labels). So, as OWASP recommends
("CSV Injection"), every text cell beginning with one of those characters, a tab or a
carriage return is prefixed with a single quote, which spreadsheets show as text and
do not evaluate. The full-width forms ``＝ ＋ － ＠`` are treated the same: Japanese
Excel turns them into formula characters as it reads the cell, so "＝1+1" is a formula
there.

Numbers the project itself produced (a numeric answer validated as a number, an id, a
version, a count) are written as numbers: ``-3`` stays ``-3`` and sums in the sheet. They
are passed to the writer as ``int`` or ``Decimal``, never as text; only text is
neutralised, so no text can pass as a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")

Cell = str | int | Decimal | None


def neutralise(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: Cell) -> str:
    """What a cell holds: text neutralised, numbers as written by the project (a decimal
    in plain notation, never 1E+5), nothing as an empty cell."""
    if type(value) is str:  # the most common cell first: exports write millions
        return "'" + value if value.startswith(FORMULA_START) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("write a flag as text")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, int):
        return str(value)
    return neutralise(value)


class Writer:
    """``csv.writer`` with every cell passed through ``cell``; CRLF line ends (Excel's)."""

    def __init__(self, out: Any) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[Cell]) -> None:
        self._writer.writerow([cell(value) for value in row])
