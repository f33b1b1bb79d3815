"""One-time LINE link codes: what a letter or an e-mail prints so that a participant who
follows the official account and sends it gets their LINE account linked.

A code is 10 characters of a 32-letter alphabet without 0, O, 1, I or L (``ABCDE-FGHJK``
as printed; typed in any case, with or without the hyphen, in full-width characters too).
Nothing is stored: the code is **derived** under ``HYOKA_LINE_CODE_KEY`` (a key from the
environment, never in the database) from the participant's id and the hash of their
current invitation link:

- 20 bits are a *tag*, an HMAC of (id, link hash) under the key;
- 30 bits are the id, masked with an HMAC of the tag under the key, so that a code does
  not show whose it is and a guesser cannot aim at a participant.

Checking a code unmasks the id, loads that participant and recomputes the tag. A guess is
right with a probability of (participants / 2^30) x 2^-20 = participants x 2^-50, and the
webhook counts each wrong code against the sender's LINE account
(``HYOKA_LINE_CODE_FAILURE_RATE``, ``ratelimit.py``).

The code **expires** when the participant's site closes its questionnaire, and **dies**
with the link it is bound to: replacing a participant's link (or erasing them) voids the
code; withdrawing them refuses it. It is **one-time** in that a code whose participant is
already linked to another LINE account is refused (``linking.py``); after an unfollow it
may link again, which is what a participant who re-adds the account expects.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from django.conf import settings
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from surveys.models import Participant

# 8 digits + 24 letters (A-Z without I and O) = 32: each character carries 5 bits. L stays:
# upper-case only, it looks like nothing else.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
assert len(ALPHABET) == 32 and len(set(ALPHABET)) == 32
LENGTH = 10
ID_BITS = 30
TAG_BITS = 20
assert ID_BITS + TAG_BITS == 5 * LENGTH
MAX_PARTICIPANT_ID = 2**ID_BITS - 1

_TAG_LABEL = b"hyoka-line-code-tag-v1:"
_MASK_LABEL = b"hyoka-line-code-mask-v1:"
# What people type between the two halves or around the code: spaces, hyphens and dashes
# (after NFKC; the katakana long vowel mark is what a Japanese keyboard gives for "-").
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー_.]")


class CodeRefused(Exception):
    """The text is a well-formed code that links nobody (wrong, expired, replaced, used).
    ``message`` stays lazy: the webhook says it in Japanese and in English."""

    def __init__(self, message: Promise) -> None:
        super().__init__(str(message))
        self.message = message


# The reasons, in the participant's words. Every wrong code gets the same answer: a guesser
# learns nothing about which part was wrong.
WRONG = _(
    "This code is not valid. Please check the code on your letter and send it again "
    "(10 characters; 0, O, 1, I and L never appear in it)."
)
EXPIRED = _("This code has expired: the questionnaire it belongs to is closed.")


def _key() -> bytes:
    return settings.HYOKA_LINE_CODE_KEY.encode("utf-8")


def _tag(participant_id: int, token_hash: str) -> int:
    message = _TAG_LABEL + f"{participant_id}:{token_hash}".encode("ascii")
    digest = hmac.new(_key(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - TAG_BITS)


def _mask(tag: int) -> int:
    digest = hmac.new(_key(), _MASK_LABEL + tag.to_bytes(4, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - ID_BITS)


def _encode(value: int) -> str:
    chars = []
    for _i in range(LENGTH):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _decode(code: str) -> int:
    value = 0
    for char in code:
        value = value * 32 + ALPHABET.index(char)
    return value


def code_for(participant: Participant) -> str:
    """The participant's code, as typed (10 characters, no hyphen). The same on every call
    until their link is replaced."""
    if participant.pk > MAX_PARTICIPANT_ID:
        raise ValueError(f"participant id {participant.pk} is too large for a LINE code")
    tag = _tag(participant.pk, participant.token_hash)
    return _encode(((participant.pk ^ _mask(tag)) << TAG_BITS) | tag)


def display(code: str) -> str:
    """The code as printed: ``ABCDE-FGHJK``."""
    half = LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def for_letter(participant: Participant) -> str | None:
    """What a letter or an e-mail prints (``ABCDE-FGHJK``), or ``None`` with LINE off:
    without the channel a code would lead nowhere."""
    if not settings.LINE_ENABLED:
        return None
    return display(code_for(participant))


def normalize(text: str) -> str | None:
    """The code in ``text`` if the whole text is one (full-width, lower case, a hyphen or
    spaces are fine), else ``None``: a message that is not a code is not a wrong code."""
    candidate = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if len(candidate) != LENGTH or any(char not in ALPHABET for char in candidate):
        return None
    return candidate


def check(code: str) -> Participant:
    """The participant ``code`` (normalized) belongs to, if it is theirs, current and not
    expired; else raises ``CodeRefused``. Whether it is already used is ``linking``'s
    question (it needs the contact)."""
    value = _decode(code)
    tag = value & (2**TAG_BITS - 1)
    participant_id = (value >> TAG_BITS) ^ _mask(tag)
    participant = (
        Participant.objects.select_related("site").filter(pk=participant_id).first()
        if participant_id
        else None
    )
    if participant is None or not hmac.compare_digest(
        _tag(participant.pk, participant.token_hash).to_bytes(4, "big"), tag.to_bytes(4, "big")
    ):
        raise CodeRefused(WRONG)
    if participant.status != Participant.Status.ACTIVE:
        raise CodeRefused(WRONG)  # withdrawn: as if there were no such code
    closes_at = participant.site.survey_closes_at
    if closes_at is not None and timezone.now() >= closes_at:
        raise CodeRefused(EXPIRED)
    return participant
