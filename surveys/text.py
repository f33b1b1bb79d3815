"""The one rule for the characters of text that people type: what Hyoka stores, shows,
prints in a PDF and writes into a CSV file.

Refused: NUL and the other C0 control characters except tab, line feed and carriage
return; DEL; the C1 control characters (U+0080 to U+009F); and lone surrogates. None of
them is typed on purpose: they come from pasting out of other programs, from broken
encoders, or from someone probing. PostgreSQL refuses NUL in text (a server error, before
this rule), the encoders refuse lone surrogates, and the others would be stored as
invisible characters that change how a reference compares or a PDF prints.

Participants' answers are checked by ``surveys/answers.py`` with ``forbidden_character``;
every other text field (names, references, statements, KPI wording) carries
``no_control_characters`` as a model or form field validator.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def forbidden_character(text: str) -> str | None:
    """The first character of ``text`` that the rule refuses, if any."""
    found = _FORBIDDEN.search(text)
    return found.group() if found else None


def forbidden_message(character: str) -> str:
    """What to tell whoever typed it, naming the character by its code (it is invisible)."""
    return _(
        "Remove the invisible control character U+%(code)04X from this text; it cannot be stored."
    ) % {"code": ord(character)}


def no_control_characters(value: object) -> None:
    """A field validator (models, forms, serializers) for the rule."""
    if isinstance(value, str):
        character = forbidden_character(value)
        if character is not None:
            raise ValidationError(forbidden_message(character), code="control_character")
