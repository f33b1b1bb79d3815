"""The report as a municipality publishes it: type a reader can read, Japanese lines that
break between phrases, and no program identifier before the auditors' appendix (the codes,
commands and digests are all in it)."""

from __future__ import annotations

import io
import re
import unicodedata

import budoux
import pdfplumber
import pytest
import weasyprint
from django.template import engines
from django.utils import translation

from kpi.evaluations.report import phrases
from kpi.evaluations.report.fetcher import StaticFilesFetcher, base_url, static_root
from tests.kpi.evaluations.conftest import REFERENCE_REPORTS

HEX = re.compile(r"[0-9a-fA-F]{16}")
SMALLEST = 8.0  # pt: notes, table headers, margins
BODY = 10.0  # pt: prose and lead paragraphs
TOLERANCE = 0.05  # pdfplumber reads 8 pt as 7.99999
WJ = "\u2060"
WATERMARK = 30  # pt: the draft's diagonal word is 40 pt, no other text above 20

pytestmark = REFERENCE_REPORTS


def identifiers(snapshot: dict) -> dict[str, set[str]]:  # type: ignore[type-arg]
    """The program identifiers the snapshot holds, by kind (read from the snapshot, not
    from the report's code)."""
    questions = snapshot["instrument"]["questions"]
    return {
        "kpi": {d["code"] for d in snapshot["definitions"]},
        "question": {q["code"] for q in questions},
        "tag": {t for q in questions for c in q["choices"] for t in c.get("tags", [])},
        "study": {snapshot["study"]["code"]},
    }


def shown_codes(text: str, codes: set[str], language: str) -> set[str]:
    """The codes ``text`` shows. Japanese text has no English words, so any code standing
    alone counts; in English "continue" or "online" are words too, so a one-word code
    counts only as a code is printed (in brackets, quoted, "#tag", "tool:")."""
    found = set()
    for code in codes:
        if language == "ja" or re.search(r"[_\-]", code):
            if re.search(rf"(?<![A-Za-z0-9_-]){re.escape(code)}(?![A-Za-z0-9_-])", text):
                found.add(code)
        elif re.search(rf"\({re.escape(code)}\)|[“\"#]{re.escape(code)}\b|\b{code}:", text):
            found.add(code)
    return found


def text_of(page: pdfplumber.page.Page) -> str:
    """The page's text without the draft's diagonal watermark (its letters would fall
    between the words of the lines it crosses)."""
    return page.filter(lambda o: o.get("size", 0) < WATERMARK).extract_text() or ""


def appendix_start(pages: list[pdfplumber.page.Page], language: str) -> int:
    with translation.override(language):
        title = translation.gettext("Appendix (for auditors)")
    # The contents page lists the divider's title too: the divider is after it.
    after = contents_page(pages, language) + 1
    starts = [i for i, page in enumerate(pages) if i >= after and title in text_of(page)]
    assert starts, f"no page carries {title!r}"
    return starts[0]


def contents_page(pages: list[pdfplumber.page.Page], language: str) -> int:
    with translation.override(language):
        heading = translation.gettext("Contents")
    return next(i for i, page in enumerate(pages) if heading in text_of(page))


def sizes_of(page: pdfplumber.page.Page, text: str) -> list[float]:
    """The font sizes of the characters of ``text`` (its first occurrence on ``page``,
    compared without spaces), or [] if it is not there."""
    chars = [c for c in page.chars if not c["text"].isspace()]
    flat = "".join(c["text"] for c in chars)
    needle = re.sub(r"\s", "", text)
    at = flat.find(needle)
    return [] if at < 0 else [c["size"] for c in chars[at : at + len(needle)]]


def is_chart_tick(page: pdfplumber.page.Page, char: dict) -> bool:  # type: ignore[type-arg]
    """A tick label of a bar chart (0 %, 25 %, ... below the bars)."""
    line = [c["text"] for c in page.chars if abs(c["top"] - char["top"]) < 1]
    return bool(re.fullmatch(r"(\d+\s*%)+", "".join(line).replace(" ", "")))


@pytest.fixture
def reports(reference_reports):  # type: ignore[no-untyped-def]
    """The reference evaluation's draft, in Japanese and in English, page by page."""
    drafts = reference_reports.draft
    return drafts["ja"].evaluation, {language: drafts[language].document for language in drafts}


# --- type sizes, codes before and in the appendix -------------------------------------------


