"""The report's answer charts: every closed question drawn, each bar's segments the exact
shares of its base, and withheld counts (the small-cell rule) drawn without giving
anything away: one hatched segment of base minus what is shown, or no bar at all."""

from __future__ import annotations

import itertools
import re
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from kpi.evaluations.report import charts
from kpi.evaluations.report.charts import SiteCounts, stacked_chart
from kpi.evaluations.report.context import Snapshot, _share_cells, site_counts
from tests.kpi.evaluations.conftest import REFERENCE_REPORTS

CHOICES = ["Agree", "Somewhat agree", "Somewhat disagree", "Disagree"]
pytestmark = REFERENCE_REPORTS
WORDS = {"withheld_label": "withheld", "too_few_label": "too few", "empty_label": "nobody"}


def chart(*bars: SiteCounts, **kwargs) -> charts.StackedChart:  # type: ignore[no-untyped-def]
    return stacked_chart(list(bars), CHOICES, **WORDS, **kwargs)


def close(a: float, b: float) -> bool:
    return abs(a - b) < 1e-6


# --- the layout -----------------------------------------------------------------------------


def test_each_segment_is_its_count_over_the_base_and_the_bar_is_full():
    drawn = chart(
        SiteCounts("All sites", 229, [172, 57, 0, 0]), SiteCounts("A", 90, [68, 22, 0, 0])
    )
    total, site = drawn.bars
    # Zero counts draw nothing; the others are count / base of the bar's width.
    assert [s.width / drawn.bar_area for s in total.segments] == pytest.approx(
        [172 / 229, 57 / 229]
    )
    assert [s.width / drawn.bar_area for s in site.segments] == pytest.approx([68 / 90, 22 / 90])
    for bar in drawn.bars:
        assert close(bar.segments[0].x, drawn.bar_x)
        for left, right in itertools.pairwise(bar.segments):
            assert close(left.x + left.width, right.x)  # end to end, in scale order
        assert close(sum(s.width for s in bar.segments), drawn.bar_area)
    # Labels: the name before the bar, its base after it, the share inside when it fits.
    assert [line for line, _ in total.lines] == ["All sites"]
    assert total.base == "n = 229" and site.base == "n = 90"
    assert [s.text for s in total.segments] == ["75 %", "25 %"]
    assert total.total and not site.total and drawn.separator_y is not None
    # No withheld count: no hatched segment, no withheld swatch.
    assert not any(s.hatch for b in drawn.bars for s in b.segments)
    assert [item.label for item in drawn.legend] == CHOICES


def test_withheld_counts_are_one_hatched_segment_of_the_base_minus_the_counts_shown():
    bar = SiteCounts("Itabashi", 20, [9, None, 7, None])
    assert bar.withheld == 20 - 9 - 7
    drawn = chart(SiteCounts("All sites", 100, [50, 30, 12, 8]), bar)
    segments = drawn.bars[1].segments
    shown, merged = segments[:-1], segments[-1]
    assert [s.width / drawn.bar_area for s in shown] == pytest.approx([9 / 20, 7 / 20])
    assert merged.width / drawn.bar_area == pytest.approx(4 / 20)
    assert merged.hatch and not merged.text and not any(s.hatch for s in shown)
    assert [s.text for s in shown] == ["45 %", "35 %"]
    assert close(sum(s.width for s in segments), drawn.bar_area)  # still 100 %
    # Every hatch line stays inside the merged segment.
    for x1, y1, x2, y2 in merged.hatch:
        for x, y in ((x1, y1), (x2, y2)):
            assert merged.x - 1e-6 <= x <= merged.x + merged.width + 1e-6
            assert drawn.bars[1].bar_y - 1e-6 <= y <= drawn.bars[1].bar_y + drawn.bar_height + 1e-6
    # The legend gains the withheld swatch, hatched, after the scale's choices.
    assert [item.label for item in drawn.legend] == [*CHOICES, "withheld"]
    assert drawn.legend[-1].hatch
    # The whole study's bar is drawn in full.
    assert len(drawn.bars[0].segments) == 4


