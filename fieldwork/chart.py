"""The cumulative response rate as a line chart in SVG, laid out here and drawn by
``templates/admin/fieldwork/studyfieldwork/_rate_chart.html`` (so every label is escaped),
as the report's charts are (``kpi/evaluations/report/charts.py``): no JavaScript, no
plotting library. Coordinates are CSS pixels of a chart 960 wide, scaled to its box.

Each line has its own colour (Okabe–Ito, told apart with colour blindness) and its own
dash pattern (told apart in black and white); the whole study's line is the thickest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.utils.formats import date_format
from django.utils.translation import gettext

from kpi.evaluations.report.charts import text_width
from kpi.scoring.wording import pct

WIDTH = 960.0
PLOT_HEIGHT = 300.0
LEFT = 52.0  # room for "100%"
RIGHT = 20.0
TOP = 14.0
AXIS = 30.0  # room for the dates under the plot
FONT = 13.0
LEGEND_LINE = 22.0
SAMPLE = 28.0  # the legend's line sample
MAX_TICKS = 8

COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a5c00")
DASHES = ("", "7 4", "2 3", "9 3 2 3")
TOTAL_COLOUR = "#1a1a1a"
TARGET_COLOUR = "#b3261e"


@dataclass(frozen=True)
class Line:
    label: str
    code: str  # the site's code; "" for the total
    points: str  # "x,y x,y …"
    colour: str
    dash: str
    width: float
    last_x: float
    last_y: float
    last_rate: str


@dataclass(frozen=True)
class LegendEntry:
    x: float
    y: float
    label: str
    colour: str
    dash: str
    width: float

    @property
    def sample_end(self) -> float:
        return self.x + SAMPLE

    @property
    def text_x(self) -> float:
        return self.x + SAMPLE + 6.0

    @property
    def text_y(self) -> float:
        return self.y + FONT * 0.35


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    label_x: float  # where the label is written
    label_y: float


@dataclass(frozen=True)
class RateChart:
    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    lines: list[Line]  # the sites' lines, then the total's
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    target_y: float | None
    target_label: str
    legend: list[LegendEntry]
    title: str
    description: str

    @property
    def tick_end(self) -> float:
        return self.bottom + 5.0

    @property
    def target_label_x(self) -> float:
        return self.left + 6.0

    @property
    def target_label_y(self) -> float:
        return (self.target_y or 0.0) - 6.0

    @property
    def site_lines(self) -> list[Line]:
        return [line for line in self.lines if line.code]


def _y(rate: Fraction) -> float:
    return TOP + PLOT_HEIGHT * (1 - float(rate))


def date_ticks(days: list[dt.date]) -> list[tuple[int, str]]:
    """At most ``MAX_TICKS`` ticks at a regular step that a reader counts in: every 1, 2,
    7 or 14 days from the first; else the first of every 1, 2, 3, 6 or 12 months; else of
    every few years. Labelled month/day; on an axis over more than one year, the first
    tick and each first tick of a new year carry the year."""
    if not days:
        return []
    plans: list[list[int]] = [
        list(range(0, len(days), step)) for step in (1, 2, 7, 14) if len(days) <= step * MAX_TICKS
    ]
    for months in (1, 2, 3, 6, 12):
        plans.append([i for i, d in enumerate(days) if d.day == 1 and (d.month - 1) % months == 0])
    for years in (2, 5, 10, 20, 50):
        plans.append(
            [i for i, d in enumerate(days) if (d.month, d.day) == (1, 1) and d.year % years == 0]
        )
    chosen = next((p for p in plans if 0 < len(p) <= MAX_TICKS), [0])
    years = days[0].year != days[-1].year
    ticks = []
    shown_year = None
    for i in chosen:
        day = days[i]
        with_year = years and day.year != shown_year
        shown_year = day.year
        ticks.append((i, date_format(day, "Y/n/j" if with_year else "n/j")))
    return ticks


def rate_chart(
    *,
    days: list[dt.date],
    series: list[tuple[str, str, list[Fraction | None]]],
    total: tuple[str, list[Fraction | None]] | None,
    target: Decimal | None,
    target_label: str,
    title: str,
    note: str = "",
) -> RateChart | None:
    """Lines of ``series`` (label, site code, a rate per day, ``None`` where the site has
    nobody invited) and of ``total`` (``None``: one site, whose line is the total), over
    ``days``; a reference line at ``target`` (a
    percentage) if given. ``None`` when there is no day to draw."""
    if not days:
        return None
    plot_width = WIDTH - LEFT - RIGHT
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return LEFT + plot_width * i / span

    lines: list[Line] = []
    entries = [
        (label, code, rates, COLOURS[n % len(COLOURS)], DASHES[n % len(DASHES)], 2.0)
        for n, (label, code, rates) in enumerate(series)
    ]
    if total is not None:
        entries.append((total[0], "", total[1], TOTAL_COLOUR, "", 3.5))
    described = []
    for label, code, rates, colour, dash, width in entries:
        known = [(i, r) for i, r in enumerate(rates) if r is not None]
        if not known:
            described.append(gettext("%(line)s: nobody invited") % {"line": label})
            continue
        if len(known) == 1:  # a single day: a short level stroke, so that it shows
            i, r = known[0]
            coordinates = [(x(i), _y(r)), (x(i) + 6.0, _y(r))]
        else:
            coordinates = [(x(i), _y(r)) for i, r in known]
        last_rate = pct(known[-1][1], 1)
        lines.append(
            Line(
                label=label,
                code=code,
                points=" ".join(f"{px:.1f},{py:.1f}" for px, py in coordinates),
                colour=colour,
                dash=dash,
                width=width,
                last_x=coordinates[-1][0],
                last_y=coordinates[-1][1],
                last_rate=last_rate,
            )
        )
        described.append(f"{label}: {last_rate}")

    date_y = TOP + PLOT_HEIGHT + 20.0
    x_ticks = [Tick(x(i), label, x(i), date_y) for i, label in date_ticks(days)]
    y_ticks = [
        Tick(_y(Fraction(k, 4)), f"{25 * k}%", LEFT - 6.0, _y(Fraction(k, 4)) + FONT * 0.35)
        for k in range(5)
    ]
    target_y = None
    if target is not None and 0 <= target <= 100:
        target_y = _y(Fraction(target) / 100)

    # The legend under the dates, wrapped to the chart's width.
    legend: list[LegendEntry] = []
    lx, ly = LEFT, TOP + PLOT_HEIGHT + AXIS + LEGEND_LINE / 2
    for line in lines:
        needed = SAMPLE + 6.0 + text_width(line.label, FONT) + 22.0
        if lx + needed > WIDTH and lx > LEFT:
            lx, ly = LEFT, ly + LEGEND_LINE
        legend.append(LegendEntry(lx, ly, line.label, line.colour, line.dash, line.width))
        lx += needed
    height = ly + LEGEND_LINE / 2 + 4.0

    first, last = (
        date_format(days[0], "SHORT_DATE_FORMAT"),
        date_format(days[-1], "SHORT_DATE_FORMAT"),
    )
    description = gettext(
        "Cumulative response rate from %(first)s to %(last)s, on the last day: %(lines)s."
    ) % {"first": first, "last": last, "lines": "; ".join(described)}
    if note:
        description += " " + note
    if target_y is not None:
        description += " " + gettext("Target: %(target)s.") % {"target": target_label}
    return RateChart(
        width=WIDTH,
        height=height,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=TOP + PLOT_HEIGHT,
        lines=lines,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        target_y=target_y,
        target_label=target_label,
        legend=legend,
        title=title,
        description=description,
    )
