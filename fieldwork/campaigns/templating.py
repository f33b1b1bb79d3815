"""The managers' message texts: placeholders in braces, such as ``{自治体名}`` or
``{link}``, filled in for each participant. Only the names below are known; a text with
any other (or with a lone brace) is refused when the campaign is saved, naming it.
``{{`` and ``}}`` stand for a brace itself."""

from __future__ import annotations

import string
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Each value, by its name and its Japanese name.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "municipality": ("municipality", "自治体名"),
    "study": ("study", "調査名"),
    "deadline": ("deadline", "回答期限"),
    "link": ("link", "リンク"),
    "sender": ("sender", "差出人"),
}
NAMES: dict[str, str] = {alias: key for key, names in PLACEHOLDERS.items() for alias in names}

HELP = _(
    "You can use {自治体名} (the municipality), {調査名} (the survey), {回答期限} (the last "
    "day to answer), {リンク} (the person's own questionnaire address) and {差出人} (who "
    "the message is from). Leave empty to use the standard text."
)


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text``, in order; ValidationError for a lone brace or a
    placeholder with a format (``{link!r}``, ``{deadline:%Y}``)."""
    found: list[str] = []
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValidationError(
            _(
                "A brace “{” or “}” has no partner. Placeholders look like {リンク}; "
                "write {{ or }} for a brace itself."
            ),
            code="malformed",
        ) from exc
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if spec or conversion:
            raise ValidationError(
                _("Write the placeholder {%(name)s} without anything after its name."),
                code="malformed",
                params={"name": name},
            )
        found.append(name)
    return found


def check(text: str) -> None:
    """ValidationError naming every unknown placeholder of ``text``."""
    unknown = [name for name in dict.fromkeys(placeholders(text)) if name not in NAMES]
    if unknown:
        raise ValidationError(
            _("Unknown placeholder: %(names)s. %(help)s"),
            code="unknown_placeholder",
            params={"names": ", ".join("{" + name + "}" for name in unknown), "help": HELP},
        )


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its placeholders filled in from ``values`` (keyed by the names of
    ``PLACEHOLDERS``). The text was checked when saved."""
    return text.format_map({alias: values.get(key, "") for alias, key in NAMES.items()})