def test_withheld_counts_that_add_up_to_the_base_leave_no_empty_segment():
    drawn = chart(SiteCounts("A", 10, [10, None, None, None]))
    assert [s.width / drawn.bar_area for s in drawn.bars[0].segments] == pytest.approx([1.0])


def test_a_withheld_base_draws_no_segment_only_the_reason():
    drawn = chart(
        SiteCounts("All sites", 100, [50, 30, 12, 8]),
        SiteCounts("Fuchu", None, [None, None, None, None]),
        SiteCounts("Chofu", 0, [0, 0, 0, 0]),
    )
    withheld, empty = drawn.bars[1], drawn.bars[2]
    assert withheld.segments == [] and withheld.note == "too few" and withheld.base == ""
    assert empty.segments == [] and empty.note == "nobody" and empty.base == "n = 0"
    assert "withheld" not in [item.label for item in drawn.legend]  # nothing hatched


def test_a_share_too_narrow_for_its_text_is_left_to_the_legend_and_the_axis():
    drawn = chart(SiteCounts("A", 1000, [990, 6, 3, 1]))
    texts = [s.text for s in drawn.bars[0].segments]
    assert texts[0] == "99 %" and texts[1:] == ["", "", ""]


def test_the_colour_ramp_is_one_hue_darkening_steadily_so_greyscale_keeps_the_order():
    def grey(colour: str) -> float:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    for n in (2, 3, 4, 5, 7):
        greys = [grey(c) for c in charts.ramp(n)]
        assert all(b - a > 15 for a, b in itertools.pairwise(greys)), n
        assert greys[-1] - greys[0] > 120, n
    # The withheld segment is white with hatching: not confusable with any shade.
    assert charts.WITHHELD_FILL not in charts.ramp(4)


@translation.override("en")
def test_the_site_table_prints_withheld_for_withheld_counts_and_the_reason_for_a_base():
    row = _share_cells(SiteCounts("Itabashi", 20, [9, None, 7, None]))
    assert row["n"] == "20"
    cells = [c.replace("\u00a0", " ") for c in row["cells"]]
    assert cells == ["9 (45 %)", "withheld", "7 (35 %)", "withheld"]
    hidden = _share_cells(SiteCounts("Fuchu", None, [None] * 4))
    assert hidden["n"] == "" and hidden["note"] == "too few to publish"


def test_the_drawing_escapes_every_label_and_uses_no_type_under_8_pt():
    drawn = chart(
        SiteCounts("All sites", 100, [50, 30, 12, 8]),
        SiteCounts('<img src="x">', 20, [9, None, 7, None]),
        description="Q2 <b>",
    )
    svg = render_to_string("kpi/report/_stacked_chart.html", {"chart": drawn})
    assert "<img" not in svg and "&lt;img src=&quot;x&quot;&gt;" in svg
    assert "<title>Q2 &lt;b&gt;</title>" in svg and 'role="img"' in svg
    assert ">withheld</text>" in svg
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert sizes and min(sizes) >= 8


# --- the report -------------------------------------------------------------------------------

INSTRUMENT = Path(settings.BASE_DIR) / "surveys/reference/tokyo-dx-2021/instrument-v1.toml"


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_every_closed_question_has_its_chart_and_every_site_its_bar(reference_reports, language):
    draft = reference_reports.draft[language]
    evaluation = draft.evaluation
    questions = tomllib.loads(INSTRUMENT.read_text())["questions"]
    # Leave out the draft's diagonal watermark (40 pt), which cuts through lines.
    pages = [
        compact(page.filter(lambda o: o.get("size", 0) < 30).extract_text() or "")
        for page in draft.document.pages
    ]
    sites = {s["code"]: s[f"name_{language}"] for s in evaluation.snapshot["sites"]}
    by_site = evaluation.snapshot["distributions"]["by_site"]
    for number, question in enumerate(questions, start=1):
        if question["type"] not in ("single", "multiple", "scale4"):
            continue
        title = compact(f"Q{number} {question[f'text_{language}']}")
        found = [i for i, page in enumerate(pages) if title in page]
        assert found, title
        # The chart (and the site table) follow the title, on its page or the next.
        near = "".join(pages[found[0] : found[0] + 2])
        for code, name in sites.items():
            n = by_site.get(code, {}).get(question["code"], {}).get("_answered", 0)
            assert compact(name) in near, (question["code"], name)
            assert f"n={n}" in near, (question["code"], name, n)


