"""The printed letters, read back from the PDF: each QR code decodes to its own letter's
link, the link is typed out, the fonts are embedded, the address shows through the
envelope window and nothing else does, and bad letters are refused before any rendering.

The PDF is read the way a recipient and a post office would meet it: rasterised by
poppler (``pdftoppm``, installed by scripts/system-deps.sh) and decoded with zxing-cpp,
its text and word positions read by pypdf and ``pdftotext -bbox``.
"""

from __future__ import annotations

import io
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from fieldwork.letters import Letter, layout, render_letters, render_letters_batched

MM_PER_PT = 25.4 / 72

SENDER = (
    "渋谷区 子ども家庭部 子育て支援課",
    "〒150-8010 東京都渋谷区宇田川町1-1",
    "電話 03-3463-1211",
)
PURPOSE_JA = (
    "本区では、子育て中のご家庭を対象に、オンライン相談サービスの試行を行いました。\n\n"
    "このアンケートは、サービスの効果を確かめ、今後の事業の改善に役立てるためのものです。"
)
PURPOSE_EN = "The ward ran a trial of an online counselling service for families."


def letter(n: int, **changes: object) -> Letter:
    values: dict[str, object] = {
        "reference": f"P-{n:05d}",
        "addressee_name": "山田 花子",
        "address_lines": ("〒150-0001", "東京都渋谷区神宮前1丁目2番3号", "神宮前ハイツ405号室"),
        "sender_lines": SENDER,
        "purpose": PURPOSE_JA,
        "deadline": date(2027, 1, 15),
        # Each link holds the characters a reader confuses (0 O, l 1 I) and differs from
        # the others only in its last characters, so a decoded code is its letter's own.
        "link": f"https://hyoka.example.jp/s/0Ol1I-{n:04d}-x_Q8",
        "language": "ja",
        "dated": date(2026, 12, 4),
    }
    values.update(changes)
    return Letter(**values)  # type: ignore[arg-type]


def english(n: int, **changes: object) -> Letter:
    values: dict[str, object] = {
        "addressee_name": "Hanako Yamada",
        "address_lines": ("1-2-3 Jingumae, Shibuya-ku", "Tokyo 150-0001"),
        "purpose": PURPOSE_EN,
        "language": "en",
    }
    values.update(changes)
    return letter(n, **values)


LETTERS = [
    letter(1),
    english(2),
    # The longest lines a letter accepts (letter.MAX_*): they must still fit the window.
    letter(
        3,
        addressee_name="佐藤" + "あ" * 13,  # 15 em
        address_lines=(
            "〒150-0001",
            "北海道札幌市中央区北一条西二丁目一番地の",
            "あ" * 21,
            "三",
            "WWWWW",
        ),
    ),
    english(
        4,
        addressee_name="Wolfgang M. Yamamoto-Sm",  # 23 x 0.6 = 13.8 em (no 様 in English)
        address_lines=(
            "Room 1203, Grand Maison Aoyama-West",
            "1-2-3 Jingumae, Shibuya-ku",
            "Tokyo",
        ),
    ),
]


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_letters(LETTERS)


