"""Contact details at rest: encrypted with Fernet under ``HYOKA_CONTACT_KEYS``.

The keys come from the environment (config/settings.py), never from the database, so a
copy of the database alone reveals no address. ``HYOKA_CONTACT_KEYS`` is a comma-separated
list: the **first** key encrypts, **every** key decrypts (``MultiFernet``). To rotate, put
a new key first and keep the old ones after it, restart, run ``manage.py
reencrypt_contacts`` (every value is encrypted again under the first key, and the LINE
index recomputed), then drop the old keys.

A LINE user id is also kept as a **blind index**: an HMAC-SHA256 of the id under a key
derived from a contact key, so that a webhook that receives only the id finds its
participant with one indexed lookup, without decrypting every row. The index reveals
whether two rows hold the same id, nothing more. Until the re-encryption has run, rows
indexed under an older key are still found (``line_user_indexes`` gives the index under
every key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = [
    "InvalidToken",
    "decrypt",
    "encrypt",
    "is_current",
    "line_user_index",
    "line_user_indexes",
]

# Domain separation: the index key is never the encryption key itself.
_INDEX_LABEL = b"hyoka contact: LINE user id index v1"


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, tuple[Fernet, ...]]:
    each = tuple(Fernet(key.encode("ascii")) for key in keys)
    return MultiFernet(list(each)), each


def _keys() -> tuple[str, ...]:
    return tuple(settings.HYOKA_CONTACT_KEYS)


def encrypt(value: str) -> str:
    """``value`` encrypted under the first key (a Fernet token, ASCII); "" stays ""."""
    if not value:
        return ""
    multi, _each = _fernets(_keys())
    return multi.encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The plain value of ``token`` under any of the keys; raises ``InvalidToken`` if none
    opens it (a key was dropped too early, or the column was written by hand)."""
    if not token:
        return ""
    multi, _each = _fernets(_keys())
    return multi.decrypt(token.encode("ascii")).decode("utf-8")


def is_current(token: str) -> bool:
    """Whether ``token`` is encrypted under the first key (nothing to re-encrypt)."""
    if not token:
        return True
    _multi, each = _fernets(_keys())
    try:
        each[0].decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


@lru_cache(maxsize=16)
def _index_key(key: str) -> bytes:
    raw = base64.urlsafe_b64decode(key.encode("ascii"))
    return hmac.new(raw, _INDEX_LABEL, hashlib.sha256).digest()


def _index(key: str, line_user_id: str) -> str:
    return hmac.new(_index_key(key), line_user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def line_user_index(line_user_id: str) -> str:
    """The blind index of a LINE user id under the first key (what is stored); "" for
    none."""
    return _index(_keys()[0], line_user_id) if line_user_id else ""


def line_user_indexes(line_user_id: str) -> list[str]:
    """Its index under every key (what a lookup asks for, so rotation loses nobody)."""
    return [_index(key, line_user_id) for key in _keys()] if line_user_id else []
