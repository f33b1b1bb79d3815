"""The LINE box of a letter (fieldwork/letters/render.py): how to add the official account
and the participant's link code, under the link, in the monospace font; the link's QR code
still decodes, the envelope window still shows only the address, a letter is still one
page; a letter without a code says nothing of LINE."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from fieldwork.letters import layout, render_letters
from fieldwork.letters.letter import LINE_CODE_ALPHABET
from fieldwork.line import codes

from .test_render import LETTERS, decoded, english, letter, page_texts, squeeze, words

ACCOUNT = "@123abcde"
# Codes with the characters a reader could confuse elsewhere (none of 0 O 1 I here).
CODES = ["ABCDE-FGHJK", "23456-789XY", "LMNPQ-RSTUV", "WXYZ2-3456A"]
WITH_LINE = [
    replace(one, line_code=code, line_account=ACCOUNT)
    for one, code in zip(LETTERS, CODES, strict=True)
]


@pytest.fixture(scope="module")
def line_pdf() -> bytes:
    return render_letters(WITH_LINE)


@pytest.fixture(scope="module")
def line_pdf_file(line_pdf, tmp_path_factory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("line-letters") / "letters.pdf"
    path.write_bytes(line_pdf)
    return path


def test_each_letter_prints_its_own_code_and_the_official_account_on_one_page(line_pdf):
    texts = page_texts(line_pdf)
    assert len(texts) == len(WITH_LINE)  # still one page each
    for one, text in zip(WITH_LINE, texts, strict=True):
        assert one.line_code in text
        assert [code for code in CODES if code in text] == [one.line_code]
        assert ACCOUNT in text


def test_the_line_box_is_worded_in_the_letters_language(line_pdf):
    ja, en = page_texts(line_pdf)[:2]
    assert "LINEでお知らせを受け取る場合" in ja and "連携コード" in ja
    assert f"LINEで「{ACCOUNT}」を検索して、公式アカウントを友だち追加" in squeeze(ja)
    assert "Reminders in LINE" in en and "Link code:" in en
    assert "連携コード" not in en


def test_the_code_is_printed_under_the_link(line_pdf_file):
    for one, page_words in zip(WITH_LINE, words(line_pdf_file), strict=True):
        (code_word,) = [w for w in page_words if w[0] == one.line_code]
        link_bottom = max(w[4] for w in page_words if w[0] in one.link)
        assert code_word[2] > link_bottom
        assert code_word[4] < layout.PAGE_HEIGHT - layout.MARGIN_BOTTOM


ADD_FRIEND = "https://line.me/R/ti/p/%40123abcde"  # LINE's add-friend URL, "@" as %40


def test_the_links_qr_code_still_decodes_beside_the_smaller_add_friend_code(line_pdf_file):
    assert [sorted(page) for page in decoded(line_pdf_file)] == [
        sorted([one.link, ADD_FRIEND]) for one in WITH_LINE
    ]
    # The link's symbol is the dominant one: at least half as wide again on paper.
    for png in sorted((line_pdf_file.parent / f"{line_pdf_file.stem}-raster").glob("p-*.png")):
        widths = {
            code.text: code.position.top_right.x - code.position.top_left.x
            for code in zxingcpp.read_barcodes(Image.open(png))
        }
        (link,) = [text for text in widths if text != ADD_FRIEND]
        assert widths[link] >= 1.5 * widths[ADD_FRIEND]


def test_the_window_still_shows_the_address_and_nothing_else(line_pdf_file):
    for one, page_words in zip(WITH_LINE, words(line_pdf_file), strict=True):
        near = [w for w in page_words if layout.CLEAR.overlaps(*w[1:])]
        honorific = "様" if one.language == "ja" else ""
        expected = "".join(one.address_lines) + one.addressee_name + honorific
        assert squeeze("".join(w[0] for w in near)) == squeeze(expected)


def test_a_letter_without_a_code_says_nothing_of_line(line_pdf):
    plain = page_texts(render_letters(LETTERS))
    for text in plain:
        assert "LINE" not in text and ACCOUNT not in text
    # ... and is otherwise the same letter.
    with_line = page_texts(line_pdf)
    assert all(
        text.startswith(base.rstrip()[:200]) for text, base in zip(with_line, plain, strict=True)
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"line_code": "ABCDE-FGHJK"}, "both or neither"),
        ({"line_account": ACCOUNT}, "both or neither"),
        ({"line_code": "ABCDEFGHJK", "line_account": ACCOUNT}, "ABCDE-FGHJK"),
        ({"line_code": "ABCDE-FGHJ0", "line_account": ACCOUNT}, "10 characters"),
        ({"line_code": "abcde-fghjk", "line_account": ACCOUNT}, "10 characters"),
        ({"line_code": "ABCDE-FGHJK", "line_account": "123abcde"}, "@123abcde"),
        ({"line_code": "ABCDE-FGHJK", "line_account": "@12 3"}, "LINE ID"),
        ({"line_code": 12345, "line_account": ACCOUNT}, "10 characters"),
    ],
)
def test_a_bad_code_or_account_is_refused(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        letter(1, **changes)


def test_an_english_letter_takes_a_code_too():
    assert english(2, line_code="ABCDE-FGHJK", line_account=ACCOUNT).line_code == "ABCDE-FGHJK"


def test_the_letters_idea_of_a_code_is_the_line_channels():
    assert LINE_CODE_ALPHABET == codes.ALPHABET


def test_the_code_is_set_in_the_monospace_font(line_pdf):
    reader = PdfReader(io.BytesIO(line_pdf))
    for one, page in zip(WITH_LINE, reader.pages, strict=True):
        mono: list[str] = []

        def visit(text, _cm, _tm, font, _size, into=mono):  # type: ignore[no-untyped-def]
            if font and "DejaVu-Sans-Mono" in str(font.get("/BaseFont")):
                into.append(text)

        page.extract_text(visitor_text=visit)
        assert one.line_code in "".join(mono)