@pytest.mark.parametrize("language", ["ja", "en"])
def test_body_pages_are_readable_and_show_no_code_which_the_appendix_keeps(reports, language):
    evaluation, documents = reports
    pages = documents[language].pages
    start = appendix_start(pages, language)
    body = pages[:start]  # the cover, the contents, the summary and every section
    body_text = "\n".join(text_of(page) for page in body)
    appendix_text = "\n".join(text_of(page) for page in pages[start:])

    # (a) No character under 8 pt on a body page (bar-chart ticks aside, see below)...
    small = [
        (number, c["text"], round(c["size"], 2))
        for number, page in enumerate(pages[:start], start=1)
        for c in page.chars
        if c["size"] < SMALLEST - TOLERANCE and not is_chart_tick(page, c)
    ]
    assert not small, small[:20]
    # ...and the prose read as text at 10 pt or more: the verdicts' lead, the Methods.
    with translation.override(language):
        prose = [  # the Methods' prose, and the lead paragraphs of two sections
            translation.gettext(
                "Respondents are the participants whose questionnaire was submitted by the "
                "data cut-off; the invited are the active participants, and those who "
                "withdrew after answering. Answers are counted from the stored choices of "
                "each response with one aggregate query per run; the definitions, counts "
                "and results shown here are those frozen in the snapshot whose digest is "
                "printed on the last page."
            )[:20],
            translation.gettext(
                "A mean score has the interval mean ± z s / √n, with s the sample "
                "standard deviation."
            )[:10],
            translation.gettext(
                "Respondents are those whose questionnaire was submitted by the data cut-off."
            ),
            translation.gettext(
                "Each KPI for each site, with the same definition, base and rule as for the "
                "whole study. A site where nobody is in the base has no value and, for a KPI "
                'with a target, the verdict "inconclusive".'
            )[:20],
        ]
    for text in prose:
        assert not text.isascii() or language == "en", text  # translated: the msgid is right
        sizes = [s for page in body for s in sizes_of(page, text)]
        assert sizes, text
        assert min(sizes) >= BODY - TOLERANCE, (text, min(sizes))

    # (b) No program identifier, command or digest before the appendix.
    codes = identifiers(evaluation.snapshot)
    for kind, values in codes.items():
        assert not shown_codes(body_text, values, language), kind
    assert "manage.py" not in body_text
    assert "python " not in body_text
    assert "verify_evaluation" not in body_text
    assert not HEX.search(body_text.replace(" ", ""))
    assert evaluation.snapshot_sha256[:16] not in body_text.replace(" ", "")

    # (c) The appendix has them all: KPI, question and tag codes, the study code, the
    # digest in full.
    for kind in ("kpi", "question", "tag", "study"):
        assert all(code in appendix_text for code in codes[kind]), kind
    assert evaluation.snapshot_sha256 in appendix_text.replace(" ", "").replace("\n", "")


def test_the_cover_shows_no_code_either(reports):
    evaluation, documents = reports
    pages = documents["ja"].pages
    cover = text_of(pages[0])
    assert evaluation.snapshot["study"]["code"] not in cover
    assert "python " not in cover and "verify_evaluation" not in cover


def test_chart_ticks_are_8pt_or_more(reports):
    _, documents = reports
    ticks = [
        c["size"] for page in documents["ja"].pages for c in page.chars if is_chart_tick(page, c)
    ]
    assert ticks
    assert min(ticks) >= SMALLEST - TOLERANCE


def test_the_footer_names_the_report_and_the_page_only(reports):
    evaluation, documents = reports
    pages = documents["en"].pages
    for number, page in enumerate(pages, start=1):
        bottom = page.crop((0, page.height - 20 * 72 / 25.4, page.width, page.height))
        footer = bottom.extract_text() or ""
        assert f"page {number} of {len(pages)}" in footer
        assert "Tokyo DX pilot" in footer  # the study's name: the report's title
        assert evaluation.snapshot["study"]["code"] not in footer
        assert not HEX.search(footer.replace(" ", ""))


# --- Japanese line breaks -------------------------------------------------------------------

NARROW = [
    "実施地域ごとの回答率は、世田谷区で139 / 212 人（66 %）でした。",
    "2021年4月1日から2021年9月30日までの実証期間に、オンライン相談を利用した回答者の割合",
    "担当医師・助産師の説明は理解できたか、回答者数は229人、目標値は70 %以上",
]


def budoux_boundaries(text: str) -> set[int]:
    """Where BudouX allows a break in ``text`` (character offsets)."""
    parsed = budoux.load_default_japanese_parser().parse(text)
    offsets, at = set(), 0
    for phrase in parsed[:-1]:
        at += len(phrase)
        offsets.add(at)
    return offsets