@pytest.fixture(scope="module")
def pdf_file(pdf: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("letters") / "letters.pdf"
    path.write_bytes(pdf)
    return path


def page_texts(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [re.sub(r"[\u00a0\u202f\u3000]", " ", p.extract_text() or "") for p in reader.pages]


def decoded(pdf_file: Path) -> list[list[str]]:
    """The QR codes found on each page, rasterised at 150 dpi as a scanner would."""
    out = pdf_file.parent / f"{pdf_file.stem}-raster"
    out.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", pdf_file, out / "p"], check=True)
    pages = []
    for png in sorted(out.glob("p-*.png")):
        results = zxingcpp.read_barcodes(Image.open(png))
        pages.append(
            [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode and r.valid]
        )
    return pages


def words(pdf_file: Path) -> list[list[tuple[str, float, float, float, float]]]:
    """Each page's words with their boxes in millimetres from the sheet's top-left."""
    html = subprocess.run(
        ["pdftotext", "-bbox", pdf_file, "-"], check=True, capture_output=True, text=True
    ).stdout
    html = re.sub(r"<!DOCTYPE[^>]*>", "", html)
    root = ET.fromstring(html)  # noqa: S314 - poppler's output for our own PDF
    pages = []
    for pg in root.iter("{http://www.w3.org/1999/xhtml}page"):
        pages.append(
            [
                (
                    w.text or "",
                    float(w.get("xMin", 0)) * MM_PER_PT,
                    float(w.get("yMin", 0)) * MM_PER_PT,
                    float(w.get("xMax", 0)) * MM_PER_PT,
                    float(w.get("yMax", 0)) * MM_PER_PT,
                )
                for w in pg.iter("{http://www.w3.org/1999/xhtml}word")
            ]
        )
    return pages


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- the QR codes and the links ------------------------------------------------------------


def test_each_qr_code_decodes_to_its_own_letters_link(pdf_file):
    assert decoded(pdf_file) == [[one.link] for one in LETTERS]


def test_the_link_is_typed_out_on_its_letters_page(pdf):
    texts = page_texts(pdf)
    assert len(texts) == len(LETTERS)
    for one, text in zip(LETTERS, texts, strict=True):
        assert one.link in text
        others = [o.link for o in LETTERS if o is not one]
        assert not any(link in text for link in others)


def test_the_qr_code_is_vector_and_at_least_25_mm_wide_on_paper(pdf, pdf_file):
    """No raster image anywhere in the PDF; and the symbol zxing finds on the 150 dpi
    rasterisation (corner to corner, quiet zone excluded) is at least 25 mm wide."""
    for page in PdfReader(io.BytesIO(pdf)).pages:
        xobjects = page["/Resources"].get_object().get("/XObject", {})
        subtypes = {str(x.get_object().get("/Subtype")) for x in xobjects.values()}
        assert "/Image" not in subtypes
    decoded(pdf_file)
    for png in sorted((pdf_file.parent / f"{pdf_file.stem}-raster").glob("p-*.png")):
        (code,) = zxingcpp.read_barcodes(Image.open(png))
        corners = code.position
        width_px = corners.top_right.x - corners.top_left.x
        height_px = corners.bottom_left.y - corners.top_left.y
        assert min(width_px, height_px) / 150 * 25.4 >= 25


def test_the_link_is_set_in_the_monospace_font(pdf):
    fonts = {name.split("+", 1)[1] for name, _ in embedded_fonts(pdf)}
    assert fonts == {"Hyoka-IPAex-Gothic", "Hyoka-DejaVu-Sans-Mono"}


# --- fonts and languages -------------------------------------------------------------------


def embedded_fonts(pdf: bytes) -> list[tuple[str, bool]]:
    fonts = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in page["/Resources"].get_object().get("/Font", {}).values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            descriptor = described.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor else {}
            embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            fonts.append((str(font["/BaseFont"]), embedded))
    return fonts


def test_every_font_is_embedded(pdf):
    fonts = embedded_fonts(pdf)
    assert fonts
    assert all(embedded for _, embedded in fonts), fonts


def test_a_japanese_letter_is_worded_in_japanese(pdf):
    text = squeeze(page_texts(pdf)[0])
    for expected in (
        "山田花子様",
        "整理番号P-00001",
        "2026年12月4日",
        "アンケートへのご協力のお願い",
        "回答期限2027年1月15日（金）",  # 15 January 2027 is a Friday
        "本区では、子育て中のご家庭を対象に",
        "渋谷区子ども家庭部子育て支援課",
    ):
        assert expected in text
    assert "Dear" not in text


def test_an_english_letter_is_worded_in_english(pdf):
    text = page_texts(pdf)[1]
    for expected in (
        "Dear Hanako Yamada,",
        "Reference: P-00002",
        "4 December 2026",
        "Please answer by",
        "Friday 15 January 2027",
        PURPOSE_EN,
    ):
        assert expected in text
    assert "様" not in text
    assert "回答期限" not in text


def test_markup_in_a_name_is_printed_as_typed():
    pdf = render_letters([letter(9, addressee_name="<b>太郎</b>")])
    assert "<b>太郎</b>" in squeeze(page_texts(pdf)[0])


# --- the envelope window ---------------------------------------------------------------------


def test_the_address_shows_through_the_window_and_nothing_else_does(pdf_file):
    """Every word printed near the window (the window widened by the sheet's play in
    the envelope) is the address block's, and lies inside the window's safe area."""
    for one, page_words in zip(LETTERS, words(pdf_file), strict=True):
        near = [w for w in page_words if layout.CLEAR.overlaps(*w[1:])]
        honorific = "様" if one.language == "ja" else ""
        expected = "".join(one.address_lines) + one.addressee_name + honorific
        assert squeeze("".join(w[0] for w in near)) == squeeze(expected)
        for text, *box in near:
            assert layout.SAFE.contains(*box), (text, box)
            assert layout.WINDOW.contains(*box), (text, box)


def test_a_long_purpose_continues_on_a_second_page_with_its_own_code(tmp_path):
    long = "\n\n".join([PURPOSE_JA] * 14)
    letters = [letter(1, purpose=long), english(2)]
    pdf_file = tmp_path / "long.pdf"
    pdf_file.write_bytes(render_letters(letters))
    codes = decoded(pdf_file)
    assert len(codes) > len(letters)
    assert [link for page in codes for link in page] == [one.link for one in letters]
    # The second letter starts on a new page: its window shows its own address.
    second = next(i for i, text in enumerate(page_texts(pdf_file.read_bytes())) if "Dear" in text)
    assert second >= 2


# --- batches -----------------------------------------------------------------------------------


def test_batches_cover_every_letter_in_order_and_report_progress(tmp_path):
    letters = [letter(n) if n % 2 else english(n) for n in range(1, 6)]
    progress: list[tuple[int, int]] = []
    batches = list(
        render_letters_batched(letters, batch_size=2, on_progress=lambda *a: progress.append(a))
    )
    assert progress == [(2, 5), (4, 5), (5, 5)]
    links = []
    for i, batch in enumerate(batches):
        path = tmp_path / f"b{i}.pdf"
        path.write_bytes(batch)
        links += [link for page in decoded(path) for link in page]
    assert links == [one.link for one in letters]


def test_batches_rendered_in_two_processes_come_back_in_order():
    letters = [letter(n) for n in range(1, 6)]
    serial = list(render_letters_batched(letters, batch_size=2, today=date(2026, 12, 4)))
    parallel = list(
        render_letters_batched(letters, batch_size=2, today=date(2026, 12, 4), workers=2)
    )
    assert [page_texts(pdf) for pdf in parallel] == [page_texts(pdf) for pdf in serial]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"address_lines": ()}, "postal address is missing"),
        ({"address_lines": ("  ", "")}, "postal address is missing"),
        ({"address_lines": "東京都渋谷区"}, "sequence of lines"),
        ({"address_lines": ("あ" * 22,)}, "address line 1 is too long"),
        ({"address_lines": tuple(f"line {n}" for n in range(6))}, "at most 5"),
        ({"address_lines": ("東京都\n渋谷区",)}, "control character"),
        ({"addressee_name": " "}, "name is missing"),
        ({"sender_lines": ()}, "sender"),
        ({"purpose": ""}, "purpose is missing"),
        ({"link": "javascript:alert(1)"}, "http(s)"),
        ({"link": "ftp://hyoka.example.jp/s/x"}, "http(s)"),
        ({"link": "https:///s/x"}, "http(s)"),
        ({"link": "https://hyoka.example.jp/s/a b"}, "without spaces"),
        ({"link": "https://例え.jp/s/x"}, "plain ASCII"),
        ({"link": ""}, "link is missing"),
        ({"language": "fr"}, "'ja' or 'en'"),
        ({"deadline": "2027-01-15"}, "deadline must be a date"),
        ({"reference": ""}, "reference"),
        ({"reference": None}, "reference must be text"),
        ({"addressee_name": None}, "name must be text"),
        ({"address_lines": ("〒150-0001", None)}, "address line 2 must be text"),
        ({"purpose": None}, "purpose is missing"),
        ({"dated": "2026-12-04"}, "letter's date must be a date"),
    ],
)
def test_a_bad_letter_is_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        letter(1, **changes)


