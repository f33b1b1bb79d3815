"""How the report writes dates and lists, in the active language.

Numbers and results are worded by ``kpi.scoring.wording``, the formatter the admin and
the command line use too. Every function returns text; call them inside ``translation.override``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from kpi.scoring.wording import DASH

TOKYO = ZoneInfo("Asia/Tokyo")


# --- dates --------------------------------------------------------------------------------


def parse(value: str | None) -> dt.datetime | dt.date | None:
    if not value:
        return None
    if "T" in value:
        return dt.datetime.fromisoformat(value)
    return dt.date.fromisoformat(value)


def date(value: dt.date | dt.datetime | str | None) -> str:
    if isinstance(value, str):
        value = parse(value)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(TOKYO).date()
    return formats.date_format(value, "DATE_FORMAT")


def tokyo(value: dt.datetime | str | None, *, seconds: bool = True) -> str:
    """A moment in Japan time, "2021年10月29日 18:00:00 JST" / "Oct. 29, 2021 18:00:00 JST"."""
    if isinstance(value, str):
        parsed = parse(value)
        value = parsed if isinstance(parsed, dt.datetime) else None
    if value is None:
        return ""
    local = value.astimezone(TOKYO)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{formats.date_format(local.date(), 'DATE_FORMAT')} {clock} JST"


def period(start: str | None, end: str | None) -> str:
    if not start and not end:
        return ""
    return (
        f"{date(start)} {DASH} {date(end)}" if end else _("from %(date)s") % {"date": date(start)}
    )


def join(items: list[str]) -> str:
    """A list in running text: "A, B, C" / 「A」、「B」."""
    return pgettext("list separator", ", ").join(items)


def quoted(text: str) -> str:
    return pgettext("quotation of a label", '"%(text)s"') % {"text": text}
