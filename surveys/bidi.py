"""Unicode's explicit direction controls in text that people type or import.

U+202A–U+202E (embeddings and overrides), U+2066–U+2069 (isolates), U+200E/U+200F (marks)
and U+061C (the Arabic letter mark) are invisible format characters (category Cf) that
reorder the text around them: a reference written "ITA-\u202e1000" shows as another
one, and an override left open reverses whatever follows it on the line. Hyoka's text is
Japanese and English, which never needs them, so they are removed where text comes in
(free-text answers, references) and what reaches a page is isolated there (``<bdi>``,
``unicode-bidi: isolate``). Kept apart from the C0/C1 control-character rule on purpose:
these are a different class, removed rather than refused (a participant cannot see, so
cannot correct, what they pasted).
"""

from __future__ import annotations

import re

BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_bidi_controls(text: str) -> str:
    """``text`` without explicit direction controls."""
    return BIDI_CONTROLS.sub("", text)