def test_the_renderer_reads_its_two_fonts_and_nothing_else():
    """Text in a letter is drawn as typed, never read as markup: a name or a purpose
    naming a file or an address makes the renderer open nothing but its two fonts."""
    import sys

    from fieldwork.letters import render

    opened: list[str] = []
    watching = False

    def hook(event: str, args: tuple) -> None:
        if watching and event == "open" and isinstance(args[0], str | Path):
            opened.append(str(Path(args[0]).resolve()))

    sys.addaudithook(hook)  # (a hook cannot be removed: it records only while watching)
    sneaky = '<img src="/etc/passwd"/> <a href="file:///etc/hostname">x</a>'
    bad = letter(9, addressee_name="<img src=x>", purpose=f"{sneaky}\n\nhttps://e.jp/x.ttf")
    render_letters([bad])  # warm: modules imported on the first rendering are not the point
    render.fonts.cache_clear()  # so the fonts are opened again, while watching
    watching = True
    try:
        pdf = render_letters([bad])
    finally:
        watching = False
    folder = render.fonts_folder()
    assert sorted(set(opened)) == [
        str(folder / "DejaVuSansMono.ttf"),
        str(folder / "ipaexg.ttf"),
    ]
    text = squeeze(page_texts(pdf)[0])
    assert squeeze(sneaky) in text
    assert "<imgsrc=x>様" in text