def is_unit(char: str) -> bool:
    return char.isdigit() or char in "%％人年月日/" or unicodedata.category(char) == "Zs"


def test_narrow_japanese_cells_break_between_phrases_and_keep_numbers_whole():
    cells = "".join(f'<p class="cell">{text}</p>' for text in NARROW)
    html = (
        '<html lang="ja"><link rel="stylesheet" href="kpi/report.css">'
        "<style>.cell { width: 42mm; margin-bottom: 6mm; }</style>"
        f'<body class="lang-ja">{cells}</body></html>'
    )
    pdf = weasyprint.HTML(
        string=phrases.document(html), base_url=base_url(), url_fetcher=StaticFilesFetcher()
    ).write_pdf()
    assert pdf is not None
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        lines = [line["text"] for line in document.pages[0].extract_text_lines()]
    # Put the lines back into their paragraphs: each starts where a text starts.
    breaks_seen = 0
    at = 0
    for text in NARROW:
        compact = text.replace(" ", "")
        allowed = budoux_boundaries(compact)
        read = ""
        while len(read) < len(compact):
            line = lines[at].replace(" ", "").replace("\u00a0", "")
            at += 1
            read += line
            if len(read) < len(compact):
                breaks_seen += 1
                end = len(read)
                assert compact.startswith(read), (read, compact)
                assert end in allowed, f"{compact[:end]} | {compact[end:]}"
                assert not (compact[end - 1].isdigit() and is_unit(compact[end])), (
                    f"{compact[:end]} | {compact[end:]}"
                )
        assert read == compact
    assert breaks_seen >= 6  # the cells are narrow enough to wrap


# --- the phrase filter ----------------------------------------------------------------------


def test_split_keeps_numbers_with_their_units_and_neighbours():
    # BudouX alone splits "2021年" as "202" + "1年"; a number never breaks.
    for text in NARROW:
        for left, right in zip(phrases.split(text), phrases.split(text)[1:], strict=False):
            assert not (left.rstrip(" /\u00a0")[-1:].isdigit() and is_unit(right[0])), (
                left,
                right,
            )
    assert "".join(phrases.split(NARROW[1])) == NARROW[1]


def test_markup_holds_phrases_together_and_escapes_what_a_user_typed():
    marked = phrases.markup("東京都<script>alert('x')</script>の実施地域")
    assert "<script>" not in marked
    assert marked.replace(WJ, "") == (
        "東京都&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;の実施地域"
    )
    # English: only number groups are held; words break as usual.
    english = phrases.markup("Setagaya: 139 / 212 respond, 66 %")
    assert english.replace(WJ, "") == "Setagaya: 139 / 212 respond, 66 %"
    assert f"9{WJ} {WJ}/{WJ} {WJ}2" in english and "Setagaya: " in english


def test_the_document_pass_rewrites_body_text_only_and_never_unescapes():
    template = engines["django"].from_string(
        '<html><head><title>{{ name }}</title><style>p::before { content: "<&>"; }</style>'
        '</head><body><h2 id="x" class="a &amp; b">{{ name }}の回答率</h2>'
        '<svg><text x="1">{{ name }}の回答</text></svg></body></html>'
    )
    html = template.render({"name": "<script>東京</script>"})
    out = phrases.document(html)
    assert "<script>" not in out
    assert '<style>p::before { content: "<&>"; }</style>' in out  # style as it was
    assert '<h2 id="x" class="a &amp; b">' in out  # attributes as they were
    assert '<svg><text x="1">&lt;script&gt;東京&lt;/script&gt;の回答</text></svg>' in out
    heading = re.search(r"<h2[^>]*>(.*?)</h2>", out)
    assert heading is not None
    assert WJ in heading.group(1)
    assert heading.group(1).replace(WJ, "") == "&lt;script&gt;東京&lt;/script&gt;の回答率"


# --- contrast -------------------------------------------------------------------------------


def luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance of "#rrggbb" or "#rgb"."""
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_text_colour_meets_wcag_aa_on_its_background():
    assert round(contrast("#5c6370", "#ffffff"), 1) == 6.0  # the formula, on a known pair
    sheet = (static_root() / "kpi" / "report.css").read_text(encoding="utf-8")
    checked = 0
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", sheet):
        colour = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body)
        if not colour:
            continue
        background = re.search(r"background:\s*(#[0-9a-fA-F]{3,6})", body)
        # Without a background of its own, the darkest tint text is laid on (table heads).
        ground = background.group(1) if background else "#eef1f5"
        assert contrast(colour.group(1), ground) >= 4.5, (selector.strip(), colour.group(1))
        checked += 1
    assert checked >= 10
