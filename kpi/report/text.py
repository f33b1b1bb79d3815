"""How the report writes numbers, dates and verdicts, in the active language.

Plain functions over the snapshot's plain data (dicts from ``kpi.snapshot``), mirroring
``kpi.reporting`` (which works on ``KPIResult`` rows): a share is published in whole
percent rounded half up from the exact integers, a ratio to one decimal, a mean to two.
Every function returns text; call them inside ``translation.override``.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from .. import statistics as st

TOKYO = ZoneInfo("Asia/Tokyo")
NBSP = "\u00a0"  # keeps "65 %" on one line
DASH = "–"

Result = dict[str, Any]


# --- numbers ------------------------------------------------------------------------------


def pct(value: Fraction | Decimal | int | float, places: int = 0) -> str:
    """A proportion as a percentage, rounded half up: ``pct(Fraction(229, 352)) == "65 %"``."""
    return st.percent(value, places).replace(" ", NBSP)


def pct_number(value: Fraction | Decimal | int | float, places: int = 1) -> str:
    """The number part only (for ranges written "98.4–100.0 %")."""
    return pct(value, places).removesuffix(NBSP + "%")


def decimal(value: Fraction | Decimal | int | float, places: int) -> str:
    return f"{st.round_half_up(value, places):f}"


def integer(n: int) -> str:
    return f"{n:,}"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def headline(r: Result) -> str:
    """The value as published: a share in whole %, a ratio to one decimal, a mean to two."""
    if r["value"] is None:
        return DASH
    if r["kind"] == "share":
        return pct(Fraction(r["numerator"], r["denominator"]))
    if r["kind"] == "ratio":
        return decimal(Fraction(r["numerator"], r["denominator"]), 1)
    return decimal(r["value"], 2)


def precise(r: Result) -> str:
    """One more digit than published, from the integers where the value is a fraction."""
    if r["value"] is None:
        return ""
    if r["kind"] == "share":
        return pct(Fraction(r["numerator"], r["denominator"]), 1)
    if r["kind"] == "ratio":
        return decimal(Fraction(r["numerator"], r["denominator"]), 2)
    return decimal(r["value"], 3)


def interval(r: Result) -> str:
    """The confidence interval, "98.4–100.0 %" for a share, "2.43–4.01" for a ratio."""
    low, high = r["ci_low"], r["ci_high"]
    if not (_finite(low) and _finite(high)):
        return DASH
    if r["kind"] == "share":
        return f"{pct_number(low)}{DASH}{pct_number(high)}{NBSP}%"
    return f"{decimal(low, 2)}{DASH}{decimal(high, 2)}"


def level_number(r: Result) -> str:
    """The KPI's confidence level in percent, "95" (or "97.5")."""
    return st.confidence_percent(r["confidence"])


def level(r: Result) -> str:
    """The KPI's confidence level as a percentage, "95 %"."""
    return f"{level_number(r)}{NBSP}%"


def counts(r: Result) -> str:
    """Numerator over base, "227 / 229" (a mean: its number of answers, "n = 229")."""
    if r["kind"] == "mean":
        return f"n = {integer(r['denominator'])}"
    return f"{integer(r['numerator'])} / {integer(r['denominator'])}"


# --- targets and verdicts -----------------------------------------------------------------


def target(r: Result) -> str:
    """The target in words: "at least 70 %" (the font has no ≥, and words read better)."""
    if not r["comparator"] or r["threshold"] in (None, ""):
        return ""
    threshold = Decimal(r["threshold"])
    value = f"{threshold.normalize():f}" + (f"{NBSP}%" if r["kind"] == "share" else "")
    phrases = {
        ">=": _("at least %(value)s"),
        ">": _("more than %(value)s"),
        "<=": _("at most %(value)s"),
        "<": _("less than %(value)s"),
    }
    return phrases[r["comparator"]] % {"value": value}


#: Verdict keys, for CSS classes and counting: met_confident, met, not_met, inconclusive.
def verdict_key(r: Result) -> str:
    verdict = r["verdict"]
    if not verdict:
        return "none"
    if verdict == st.Verdict.MET:
        return "met_confident" if r["met_with_confidence"] else "met"
    return str(verdict)


#: A mark beside each verdict word, so the table reads in black and white as in colour.
MARKS = {"met_confident": "◎", "met": "○", "not_met": "×", "inconclusive": "△", "none": ""}


def verdict_text(r: Result) -> str:
    """As ``kpi.reporting.verdict_text``: met, met with 95 % confidence, not met, inconclusive."""
    key = verdict_key(r)
    if key == "none":
        return _("no target")
    if key == "inconclusive":
        return _("inconclusive")
    if key == "met_confident":
        # A no-break space keeps "95 %" together when the verdict wraps.
        worded = _("met with %(level)s %% confidence") % {"level": level_number(r)}
        return worded.replace(" %", NBSP + "%")
    if key == "met":
        return _("met")
    return _("not met")


def nonresponse(r: Result) -> str:
    if r["nonresponse_low"] is None or r["nonresponse_high"] is None:
        return ""
    return f"{pct_number(r['nonresponse_low'])}{DASH}{pct_number(r['nonresponse_high'])}{NBSP}%"


def tipping(r: Result) -> str:
    """What it would take for the non-respondents to flip the verdict, in words."""
    direction, count = r["tipping_direction"], r["tipping_count"]
    if not direction or r["nonresponse_low"] is None:
        return ""
    missing = r["invited"] - r["respondents"]
    if count is None:
        if direction == "no":
            return _("holds even if all %(n)s non-respondents had answered no") % {
                "n": integer(missing)
            }
        return _("stays unmet even if all %(n)s non-respondents had answered yes") % {
            "n": integer(missing)
        }
    if direction == "no":
        return _("flips if %(k)s of the %(n)s non-respondents had answered no") % {
            "k": integer(count),
            "n": integer(missing),
        }
    return _("flips if %(k)s of the %(n)s non-respondents had answered yes") % {
        "k": integer(count),
        "n": integer(missing),
    }


def empty_value(r: Result, *, over_invited: bool = False) -> str:
    """Why a result has no value: nobody invited, nobody answered, nobody in the base."""
    if over_invited:
        return _("no participants") if r["invited"] == 0 else _("no respondents")
    if r["respondents"] == 0:
        return _("no respondents")
    return _("nobody in the base")


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