def test_nothing_to_print_is_refused():
    with pytest.raises(ValueError, match="no letters"):
        render_letters([])
    with pytest.raises(ValueError, match="not a Letter"):
        render_letters([{"link": "https://hyoka.example.jp/"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch size"):
        list(render_letters_batched([letter(1)], batch_size=0))
    with pytest.raises(ValueError, match="workers"):
        list(render_letters_batched([letter(1)], workers=0))


def test_a_letter_is_a_value():
    one = letter(1, address_lines=[" 〒150-0001 ", "東京都渋谷区"])
    assert one.address_lines == ("〒150-0001", "東京都渋谷区")
    assert replace(one, reference="P-2").reference == "P-2"
    with pytest.raises(AttributeError):
        one.link = "https://elsewhere.example/"  # type: ignore[misc]


def test_an_undated_letter_carries_todays_date_in_japan_time():
    from django.utils import timezone

    today = timezone.localdate()  # TIME_ZONE is Asia/Tokyo
    texts = page_texts(render_letters([letter(1, dated=None), english(2, dated=None)]))
    assert f"{today.year}年{today.month}月{today.day}日" in texts[0]
    months = "January February March April May June July August September October November"
    month = [*months.split(), "December"][today.month - 1]
    assert f"{today.day} {month} {today.year}" in texts[1]


def test_blank_lines_in_the_purpose_separate_paragraphs_and_leave_none_empty(tmp_path):
    """Blank lines (however many) end a paragraph, a single line break breaks the line
    within one: on the page, a paragraph's lines are one line height apart (10.5 pt at
    1.7) and the next paragraph starts a paragraph gap (2.5 mm) further down."""
    from fieldwork.letters.render import page

    one = letter(1, purpose="一段落目。\n\n\n\n二段落目。\n同じ段落。")
    assert page(one, date(2026, 12, 4)).paragraphs == ("一段落目。", "二段落目。\n同じ段落。")
    path = tmp_path / "paragraphs.pdf"
    path.write_bytes(render_letters([one]))
    tops = {text: top for text, _, top, _, _ in words(path)[0]}
    line = 10.5 * 1.7 * MM_PER_PT
    assert tops["同じ段落。"] - tops["二段落目。"] == pytest.approx(line, abs=0.05)
    assert tops["二段落目。"] - tops["一段落目。"] == pytest.approx(line + 2.5, abs=0.05)


# --- line breaking ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "em", "expected"),
    [
        # Five full-width characters a line (IPAex Gothic's kana are 1 em wide). A line
        # never starts with a closing mark: the character before it moves down with it.
        ("あいうえお。かきくけこ", 5, ["あいうえ", "お。かきく", "けこ"]),
        ("あいうえ、」かきく", 5, ["あいう", "え、」かき", "く"]),
        ("あいうえおーかき", 5, ["あいうえ", "おーかき"]),
        # ... and never ends with an opening bracket: it moves down to what it opens.
        ("あいう「えお」", 4, ["あいう", "「えお」"]),
        # Latin words break at spaces only, the space is not carried to the next line.
        ("ab cd あいう", 3, ["ab cd", "あいう"]),
    ],
)
def test_japanese_lines_break_at_any_character_but_keep_punctuation_attached(text, em, expected):
    from fieldwork.letters.render import PT, TEXT_FONT, fonts, wrap

    size = 10.0
    assert wrap(text, fonts()[TEXT_FONT], size, em * size * PT) == expected


def test_a_link_longer_than_a_line_breaks_between_any_two_characters():
    from fieldwork.letters.render import LINK, MONO_FONT, PT, fonts, wrap

    link = "https://hyoka.example.jp/s/" + "0O" * 80  # 187 characters
    per_line = int(173 / (0.602 * LINK * PT))  # DejaVu Sans Mono: 0.602 em a character
    lines = wrap(link, fonts()[MONO_FONT], LINK, 173)
    assert "".join(lines) == link
    assert [len(line) for line in lines] == [per_line, per_line, len(link) - 2 * per_line]
