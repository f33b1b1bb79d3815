"""What one printed letter says: a plain value, checked when it is made.

The letters renderer knows nothing of the database: the fieldwork app maps a participant,
their postal address and their study to a ``Letter`` and hands a sequence of them to
``render_letters``. Everything that would make a broken page (no address, a line too wide
for the envelope window, a link a phone cannot open) is refused here, with a ``ValueError``
that says what is wrong, before anything is rendered.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

LANGUAGES = ("ja", "en")

# What fits in the envelope window (see ``layout``): the name on one line at 13 pt and up
# to five address lines at 10.5 pt, each at most 21 em wide (a full-width character is
# 1 em, any other 0.6 em, more than IPAex Gothic's Latin letters and digits take on
# average; the window's safe area is 80 mm, 21 em at 10.5 pt is 77.8 mm). A longer line
# would wrap or be cut by the window, so it is refused instead; the tests print lines at
# these limits and check they stay inside the window.
MAX_ADDRESS_LINES = 5
MAX_ADDRESS_EM = 21.0
MAX_NAME_EM = 15.0  # 13 pt: 15 em and "　様" (2 em) are 78 mm, inside the 80 mm
MAX_SENDER_LINES = 6
MAX_LINK_LENGTH = 300

# A LINE link code as printed (``fieldwork.line.codes``: 10 characters of its alphabet, a
# hyphen in the middle) and the official account's LINE ID (``@123abcde``). Stated here
# rather than imported: the renderer stays free of the database (a test checks the two
# alphabets are the same).
LINE_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
LINE_CODE = re.compile(f"[{LINE_CODE_ALPHABET}]{{5}}-[{LINE_CODE_ALPHABET}]{{5}}")
LINE_ACCOUNT = re.compile(r"@[0-9A-Za-z._-]{1,40}")


def text_width_em(text: str) -> float:
    """The width of ``text`` in em: East Asian wide and full-width characters count 1,
    everything else 0.6 (above the average of proportional Latin letters and digits)."""
    tenths = sum(10 if unicodedata.east_asian_width(c) in "WF" else 6 for c in text)
    return tenths / 10  # counted in integers: 35 half-width characters are exactly 21.0


def _clean(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be text, not {type(text).__name__}")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError(f"{what} contains a control character (a line break or a tab)")
    return text.strip()


@dataclass(frozen=True)
class Letter:
    """One participant's letter.

    ``address_lines`` are printed as given, one per line, under the postal code if the
    first line holds it (e.g. ``("〒100-0001", "東京都千代田区千代田1-1")``);
    ``sender_lines`` are the municipality's block (office, address, telephone).
    ``dated`` is the date printed on the letter (if omitted, the day it is rendered, in
    the project's time zone: Japan time).
    ``line_code`` (``ABCDE-FGHJK``) and ``line_account`` (``@123abcde``), both or neither:
    the participant's LINE link code and the official account to send it to, printed in a
    box under the link; without them the letter says nothing of LINE.
    """

    reference: str
    addressee_name: str
    address_lines: tuple[str, ...]
    sender_lines: tuple[str, ...]
    purpose: str
    deadline: date
    link: str
    language: str = "ja"
    dated: date | None = None
    line_code: str | None = None
    line_account: str | None = None

    def __post_init__(self) -> None:
        reference = _clean(self.reference, "the reference")
        if not reference:
            raise ValueError("a letter needs the participant's reference")
        if self.language not in LANGUAGES:
            raise ValueError(
                f"letter {reference}: the language must be 'ja' or 'en', not {self.language!r}"
            )
        name = _clean(self.addressee_name, f"letter {reference}: the addressee's name")
        if not name:
            raise ValueError(f"letter {reference}: the addressee's name is missing")
        if text_width_em(name) > MAX_NAME_EM:
            raise ValueError(
                f"letter {reference}: the addressee's name is too long for the envelope "
                f"window (at most {MAX_NAME_EM:g} full-width characters)"
            )
        if isinstance(self.address_lines, str):
            raise ValueError(f"letter {reference}: the address must be a sequence of lines")
        lines = tuple(
            _clean(line, f"letter {reference}: address line {n}")
            for n, line in enumerate(self.address_lines or (), start=1)
        )
        lines = tuple(line for line in lines if line)
        if not lines:
            raise ValueError(f"letter {reference}: the postal address is missing")
        if len(lines) > MAX_ADDRESS_LINES:
            raise ValueError(
                f"letter {reference}: the address has {len(lines)} lines; the envelope "
                f"window shows at most {MAX_ADDRESS_LINES}"
            )
        for n, line in enumerate(lines, start=1):
            if text_width_em(line) > MAX_ADDRESS_EM:
                raise ValueError(
                    f"letter {reference}: address line {n} is too long for the envelope "
                    f"window (at most {MAX_ADDRESS_EM:g} full-width or "
                    f"{int(MAX_ADDRESS_EM / 0.6)} half-width characters); split it"
                )
        if isinstance(self.sender_lines, str):
            raise ValueError(f"letter {reference}: the sender must be a sequence of lines")
        sender = tuple(
            line
            for line in (_clean(s, f"letter {reference}: sender") for s in self.sender_lines)
            if line
        )
        if not sender:
            raise ValueError(f"letter {reference}: the sender (the municipality) is missing")
        if len(sender) > MAX_SENDER_LINES:
            raise ValueError(
                f"letter {reference}: the sender block has {len(sender)} lines, "
                f"at most {MAX_SENDER_LINES}"
            )
        if not isinstance(self.purpose, str) or not self.purpose.strip():
            raise ValueError(f"letter {reference}: the study's purpose is missing")
        if not isinstance(self.deadline, date):
            raise ValueError(f"letter {reference}: the deadline must be a date")
        if self.dated is not None and not isinstance(self.dated, date):
            raise ValueError(f"letter {reference}: the letter's date must be a date")
        check_link(self.link, reference)
        if (self.line_code is None) != (self.line_account is None):
            raise ValueError(
                f"letter {reference}: a LINE link code needs the official account's LINE ID, "
                "and the account a code (both or neither)"
            )
        if self.line_code is not None and (
            not isinstance(self.line_code, str) or not LINE_CODE.fullmatch(self.line_code)
        ):
            raise ValueError(
                f"letter {reference}: the LINE link code must be 10 characters as printed, "
                f"such as ABCDE-FGHJK, not {self.line_code!r}"
            )
        if self.line_account is not None and (
            not isinstance(self.line_account, str) or not LINE_ACCOUNT.fullmatch(self.line_account)
        ):
            raise ValueError(
                f"letter {reference}: the official account must be a LINE ID such as "
                f"@123abcde, not {self.line_account!r}"
            )
        # Normalised values replace what was given (frozen: through object.__setattr__).
        object.__setattr__(self, "reference", reference)
        object.__setattr__(self, "addressee_name", name)
        object.__setattr__(self, "address_lines", lines)
        object.__setattr__(self, "sender_lines", sender)
        object.__setattr__(self, "purpose", self.purpose.strip())


def check_link(link: object, reference: str) -> None:
    """Refuse a link a reader could not open from paper: only ``http(s)://host/...``,
    printable ASCII (what is typed out is what the QR code holds), of a typable length."""
    if not isinstance(link, str) or not link:
        raise ValueError(f"letter {reference}: the link is missing")
    if not link.isascii() or any(c.isspace() or not c.isprintable() for c in link):
        raise ValueError(
            f"letter {reference}: the link must be plain ASCII without spaces: {link!r}"
        )
    parts = urlsplit(link)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"letter {reference}: the link must be an http(s) address with a host, not {link!r}"
        )
    if len(link) > MAX_LINK_LENGTH:
        raise ValueError(
            f"letter {reference}: the link is {len(link)} characters long, "
            f"at most {MAX_LINK_LENGTH} can be typed from paper"
        )
