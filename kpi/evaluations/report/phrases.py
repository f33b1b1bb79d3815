"""Japanese line breaking for the report: lines break between phrases, never inside one.

WeasyPrint 70 breaks Japanese between any two characters (it has no ``word-break:
keep-all``, and it breaks no line between two adjacent ``white-space: nowrap`` spans, so
BudouX's usual ``<wbr>`` markup does nothing), and a narrow table cell splits 実施地域 or
"99 %" across lines. Here each phrase BudouX (Google's phrase segmenter) finds is held
together with WORD JOINERs (U+2060, Unicode line-breaking rule LB11: no break on either
side), which Pango honours and which print nothing and extract as nothing. A number keeps
its unit and the numbers around a slash ("227 / 229") stay together, which BudouX alone
does not guarantee (it splits "2021年" as "202" + "1年"); in English text only those
number groups are held together.

Joiners rather than a span per phrase: a span is a box to lay out and a tag in the PDF's
structure tree, which tripled the time to render the reference report and added 60 % to
its size.

``document(html)`` applies this to every text node of the rendered report, so the
templates need no markup of their own and every text, translated or typed by a manager,
is covered. Text is unescaped by the parser and escaped again here: nothing a user typed
is ever emitted unescaped.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from html import escape
from html.parser import HTMLParser

import budoux

# Hiragana, katakana, CJK ideographs, full-width forms: text BudouX should segment.
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
# Separators inside a number expression: spaces (plain, no-break, narrow), "/", ".", ",".
_JOINERS = " \u00a0\u202f/.,:–-"
# A unit or a counter after a number: "%", "人", "年", "月", "日", "件", "回", "歳", "点"...
_UNIT_START = re.compile(r"^[\s\u00a0\u202f]*[%％人年月日件回歳点時分秒倍名ヶ]")
# Latin-script text: keep a number with its unit and "a / b" counts on one line only.
NUMBER_GROUP = re.compile(
    r"\d[\d.,]*(?:[ \u00a0\u202f]*(?:/|–|-)[ \u00a0\u202f]*\d[\d.,]*)*"
    r"(?:[ \u00a0\u202f]?%)?"
)
SKIPPED = {"head", "style", "script", "svg", "title"}
VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


@cache
def _parser() -> budoux.Parser:
    return budoux.load_default_japanese_parser()


def _joins(left: str, right: str) -> bool:
    """Whether a phrase boundary between ``left`` and ``right`` falls inside a number
    expression (digits, a number and its unit, "229 / 352")."""
    if not left or not right:
        return False
    stripped = left.rstrip(_JOINERS)
    ends_in_number = bool(stripped) and stripped[-1].isdigit()
    if not ends_in_number:
        return False
    if right[0].isdigit() or left[-1] in "/.,:–-":
        return True
    return bool(_UNIT_START.match(right)) or right.lstrip(" \u00a0\u202f")[:1] in ("/", "–")


def split(text: str) -> list[str]:
    """``text`` as the pieces no line may break inside: BudouX's phrases, with a number
    kept with its unit and its neighbours in "227 / 229"."""
    if not JAPANESE.search(text):
        return [text]
    pieces: list[str] = []
    for phrase in _parser().parse(text):
        if pieces and _joins(pieces[-1], phrase):
            pieces[-1] += phrase
        else:
            pieces.append(phrase)
    return pieces


WORD_JOINER = "\u2060"


def _hold(piece: str) -> str:
    """``piece`` with a word joiner between each two characters, except before a mark or
    a format character (a combining sound mark, a variation selector, a joiner), which
    must stay next to its base."""
    out = []
    for i, char in enumerate(piece):
        if (
            i
            and unicodedata.category(char)[0] not in "MC"
            and unicodedata.category(piece[i - 1]) not in ("Cf", "Cc")
        ):
            out.append(WORD_JOINER)
        out.append(char)
    return "".join(out)


@lru_cache(maxsize=8192)
def markup(text: str) -> str:
    """``text`` (plain, unescaped) as escaped HTML in which lines break only between
    phrases (Japanese) or outside number groups (any language). Remembered: a report
    repeats its labels, site names and blank runs between tags many times."""
    if JAPANESE.search(text):
        return escape("".join(_hold(piece) for piece in split(text)))
    out = []
    last = 0
    for match in NUMBER_GROUP.finditer(text):
        out.append(text[last : match.start()])
        out.append(_hold(match.group()))
        last = match.end()
    out.append(text[last:])
    return escape("".join(out))


class _Document(HTMLParser):
    """Copies an HTML document, rewriting the text of the body through ``markup``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")
        if tag in SKIPPED or (self.skipping and tag not in VOID):
            self.skipping.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            # Inside <style> the parser hands the raw text (no character references are
            # decoded there); elsewhere it was unescaped and is escaped again.
            raw = self.skipping[-1] in ("style", "script")
            self.out.append(data if raw else escape(data))
        else:
            self.out.append(markup(data))

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")


def document(html: str) -> str:
    """The rendered report with its body text broken only between phrases."""
    parser = _Document()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)
