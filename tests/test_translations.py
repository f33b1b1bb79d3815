"""The Japanese catalogue is complete and compiled: every message translated, none fuzzy or
obsolete, and the ``.mo`` Django loads says what the ``.po`` says.

A missing translation shows a manager English in the middle of a Japanese page, and a
stale ``.mo`` hides a corrected one, so both fail here rather than on a ward office's
screen. ``make messages`` refreshes and compiles the catalogue.
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.utils import translation

LC_MESSAGES = Path(__file__).resolve().parent.parent / "locale" / "ja" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False
    line: int = 0

    @property
    def key(self) -> str:
        """The key of this message in a compiled catalogue (context EOT message)."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"


KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(".*")$')


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file as makemessages writes it (header included)."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] | None = None

    def finish() -> None:
        nonlocal entry, target
        if target is not None or entry.flags or entry.obsolete:
            entries.append(entry)
        entry, target = Entry(), None

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#~"):
            entry.obsolete = True
            line = line[2:].strip()
            if line.startswith("#") or not line:
                continue
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        elif line.startswith("#") or not line:
            if not line or (target is not None and target[0] == "msgstr"):
                finish()
            continue
        if target is None:
            entry.line = number
        match = KEYWORD.match(line)
        if match:
            name, index, literal = match.groups()
            target = (name, int(index or 0))
            value = ast.literal_eval(literal)
            if name == "msgstr":
                entry.msgstr[target[1]] = value
            else:
                setattr(entry, name, value)
        elif line.startswith('"') and target is not None:
            value = ast.literal_eval(line)
            if target[0] == "msgstr":
                entry.msgstr[target[1]] += value
            else:
                setattr(entry, target[0], getattr(entry, target[0]) + value)
        else:
            raise ValueError(f"{PO.name}:{number}: cannot read {raw!r}")
    finish()
    return entries


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    return parse_po(PO.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def messages(entries: list[Entry]) -> list[Entry]:
    """Every message but the header."""
    return [e for e in entries if e.msgid and not e.obsolete]


def test_the_parser_reads_the_whole_catalogue(messages: list[Entry]) -> None:
    text = PO.read_text(encoding="utf-8")
    header = 1
    assert len(messages) == len(re.findall(r"^msgid ", text, flags=re.M)) - header
    assert len(messages) > 500


def test_every_message_is_translated(messages: list[Entry]) -> None:
    untranslated = [f"line {e.line}: {e.msgid!r}" for e in messages if not all(e.msgstr.values())]
    assert not untranslated, "\n".join(untranslated)


def test_no_translation_is_fuzzy(messages: list[Entry]) -> None:
    fuzzy = [f"line {e.line}: {e.msgid!r}" for e in messages if "fuzzy" in e.flags]
    assert not fuzzy, "\n".join(fuzzy)


def test_there_are_no_obsolete_entries(entries: list[Entry]) -> None:
    assert not [e.msgid for e in entries if e.obsolete]


def test_the_mo_is_not_older_than_the_po() -> None:
    # A fresh clone writes both files within moments of each other, in any order: allow
    # the clock a little slack. The content test below catches a stale .mo regardless.
    assert MO.stat().st_mtime >= PO.stat().st_mtime - 2, "run `make messages`"


def test_the_mo_holds_exactly_the_po_translations(messages: list[Entry]) -> None:
    with MO.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    expected: dict[object, str] = {}
    for e in messages:
        if e.msgid_plural is None:
            expected[e.key] = e.msgstr[0]
        else:
            for index, text in e.msgstr.items():
                expected[(e.key, index)] = text
    compiled = {k: v for k, v in catalog.items() if k != ""}
    stale = sorted(str(k) for k in expected.keys() ^ compiled.keys())
    stale += sorted(str(k) for k in expected.keys() & compiled.keys() if expected[k] != compiled[k])
    assert not stale, "run `make messages`; differs: " + ", ".join(stale[:10])


@pytest.mark.parametrize(
    ("english", "japanese"),
    [
        ("Please answer this question.", "この質問にお答えください。"),
        ("Response rate", "回収率"),
        ("inconclusive", "判定不能"),
        ("not met", "未達成"),
        ("no target", "目標なし"),
    ],
)
def test_gettext_translates_known_strings(english: str, japanese: str) -> None:
    with translation.override("ja"):
        assert translation.gettext(english) == japanese


def test_a_context_and_a_format_translate_together() -> None:
    with translation.override("ja"):
        assert translation.pgettext("report", "Response rate") == "回収率"
        text = translation.gettext("met with %(level)s %% confidence (one-sided)")
        assert text % {"level": "97.5"} == "片側97.5%信頼度で達成"
