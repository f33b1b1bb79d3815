"""Charts as vector SVG, laid out here and drawn by a template (so every label is escaped).

No JavaScript and no plotting library: a horizontal bar chart is a few rectangles and
texts. Positions are in points (1/72 inch), the unit of the PDF, so the chart prints at
the size it is laid out for. Text widths are estimated from the IPAex Gothic metrics
(full-width characters are 1 em, Latin about 0.6 em), which is enough to size the label
column and wrap long labels.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from kpi.scoring.wording import NBSP, integer, pct

WIDTH = 480.0  # pt: the text block of an A4 page with the report's margins is ~490 pt
FONT = 8.5  # pt
LINE = 10.5  # pt between wrapped label lines
MAX_LABEL = 0.36 * WIDTH
VALUE_WIDTH = 78.0  # room for "1,234 (87 %)" after the longest bar
GAP = 6.0
AXIS = 16.0  # room for the percentage axis under the bars
BAR = 11.0  # bar thickness


def text_width(text: str, size: float = FONT) -> float:
    """Estimated width of ``text`` in points."""
    total = 0.0
    for char in text:
        if unicodedata.east_asian_width(char) in ("W", "F"):
            total += 1.0
        elif char == " ":
            total += 0.3
        else:
            total += 0.6
    return total * size


# A full-width character, a run of other non-space characters, or a run of spaces.
_TOKENS = re.compile(r"[\u2e80-\uffef]|[^\s\u2e80-\uffef]+|\s+")
# Japanese punctuation that must not begin a line (kinsoku): kept with what precedes it.
_NO_LINE_START = "、。，．）」』】〕！？ー・：；"


def wrap(text: str, width: float, size: float = FONT, max_lines: int = 3) -> list[str]:
    """``text`` in lines no wider than ``width``: between words, or between any two
    Japanese characters (never before closing punctuation); the last line ends in "…"
    when the text needs more than ``max_lines``."""
    tokens: list[str] = []
    for token in _TOKENS.findall(text):
        if tokens and token[0] in _NO_LINE_START:
            tokens[-1] += token
        else:
            tokens.append(token)
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = current + token
        if current.strip() and text_width(candidate.rstrip(), size) > width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current = candidate
    if current.strip():
        lines.append(current.rstrip())
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1] + "…"]
    return lines or [""]


@dataclass
class Bar:
    lines: list[tuple[str, float]]  # the label's lines and their baselines
    value: str  # "199 (87 %)"
    y: float  # top of the row
    height: float
    bar_y: float
    bar_width: float
    text_x: float
    text_y: float


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class BarChart:
    width: float
    height: float
    label_x: float  # right edge of the labels (text-anchor end)
    bar_x: float
    bar_area: float
    bars: list[Bar]
    ticks: list[Tick]
    axis_y: float
    tick_y: float
    bar_height: float
    description: str


def bar_chart(rows: list[tuple[str, int]], answered: int, *, description: str = "") -> BarChart:
    """A horizontal bar chart of ``rows`` (label, count): each bar the count's share of
    ``answered``, on a 0–100 % axis, with the count and the rounded share after it."""
    label_width = min(MAX_LABEL, max((text_width(label) for label, _ in rows), default=0.0) + 2.0)
    wrapped = [wrap(label, label_width) for label, _ in rows]
    label_x = label_width
    bar_x = label_x + GAP
    bar_area = WIDTH - bar_x - VALUE_WIDTH
    bars: list[Bar] = []
    y = 0.0
    for (_, count), lines in zip(rows, wrapped, strict=True):
        height = max(BAR + 7.0, len(lines) * LINE + 6.0)
        share = Fraction(count, answered) if answered else Fraction(0)
        width = float(share) * bar_area
        centre = y + height / 2
        first = centre - (len(lines) - 1) * LINE / 2 + FONT * 0.35
        bars.append(
            Bar(
                lines=[(line, first + i * LINE) for i, line in enumerate(lines)],
                value=f"{integer(count)} ({pct(share)})".replace(NBSP, " "),
                y=y,
                height=height,
                bar_y=centre - BAR / 2,
                bar_width=width,
                text_x=bar_x + width + 4.0,
                text_y=centre + FONT * 0.35,
            )
        )
        y += height
    ticks = [Tick(bar_x + bar_area * k / 4, f"{25 * k}%") for k in range(5)]
    return BarChart(
        width=WIDTH,
        height=y + AXIS,
        label_x=label_x,
        bar_x=bar_x,
        bar_area=bar_area,
        bars=bars,
        ticks=ticks,
        axis_y=y,
        tick_y=y + 11.0,
        bar_height=BAR,
        description=description,
    )