def test_the_reference_answers_section_and_svg_type(reference_reports):
    html = reference_reports.draft["en"].html
    section = html[html.index('<section class="section answers" id="answers">') :]
    section = section[: section.index("</section>")]
    assert "Answers to each question" in section
    assert section.count("<h3>") == 6  # Q1 to Q6: every question is closed
    assert section.count('class="bar-chart stacked-chart"') == 4  # the four-point items
    assert "add up to more than 100 %" in section  # Q1 is multiple choice
    titles = re.findall(r"<h3>(.*?)</h3>", section)
    assert titles[0].startswith("Q1 Which consultation channels")
    assert not any("(" in t for t in titles)  # "Q1 (channels)": no programme codes
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', section)]
    assert sizes and min(sizes) >= 8


def test_the_whole_study_bar_and_each_site_come_from_the_snapshot(reference_reports):
    evaluation = reference_reports.draft["ja"].evaluation
    snap = Snapshot(evaluation.snapshot)
    question = snap.instrument.questions["reassured"]
    total, sites = site_counts(snap, question)
    distributions = evaluation.snapshot["distributions"]
    assert total.base == 229 == distributions["overall"]["reassured"]["_answered"]
    assert sum(c or 0 for c in total.counts) == 229  # a single answer each
    assert [s.base for s in sites] == [
        distributions["by_site"].get(code, {}).get("reassured", {}).get("_answered", 0)
        for code in ("fuchu", "itabashi", "setagaya")
    ]
    assert all(c is not None for s in [total, *sites] for c in s.counts)  # nothing withheld yet
    assert sum(s.base or 0 for s in sites) == total.base
    assert Fraction(total.counts[0] + total.counts[1], 229) == 1  # the reference: 100 %


def test_many_sites_get_compact_bars_in_page_sized_drawings_and_a_row_per_site(db):
    scale = [{"code": c, "label_en": c, "label_ja": c} for c in ("a", "b", "c", "d")]
    sites = [{"code": f"s{i:02}", "name_en": f"Site {i}", "name_ja": f"第{i}区"} for i in range(60)]
    counts = {"a": 3, "b": 2, "c": 1, "d": 0, "_answered": 6}
    data = {
        "results": [],
        "sites": sites,
        "instrument": {
            "questions": [
                {"code": "q", "type": "scale4", "text_en": "Scale?", "choices": scale},
                {"code": "t", "type": "single", "text_en": "Tool?", "choices": scale},
            ]
        },
        "distributions": {
            "overall": {"q": {k: 60 * v for k, v in counts.items()}},
            "by_site": {s["code"]: {"q": counts, "t": counts} for s in sites},
        },
    }
    from kpi.evaluations.report.context import BARS_PER_PANEL, _charts

    with translation.override("en"):
        scale_item, single_item = _charts(Snapshot(data))
    panels = scale_item["panels"]
    assert [len(p.bars) for p in panels] == [BARS_PER_PANEL, 61 - BARS_PER_PANEL]
    assert panels[0].bars[0].total and not panels[1].bars[0].total
    assert panels[0].bar_height == 9.0 and panels[0].font == 8.0  # compact, never under 8 pt
    # A page holds the heading and a whole drawing (A4 less 20 mm margins: 728 pt).
    assert panels[0].height < 728 - 100
    assert single_item["table"]["by_answer"] is False
    assert len(single_item["table"]["rows"]) == 61
    assert single_item["title"] == "Q2 Tool?"
