"""Responses as SPSS ``.sav`` and Stata ``.dta`` files, with pyreadstat.

Variable names, labels and codes come from ``layout.py``. Labels are in the export's
language (Japanese by default), UTF-8 in both formats: ``.sav`` files are written with
UTF-8 as their character encoding, ``.dta`` files as release 118 (Stata 14 and later:
the first release with UTF-8; Stata 13 and earlier cannot read it). Limits, with labels
cut at a character boundary and the codebook saying so: ``.sav`` variable labels 255
bytes and value labels 120 bytes; ``.dta`` variable labels 80 characters (value labels
32,000, strings as long as a free-text answer may be).

Missing values: a choice variable's value is its position (1 = first choice), a
multiple choice's column 0/1; "not shown" and "not answered" are ``-1`` and ``-9`` in
``.sav``, declared as user-defined missing values with their labels, and the extended
missing values ``.a`` and ``.b`` in ``.dta`` (numbers too). Text left unanswered is an
empty string in both.

pyreadstat writes from a pandas DataFrame and cannot append, so the whole table is held
once: each block of responses is appended to compact numpy columns (one byte per choice
variable and response; text as Python strings), never as one Python object per cell;
the DataFrame is made from those columns without a copy. ``bench/export.py`` measures the
memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
from django.utils.translation import gettext as _

from .layout import (
    NO_ANSWER,
    NOT_SHOWN,
    SPSS_VALUE_LABEL_BYTES,
    SPSS_VARIABLE_LABEL_BYTES,
    STATA_NO_ANSWER,
    STATA_NOT_SHOWN,
    STATA_VARIABLE_LABEL_CHARS,
    Kind,
    Variable,
    cut_bytes,
    cut_chars,
)
from .reading import Reader

DTA_VERSION = 14  # pyreadstat's name for release 118


def _collect(reader: Reader) -> tuple[dict[str, Any], int]:
    """Every variable's values over all blocks, as compact arrays (missing as codes)."""
    parts: dict[str, list[Any]] = {v.name: [] for v in reader.layout.variables}
    missing: dict[str, list[Any]] = {}
    rows = 0
    for block in reader.blocks():
        for variable in reader.layout.variables:
            if variable.question is None:
                parts[variable.name].append(block.fixed[variable.name])
            else:
                parts[variable.name].append(block.columns[variable.name])
            if variable.name in block.missing:
                missing.setdefault(variable.name, []).append(block.missing[variable.name])
        rows += block.size
        reader.rows_written = rows
    columns: dict[str, Any] = {}
    for variable in reader.layout.variables:
        chunks = parts.pop(variable.name)
        if variable.kind in (Kind.CHOICE, Kind.DUMMY):
            columns[variable.name] = (
                np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int8)
            )
        elif variable.kind == Kind.NUMBER:
            values = np.array(
                [np.nan if v is None else float(v) for c in chunks for v in c], dtype=np.float64
            )
            codes = np.concatenate(missing.pop(variable.name, [])) if chunks else np.zeros(0)
            columns[variable.name] = (values, codes)
        elif variable.kind == Kind.TEXT:
            columns[variable.name] = [v or "" for c in chunks for v in c]
            missing.pop(variable.name, None)
        elif variable.kind == Kind.TIME:
            columns[variable.name] = pd.Series(
                [v for c in chunks for v in c], dtype="datetime64[ns]"
            )
        elif variable.kind == Kind.ID:
            columns[variable.name] = np.fromiter(
                (v for c in chunks for v in c), dtype=np.int64, count=rows
            )
        else:
            columns[variable.name] = [v or "" for c in chunks for v in c]
    return columns, rows


def _value_labels(variable: Variable, language: str) -> dict[Any, str]:
    if variable.kind == Kind.CHOICE and variable.question is not None:
        return {c.value: c.label(language) for c in variable.question.choices}
    if variable.kind == Kind.DUMMY:
        return {1: _("chosen"), 0: _("not chosen")}
    return {}


def _missing_labels() -> dict[int, tuple[str, str]]:
    return {
        NOT_SHOWN: (STATA_NOT_SHOWN, _("not shown")),
        NO_ANSWER: (STATA_NO_ANSWER, _("not answered")),
    }


def write_sav(reader: Reader, path: Path) -> int:
    columns, rows = _collect(reader)
    language = reader.layout.language
    labels: dict[str, str | None] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    missing_ranges: dict[str, list[Any]] = {}
    measure: dict[str, str] = {}
    frame: dict[str, Any] = {}
    for variable in reader.layout.variables:
        name = variable.name
        labels[name] = cut_bytes(variable.label(language), SPSS_VARIABLE_LABEL_BYTES)
        column = columns.pop(name)
        if variable.kind == Kind.NUMBER:
            column = column[0]  # both missing reasons: system-missing (any value is valid)
            measure[name] = "scale"
        if variable.kind in (Kind.CHOICE, Kind.DUMMY):
            own = _value_labels(variable, language)
            own.update({code: label for code, (_s, label) in _missing_labels().items()})
            value_labels[name] = {v: cut_bytes(t, SPSS_VALUE_LABEL_BYTES) for v, t in own.items()}
            missing_ranges[name] = [NOT_SHOWN, NO_ANSWER]
            scale = variable.question is not None and variable.question.type == "scale4"
            measure[name] = "ordinal" if scale else "nominal"
        frame[name] = column
    pyreadstat.write_sav(
        pd.DataFrame(frame, copy=False),
        str(path),
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_ranges=missing_ranges,
        variable_measure=measure,
    )
    return rows


def _stata_codes(values: np.ndarray) -> np.ndarray:
    """Numeric codes with the missing ones as Stata's extended missing letters."""
    column = values.astype(object)
    column[values == NOT_SHOWN] = STATA_NOT_SHOWN
    column[values == NO_ANSWER] = STATA_NO_ANSWER
    return column


def write_dta(reader: Reader, path: Path) -> int:
    columns, rows = _collect(reader)
    language = reader.layout.language
    labels: dict[str, str | None] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    missing: dict[str, list[str]] = {}
    frame: dict[str, Any] = {}
    extended = {letter: label for letter, label in _missing_labels().values()}
    for variable in reader.layout.variables:
        name = variable.name
        labels[name] = cut_chars(variable.label(language), STATA_VARIABLE_LABEL_CHARS)
        column = columns.pop(name)
        if variable.kind in (Kind.CHOICE, Kind.DUMMY):
            column = _stata_codes(column)
            value_labels[name] = {**_value_labels(variable, language), **extended}
            missing[name] = [STATA_NOT_SHOWN, STATA_NO_ANSWER]
        elif variable.kind == Kind.NUMBER:
            values, codes = column
            column = values.astype(object)
            column[codes == NOT_SHOWN] = STATA_NOT_SHOWN
            column[codes == NO_ANSWER] = STATA_NO_ANSWER
            value_labels[name] = extended
            missing[name] = [STATA_NOT_SHOWN, STATA_NO_ANSWER]
        frame[name] = column
    pyreadstat.write_dta(
        pd.DataFrame(frame, copy=False),
        str(path),
        version=DTA_VERSION,
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_user_values=missing,
    )
    return rows
