"""Row ids as they arrive in addresses and query strings.

An id is a whole number written in ASCII digits within the database's range. Python's
``int()`` reads much more ("٣", " 3", "+3", "1_000") and ``str.isdigit()`` accepts "²",
which ``int()`` then refuses; a number beyond the range overflows SQLite's 64-bit integer
(PostgreSQL's lookups find nothing). Every place that reads an id from a request asks
``as_id``: anything else is an id that matches no row.
"""

from __future__ import annotations

import re

# A bigint (PostgreSQL) or a SQLite integer: the widest primary key the project has.
ID_MAX = 2**63 - 1
# For URL patterns (REST framework's ``lookup_value_regex``); ``as_id`` checks the range.
ID_PATTERN = r"[0-9]{1,19}"
_ID = re.compile(ID_PATTERN)


def as_id(value: object) -> int | None:
    """``value`` as a row id, or ``None`` if it cannot be one."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _ID.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= ID_MAX else None
