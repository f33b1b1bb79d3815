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
TICK_FONT = 8.0  # pt: no text in the PDF is smaller


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


def path_of(lines: list[tuple]) -> str:
    """One SVG path drawing every line (x1, y1, x2, y2): a single element to style and
    draw rather than one per line (each element of an inline SVG costs WeasyPrint a
    cascade and a drawing pass; a path's subpaths each restart the dash pattern, as
    separate lines do)."""
    return "".join(f"M{x1:.2f} {y1:.2f}L{x2:.2f} {y2:.2f}" for x1, y1, x2, y2 in lines)


def tick_paths(ticks: list[Tick], top: float, bottom: float) -> tuple[str, str]:
    """The scale's lines from ``top`` to ``bottom``: the first (0 %) solid, the others
    dashed, as two paths."""
    lines = [(round(t.x, 1), top, round(t.x, 1), bottom) for t in ticks]
    return path_of(lines[:1]), path_of(lines[1:])


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

    @property
    def tick_lines(self) -> tuple[str, str]:
        return tick_paths(self.ticks, 0.0, round(self.axis_y, 1))


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
    ticks = _ticks(bar_x, bar_area)
    return BarChart(
        width=WIDTH,
        height=y + AXIS,
        label_x=label_x,
        bar_x=bar_x,
        bar_area=bar_area,
        bars=bars,
        ticks=ticks,
        axis_y=y,
        tick_y=y + 12.0,
        bar_height=BAR,
        description=description,
    )


def _ticks(x: float, area: float) -> list[Tick]:
    return [Tick(x + area * k / 4, f"{25 * k}%") for k in range(5)]


# --- 100 % stacked bars of an ordered scale, overall and per site ---------------------------
#
# The contract with the small-cell rule (kpi.scoring.disclosure): a bar is drawn from a
# ``SiteCounts``, whose counts are in the scale's order and where ``None`` means "withheld".
# A bar whose base is withheld has no segments, only a sentence; in a bar with some
# withheld counts those are merged into one hatched segment, base − the counts shown wide
# (a reader can subtract the published figures, so drawing it discloses nothing), drawn
# after the shown segments, which keep their exact widths.


@dataclass(frozen=True)
class SiteCounts:
    """One bar (or table row): its label, its base (``None``: withheld) and one count per
    choice in the question's order (``None``: withheld)."""

    label: str
    base: int | None
    counts: list[int | None]

    @property
    def withheld(self) -> int:
        """The merged withheld segment's size: base − the counts shown (0 when none is)."""
        if self.base is None or all(c is not None for c in self.counts):
            return 0
        return self.base - sum(c for c in self.counts if c is not None)


# Sequential blues (ColorBrewer "Blues", darkest first): one hue whose lightness rises
# steadily, so the order reads the same with any colour vision and in greyscale.
FOUR = ("#08519c", "#3182bd", "#6baed6", "#bdd7e7")
WITHHELD_FILL = "#ffffff"
WITHHELD_INK = "#5c6370"
INK = "#1a1a1a"


def ramp(n: int) -> list[str]:
    """``n`` colours from dark to light (the scale's first choice darkest): the four-point
    scales take four ColorBrewer blues; other lengths are interpolated between the same
    ends, so lightness still rises evenly."""
    if n <= 0:
        return []
    if n == 4:
        return list(FOUR)
    if n == 1:
        return [FOUR[0]]
    dark, light = _rgb(FOUR[0]), _rgb(FOUR[-1])
    return [
        "#"
        + "".join(
            f"{round(d + (lo - d) * i / (n - 1)):02x}" for d, lo in zip(dark, light, strict=True)
        )
        for i in range(n)
    ]


def _rgb(colour: str) -> tuple[int, int, int]:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return r, g, b


def _is_dark(colour: str) -> bool:
    r, g, b = _rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 140


def hatch(x: float, y: float, width: float, height: float, step: float = 3.0) -> list[tuple]:
    """Diagonal lines (x1, y1, x2, y2) filling the rectangle, clipped to it (no SVG
    pattern or clip path needed)."""
    lines: list[tuple] = []
    t = x - height
    while t < x + width:
        low = max(0.0, x - t)
        high = min(height, x + width - t)
        if high > low:
            lines.append((t + low, y + height - low, t + high, y + height - high))
        t += step
    return lines


@dataclass
class Segment:
    x: float
    width: float
    fill: str
    text: str  # the share printed inside, or "" when the segment is too narrow
    text_x: float
    ink: str
    hatch: list[tuple]

    @property
    def hatch_path(self) -> str:
        return path_of(self.hatch)


@dataclass
class StackedBar:
    lines: list[tuple[str, float]]  # the label's lines and their baselines
    base: str  # "n = 229", or "" when the base is withheld
    base_y: float
    y: float
    bar_y: float
    segments: list[Segment]
    note: str  # "too few to publish" / "no respondents" in place of the segments
    text_y: float
    total: bool


@dataclass
class LegendItem:
    x: float
    y: float  # top of the swatch
    label: str
    fill: str
    hatch: list[tuple]
    text_x: float
    text_y: float

    @property
    def hatch_path(self) -> str:
        return path_of(self.hatch)


