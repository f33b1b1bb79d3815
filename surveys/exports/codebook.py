"""The codebook: one row per variable and value, in both languages, shared by the XLSX
export's second sheet (and any format that wants it)."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.translation import gettext as _

from ..models import Question
from .layout import (
    NO_ANSWER,
    NOT_SHOWN,
    SPSS_VALUE_LABEL_BYTES,
    SPSS_VARIABLE_LABEL_BYTES,
    STATA_NO_ANSWER,
    STATA_NOT_SHOWN,
    STATA_VARIABLE_LABEL_CHARS,
    Kind,
    Layout,
    Variable,
)

Row = list[str | int | None]


def header() -> list[str]:
    return [
        _("variable"),
        _("question"),
        _("type"),
        _("required"),
        _("shown only if"),
        _("question text (Japanese)"),
        _("question text (English)"),
        _("value"),
        _("choice code"),
        _("label (Japanese)"),
        _("label (English)"),
        _("score"),
        _("tags"),
        _("notes"),
    ]


def _type(variable: Variable) -> str:
    if variable.question is None:
        return {
            Kind.ID: _("number"),
            Kind.TIME: _("date and time"),
        }.get(variable.kind, _("text"))
    return str(Question.Type(variable.question.type).label)


def _notes(variable: Variable, language: str) -> str:
    """Where a label is cut in .sav or .dta."""
    label = variable.label(language)
    notes = []
    if len(label.encode()) > SPSS_VARIABLE_LABEL_BYTES:
        notes.append(_("variable label cut in .sav (255 bytes)"))
    if len(label) > STATA_VARIABLE_LABEL_CHARS:
        notes.append(_("variable label cut in .dta (80 characters)"))
    if (
        variable.kind == Kind.CHOICE
        and variable.question is not None
        and any(
            len(c.label(language).encode()) > SPSS_VALUE_LABEL_BYTES
            for c in variable.question.choices
        )
    ):
        notes.append(_("some value labels cut in .sav (120 bytes)"))
    return "; ".join(notes)


def rows(layout: Layout) -> Iterator[Row]:
    language = layout.language
    missing = [
        (NOT_SHOWN, STATA_NOT_SHOWN, _("not shown (condition not met, or not in this version)")),
        (NO_ANSWER, STATA_NO_ANSWER, _("shown, not answered")),
    ]
    for variable in layout.variables:
        info = variable.question
        base: Row = [
            variable.name,
            info.code if info else "",
            _type(variable),
            (_("yes") if info.required else _("no")) if info else "",
            info.condition if info else "",
            info.text_ja if info else variable.fixed_label,
            info.text_en if info else "",
        ]
        notes = _notes(variable, language)
        if variable.kind == Kind.DUMMY and variable.choice is not None:
            choice = variable.choice
            tags = ", ".join(choice.tags)
            for value, label in ((1, _("chosen")), (0, _("not chosen"))):
                yield [
                    *base,
                    value,
                    choice.code,
                    f"{choice.label_ja}: {label}",
                    f"{choice.label_en}: {label}",
                    choice.score,
                    tags,
                    notes,
                ]
        elif variable.kind == Kind.CHOICE and info is not None:
            for choice in info.choices:
                yield [
                    *base,
                    choice.value,
                    choice.code,
                    choice.label_ja,
                    choice.label_en,
                    choice.score,
                    ", ".join(choice.tags),
                    notes,
                ]
        else:
            yield [*base, None, "", "", "", None, "", notes]
        if info is not None:
            for code, stata, label in missing:
                note = _(
                    "missing in .sav (user-defined); .%(stata)s in .dta; empty in CSV and XLSX"
                )
                if variable.kind in (Kind.TEXT, Kind.NUMBER):
                    code = None  # type: ignore[assignment]
                    note = _("empty in .sav, CSV and XLSX; .%(stata)s in .dta (numbers)")
                yield [*base, code, "", label, "", None, "", note % {"stata": stata}]