@dataclass
class StackedChart:
    width: float
    height: float
    label_x: float
    bar_x: float
    bar_area: float
    base_x: float
    bars: list[StackedBar]
    legend: list[LegendItem]
    ticks: list[Tick]
    top: float  # where the bars begin (below the legend)
    axis_y: float
    tick_y: float
    bar_height: float
    font: float
    separator_y: float | None  # a rule under the whole-study bar
    description: str

    @property
    def tick_lines(self) -> tuple[str, str]:
        return tick_paths(self.ticks, round(self.top, 1), round(self.axis_y, 1))


SWATCH = 8.0
SHARE_FONT = 8.0


def _legend(labels: list[tuple[str, str, bool]], width: float) -> tuple[list[LegendItem], float]:
    """Swatches and labels in reading order, wrapped onto as many rows as needed."""
    items: list[LegendItem] = []
    x, y = 0.0, 0.0
    row = LINE + 2.0
    for label, fill, hatched in labels:
        room = SWATCH + 3.0 + text_width(label) + 12.0
        if x and x + room > width:
            x, y = 0.0, y + row
        items.append(
            LegendItem(
                x=x,
                y=y + 1.0,
                label=label,
                fill=fill,
                hatch=hatch(x, y + 1.0, SWATCH, SWATCH) if hatched else [],
                text_x=x + SWATCH + 3.0,
                text_y=y + 1.0 + SWATCH - 0.5,
            )
        )
        x += room
    return items, (y + row if labels else 0.0)


def stacked_chart(
    bars: list[SiteCounts],
    choices: list[str],
    *,
    withheld_label: str,
    too_few_label: str,
    empty_label: str,
    total_first: bool = True,
    compact: bool = False,
    description: str = "",
) -> StackedChart:
    """100 % stacked horizontal bars: each ``SiteCounts`` one bar, its segments the
    choices' shares of its base in ``choices`` order (dark to light), the share printed
    inside a segment wide enough for it, the base after the bar. ``total_first``: the
    first bar is the whole study, ruled off from the sites below it."""
    font = TICK_FONT if compact else FONT
    line = font + 2.0
    bar_height = 9.0 if compact else BAR
    row_min = bar_height + (2.0 if compact else 6.0)
    colours = ramp(len(choices))
    base_texts = [f"n = {integer(b.base)}" if b.base is not None else "" for b in bars]
    base_width = max((text_width(t, font) for t in base_texts), default=0.0) + 4.0
    label_width = min(
        0.3 * WIDTH, max((text_width(b.label, font) for b in bars), default=0.0) + 2.0
    )
    label_x = label_width
    bar_x = label_x + GAP
    bar_area = WIDTH - bar_x - GAP - base_width
    base_x = bar_x + bar_area + GAP
    any_withheld = any(b.withheld for b in bars)
    legend, legend_height = _legend(
        [(label, colour, False) for label, colour in zip(choices, colours, strict=True)]
        + ([(withheld_label, WITHHELD_FILL, True)] if any_withheld else []),
        WIDTH,
    )
    top = legend_height + 4.0
    y = top
    out: list[StackedBar] = []
    separator_y = None
    for index, (bar, base_text) in enumerate(zip(bars, base_texts, strict=True)):
        lines = wrap(bar.label, label_width, font, max_lines=1 if compact else 2)
        height = max(row_min, len(lines) * line + (0.0 if compact else 3.0))
        centre = y + height / 2
        first = centre - (len(lines) - 1) * line / 2 + font * 0.35
        bar_y = centre - bar_height / 2
        segments: list[Segment] = []
        note = ""
        if bar.base is None:
            note = too_few_label
        elif bar.base == 0:
            note = empty_label
        else:
            x = bar_x
            parts = [
                (count, colour, False)
                for count, colour in zip(bar.counts, colours, strict=True)
                if count is not None
            ]
            if bar.withheld:
                parts.append((bar.withheld, WITHHELD_FILL, True))
            for count, colour, hatched in parts:
                share = Fraction(count, bar.base)
                width = float(share) * bar_area
                if width <= 0:
                    continue
                label = "" if hatched else pct(share).replace(NBSP, " ")
                if label and text_width(label, SHARE_FONT) + 4.0 > width:
                    label = ""
                segments.append(
                    Segment(
                        x=x,
                        width=width,
                        fill=colour,
                        text=label,
                        text_x=x + width / 2,
                        ink="#ffffff" if _is_dark(colour) else INK,
                        hatch=hatch(x, bar_y, width, bar_height) if hatched else [],
                    )
                )
                x += width
        out.append(
            StackedBar(
                lines=[(text, first + i * line) for i, text in enumerate(lines)],
                base=base_text,
                base_y=centre + font * 0.35,
                y=y,
                bar_y=bar_y,
                segments=segments,
                note=note,
                text_y=centre + SHARE_FONT * 0.35,
                total=total_first and index == 0,
            )
        )
        y += height
        if total_first and index == 0 and len(bars) > 1:
            y += 3.0
            separator_y = y - 1.5
    return StackedChart(
        width=WIDTH,
        height=y + AXIS,
        label_x=label_x,
        bar_x=bar_x,
        bar_area=bar_area,
        base_x=base_x,
        bars=out,
        legend=legend,
        ticks=_ticks(bar_x, bar_area),
        top=top,
        axis_y=y,
        tick_y=y + 12.0,
        bar_height=bar_height,
        font=font,
        separator_y=separator_y,
        description=description,
    )
