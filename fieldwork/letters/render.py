"""Letters to PDF with ReportLab: one document, a page (or more) per letter.

A window-envelope letter is a fixed layout: the head (the address where the window shows
it, the reference, the date, the sender) sits at positions stated in ``layout``; the body
below it runs down the page. So the page is drawn directly on a ReportLab canvas at those
positions; only the purpose and the lines after it flow, wrapped here (``wrap``) and
continued on a further page when they do not fit. The wording is in ``texts``.

Fonts are the project's own files under ``static/fonts`` (IPAex Gothic for the text,
DejaVu Sans Mono, which tells 0 from O and l from 1, for the link and the reference),
embedded as subsets; the renderer opens those two files and nothing else, and draws the
letter's values as plain strings (no markup is interpreted). The QR code is drawn as
filled rectangles from segno's module matrix: vector, no raster.

Why not WeasyPrint (which prints the evaluation report): laying out every page from HTML
cost about 62 ms of CPU a letter, ReportLab draws one in a few (``bench/letters.py``).
"""

from __future__ import annotations

import functools
import io
import multiprocessing
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import segno
from django.conf import settings
from django.utils import timezone
from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from surveys.bidi import strip_bidi_controls

from . import layout
from .letter import Letter
from .texts import WORDING, Wording, format_date

DEFAULT_BATCH = 200

# Streams compressed, not also ASCII85-encoded (a 7-bit PDF is needed by no printer
# today, and the encoding cost a fifth of the time). The letters are this project's only
# ReportLab user.
rl_config.useA85 = 0

TEXT_FONT = "Hyoka-IPAex-Gothic"
MONO_FONT = "Hyoka-DejaVu-Sans-Mono"
FONT_FILES = {TEXT_FONT: "ipaexg.ttf", MONO_FONT: "DejaVuSansMono.ttf"}

INK = (0.067, 0.067, 0.067)  # #111111
RULE = (0.604, 0.604, 0.604)  # #9a9a9a
PT = 25.4 / 72  # millimetres in a point

# Sizes in points, line heights as factors of the size (as the WeasyPrint stylesheet had).
BODY, BODY_LEADING = 10.5, 1.7
ADDRESS, ADDRESS_LEADING, NAME, NAME_GAP = 10.5, 1.35, 13.0, 2.0
META, META_LEADING, REFERENCE = 9.5, 1.5, 9.0
SENDER_TOP = 30.0
TITLE, TITLE_AFTER, TITLE_SPACING = 15.0, 6.0, 0.08
PARAGRAPH_AFTER = 2.5
DEADLINE, DEADLINE_BEFORE, DEADLINE_AFTER, DEADLINE_PAD = 12.0, 5.0, 6.0, 2.5
HOW_TITLE, HOW_PAD, HOW_TITLE_AFTER, PERSONAL = 11.0, 3.0, 1.5, 9.5
LINK_LABEL, LINK, LINK_LEADING = 9.0, 11.0, 1.4
# The LINE box under the link: its title, steps, and the code in the monospace font.
LINE_BEFORE, LINE_PAD, LINE_TITLE, LINE_STEP, LINE_CODE = 4.0, 2.5, 10.0, 9.0, 13.0

BODY_LEFT = layout.MARGIN_LEFT
BODY_WIDTH = layout.PAGE_WIDTH - layout.MARGIN_LEFT - layout.MARGIN_RIGHT
BODY_BOTTOM = layout.PAGE_HEIGHT - layout.MARGIN_BOTTOM

# Japanese line breaking (禁則): these never start a line (closing brackets and
# punctuation, small kana, the long-vowel mark) ...
NO_START = frozenset(
    "、。，．,.：；:;？！?!)]}）〕］｝〉》」』】〙〗〟’”ヽヾゝゞ々〻ーぁぃぅぇぉっゃゅょゎゕゖ"
    "ァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ・…‥〜～"
)
# ... and these never end one (opening brackets).
NO_END = frozenset("([{（〔［｛〈《「『【〘〖〝‘“")


def fonts_folder() -> Path:
    return (Path(settings.BASE_DIR) / "static" / "fonts").resolve()


@dataclass(frozen=True)
class Metrics:
    """A font's advance widths in thousandths of an em, and its ascent and descent."""

    widths: dict[int, float]
    default: float
    ascent: float
    descent: float

    def width(self, text: str, size: float) -> float:
        """``text``'s width in millimetres at ``size`` points."""
        get, default = self.widths.get, self.default
        return sum(get(ord(c), default) for c in text) * size / 1000 * PT


@functools.cache
def fonts() -> dict[str, Metrics]:
    """Registers the two fonts with ReportLab (once a process) and returns their metrics.

    The PDF names them by the family names the letters have always used (no system font
    has them), so a viewer never substitutes a font of the machine that reads it."""
    metrics = {}
    for name, file in FONT_FILES.items():
        font = TTFont(name, str(fonts_folder() / file))
        font.face.name = name.encode("ascii")
        pdfmetrics.registerFont(font)
        face = font.face
        metrics[name] = Metrics(
            dict(face.charWidths), face.defaultWidth, face.ascent / 1000, -face.descent / 1000
        )
    return metrics


# --- line breaking ---------------------------------------------------------------------------


def _wide(c: str) -> bool:
    return unicodedata.east_asian_width(c) in "WF"


def _units(text: str) -> list[str]:
    """``text`` cut where a line may break: after a space, around every full-width
    character, never before a character of ``NO_START`` nor after one of ``NO_END``."""
    units: list[str] = []
    current = ""
    for c in text:
        if not current:
            current = c
            continue
        prev = current[-1]
        breakable = prev == " " or ((_wide(c) or _wide(prev)) and c != " ")
        if breakable and c not in NO_START and prev not in NO_END:
            units.append(current)
            current = c
        else:
            current += c
    if current:
        units.append(current)
    return units


def wrap(text: str, metrics: Metrics, size: float, width: float, indent: float = 0) -> list[str]:
    """``text`` broken into lines of at most ``width`` mm (the first ``indent`` mm
    narrower): greedily, at the places ``_units`` allows; a unit wider than a line (a long
    word, a link) is broken between any two characters. Spaces ending a line are dropped."""
    lines: list[str] = []
    line, used, room = "", 0.0, width - indent
    for unit in _units(text):
        unit_width = metrics.width(unit.rstrip(" "), size)
        if used + unit_width <= room + 1e-6:
            line += unit
            used += metrics.width(unit, size)
            continue
        if line:
            lines.append(line.rstrip(" "))
            line, used, room = "", 0.0, width
        while metrics.width(unit.rstrip(" "), size) > room + 1e-6:
            cut = 1
            while cut < len(unit) and metrics.width(unit[: cut + 1], size) <= room:
                cut += 1
            lines.append(unit[:cut])
            unit = unit[cut:]
        line, used = unit, metrics.width(unit, size)
    if line.rstrip(" ") or not lines:
        lines.append(line.rstrip(" "))
    return lines


def add_friend_url(account: str) -> str:
    """LINE's URL that opens the official account's add-friend screen (its ``@`` written
    ``%40``, as LINE's documentation gives it)."""
    return f"https://line.me/R/ti/p/{account.replace('@', '%40')}"


# --- the page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What is printed for one letter (strings cleaned of direction controls)."""

    letter: Letter
    lang: str
    wording: Wording
    reference: str
    name: str
    address: tuple[str, ...]
    sender: tuple[str, ...]
    paragraphs: tuple[str, ...]  # a newline inside one is a line break
    dated: str
    deadline: str
    link: str
    line_code: str | None = None
    line_account: str | None = None


def page(letter: Letter, today: date) -> Page:
    clean = strip_bidi_controls
    return Page(
        letter=letter,
        lang=letter.language,
        wording=WORDING[letter.language],
        reference=clean(letter.reference),
        name=clean(letter.addressee_name),
        address=tuple(clean(line) for line in letter.address_lines),
        sender=tuple(clean(line) for line in letter.sender_lines),
        paragraphs=tuple(
            p.strip()
            for p in clean(letter.purpose).replace("\r\n", "\n").split("\n\n")
            if p.strip()
        ),
        dated=format_date(letter.dated or today, letter.language),
        deadline=format_date(letter.deadline, letter.language, weekday=True),
        link=letter.link,
        line_code=letter.line_code,
        line_account=letter.line_account,
    )


class Sheet:
    """Draws letters on a canvas; positions in millimetres from the sheet's top-left."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.metrics = fonts()
        self.text = self.metrics[TEXT_FONT]
        self.mono = self.metrics[MONO_FONT]
        self.y = 0.0  # the body's cursor: the top of the next line box

    # Drawing primitives.

    def baseline(self, top: float, size: float, leading: float, font: str = TEXT_FONT) -> float:
        """The baseline of a line box of ``size * leading`` points starting at ``top`` mm:
        the glyphs' box (ascent + descent) centred in the line box, as CSS does."""
        m = self.metrics[font]
        box = size * PT
        return top + (box * leading - box * (m.ascent + m.descent)) / 2 + box * m.ascent

    def draw(
        self,
        x: float,
        top: float,
        text: str,
        size: float,
        *,
        leading: float = 1.0,
        font: str = TEXT_FONT,
        spacing: float = 0.0,
        word_spacing: float = 0.0,
    ) -> None:
        """``text`` with its line box's top-left at (x, top) mm; ``spacing`` in points
        added after each character, ``word_spacing`` after each space."""
        t = self.canvas.beginText(
            x * mm, (layout.PAGE_HEIGHT - self.baseline(top, size, leading, font)) * mm
        )
        t.setFont(font, size)
        if spacing:
            t.setCharSpace(spacing)
        if word_spacing:  # (ReportLab keeps the space at code 32 in every font subset)
            t.setWordSpace(word_spacing)
        t.textOut(text)
        # Spacing is graphics state: it would outlive the text object.
        if spacing:
            t.setCharSpace(0)
        if word_spacing:
            t.setWordSpace(0)
        self.canvas.drawText(t)

    def right(
        self, x: float, top: float, text: str, size: float, *, leading: float, font: str = TEXT_FONT
    ) -> None:
        """``text`` ending at ``x`` mm."""
        left = x - self.metrics[font].width(text, size)
        self.draw(left, top, text, size, leading=leading, font=font)

    def rule(self, x1: float, y1: float, x2: float, y2: float, width: float, color: tuple) -> None:
        c = self.canvas
        c.setStrokeColorRGB(*color)
        c.setLineWidth(width)
        c.line(x1 * mm, (layout.PAGE_HEIGHT - y1) * mm, x2 * mm, (layout.PAGE_HEIGHT - y2) * mm)

    # The letter.

    def letter(self, p: Page) -> None:
        self.head(p)
        w = p.wording
        self.y = layout.HEAD_HEIGHT
        ja = p.lang == "ja"
        title_spacing = TITLE_SPACING * TITLE if ja else 0.0
        title_width = self.text.width(w.title, TITLE) + len(w.title) * title_spacing * PT
        self.draw(
            BODY_LEFT + (BODY_WIDTH - title_width) / 2,
            self.y,
            w.title,
            TITLE,
            leading=BODY_LEADING,
            spacing=title_spacing,
        )
        self.y += TITLE * BODY_LEADING * PT + TITLE_AFTER
        indent = BODY * PT if ja else 0.0
        self.paragraph(w.greeting.format(name=p.name), justify=True)
        for para in p.paragraphs:
            self.paragraph(para, indent=indent, justify=True)
        self.paragraph(w.request, indent=indent, justify=True)
        self.paragraph(w.closing, align_right=True)
        self.deadline(w.deadline_label + p.deadline)
        self.access(p)
        if p.line_code is not None and p.line_account is not None:
            self.line(p.wording, p.line_code, p.line_account)
        self.canvas.showPage()

    def head(self, p: Page) -> None:
        """The top third: the address in the window, reference, date, sender, fold marks."""
        safe = layout.SAFE
        top = safe.top
        line = ADDRESS * ADDRESS_LEADING * PT
        for text in p.address:
            self.draw(safe.left, top, text, ADDRESS, leading=ADDRESS_LEADING)
            top += line
        top += NAME_GAP
        self.draw(safe.left, top, p.name + p.wording.honorific, NAME, leading=ADDRESS_LEADING)
        edge = layout.SIDE_LEFT + layout.SIDE_WIDTH
        line = META * META_LEADING * PT
        top = layout.WINDOW.top
        reference_width = self.mono.width(p.reference, REFERENCE)
        # The label first: text is read back in the order it is drawn.
        self.right(
            edge - reference_width, top, p.wording.reference_label, META, leading=META_LEADING
        )
        self.right(
            edge,
            top,
            p.reference,
            REFERENCE,
            leading=META_LEADING * META / REFERENCE,
            font=MONO_FONT,
        )
        self.right(edge, top + line, p.dated, META, leading=META_LEADING)
        top = SENDER_TOP
        for text in p.sender:
            self.right(edge, top, text, META, leading=META_LEADING)
            top += line
        for fold in (layout.FOLD, layout.FOLD_2):
            self.rule(4.0, fold, 9.0, fold, 0.3, RULE)

    def room(self, height: float) -> None:
        """Continues on a new page unless ``height`` mm fit below the cursor."""
        if self.y + height > BODY_BOTTOM + 1e-6:
            self.canvas.showPage()
            self.y = layout.MARGIN_TOP

    def paragraph(
        self,
        text: str,
        *,
        indent: float = 0.0,
        justify: bool = False,
        align_right: bool = False,
        size: float = BODY,
        x: float = BODY_LEFT,
        width: float = BODY_WIDTH,
        after: float = PARAGRAPH_AFTER,
    ) -> None:
        line_height = size * BODY_LEADING * PT
        for part in text.split("\n"):
            lines = wrap(part, self.text, size, width, indent)
            for n, line in enumerate(lines):
                self.room(line_height)
                left = x + (indent if n == 0 else 0.0)
                spacing = word_spacing = 0.0
                if align_right:
                    left = x + width - self.text.width(line, size)
                elif justify and n < len(lines) - 1 and len(line) > 1:
                    # Justified, but the paragraph's last line: Latin text stretches its
                    # spaces, Japanese (or a line without spaces) every character gap.
                    slack = max(0.0, x + width - left - self.text.width(line, size)) / PT
                    spaces = line.count(" ")
                    if spaces and not any(_wide(c) for c in line):
                        word_spacing = slack / spaces
                    else:
                        spacing = slack / (len(line) - 1)
                self.draw(
                    left,
                    self.y,
                    line,
                    size,
                    leading=BODY_LEADING,
                    spacing=spacing,
                    word_spacing=word_spacing,
                )
                self.y += line_height
        self.y += after

    def deadline(self, text: str) -> None:
        line = DEADLINE * BODY_LEADING * PT
        height = line + 2 * DEADLINE_PAD
        self.y += DEADLINE_BEFORE - PARAGRAPH_AFTER  # margins collapse, as in CSS
        self.room(height)
        c = self.canvas
        c.setStrokeColorRGB(*INK)
        c.setLineWidth(0.8)
        c.rect(
            BODY_LEFT * mm,
            (layout.PAGE_HEIGHT - self.y - height) * mm,
            BODY_WIDTH * mm,
            height * mm,
            stroke=1,
            fill=0,
        )
        width = self.text.width(text, DEADLINE)
        self.draw(
            BODY_LEFT + (BODY_WIDTH - width) / 2,
            self.y + DEADLINE_PAD,
            text,
            DEADLINE,
            leading=BODY_LEADING,
        )
        self.y += height + DEADLINE_AFTER

    def access(self, p: Page) -> None:
        """The QR code, the instructions beside it, and the link typed out under both:
        kept together on one page."""
        w = p.wording
        left = BODY_LEFT + layout.QR_INDENT
        width = BODY_WIDTH - layout.QR_INDENT
        how = [wrap(line, self.text, BODY, width) for line in w.how]
        personal = wrap(w.personal, self.text, PERSONAL, width)
        link_lines = wrap(p.link, self.mono, LINK, BODY_WIDTH)
        body_line = BODY * BODY_LEADING * PT
        how_height = (
            HOW_PAD
            + HOW_TITLE * BODY_LEADING * PT
            + HOW_TITLE_AFTER
            + sum(len(lines) for lines in how) * body_line
            + PARAGRAPH_AFTER
            + len(personal) * PERSONAL * BODY_LEADING * PT
            + PARAGRAPH_AFTER
        )
        link_height = (
            1.0 + LINK_LABEL * BODY_LEADING * PT + len(link_lines) * LINK * LINK_LEADING * PT
        )
        self.room(max(layout.QR_SIZE, how_height) + link_height)
        top = self.y
        self.qr(p.link, BODY_LEFT, top)
        y = top + HOW_PAD
        self.draw(left, y, w.how_title, HOW_TITLE, leading=BODY_LEADING)
        y += HOW_TITLE * BODY_LEADING * PT
        self.rule(left, y, left + width, y, 0.5, RULE)
        y += HOW_TITLE_AFTER
        for lines in how:
            for line in lines:
                self.draw(left, y, line, BODY, leading=BODY_LEADING)
                y += body_line
        y += PARAGRAPH_AFTER
        for line in personal:
            self.draw(left, y, line, PERSONAL, leading=BODY_LEADING)
            y += PERSONAL * BODY_LEADING * PT
        # Under the code and the instructions (whose box is at least the code's height
        # plus its padding), a paragraph gap and 1 mm further down: where the WeasyPrint
        # pages had it (measured on them with pdftotext -bbox).
        y = max(top + HOW_PAD + layout.QR_SIZE, y + PARAGRAPH_AFTER) + PARAGRAPH_AFTER + 1.0
        self.draw(BODY_LEFT, y, w.link_label, LINK_LABEL, leading=BODY_LEADING)
        y += LINK_LABEL * BODY_LEADING * PT
        for line in link_lines:
            self.draw(BODY_LEFT, y, line, LINK, leading=LINK_LEADING, font=MONO_FONT)
            y += LINK * LINK_LEADING * PT
        self.y = y

    def line(self, w: Wording, code: str, account: str) -> None:
        """The LINE box under the link: how to add the official account (its ID as typed,
        and a small QR code of its add-friend URL at the right, far smaller than the link's)
        and send the code, the code in the monospace font; kept together on one page."""
        # The text left of the add-friend QR code (its quiet zone is its margin).
        inner = BODY_WIDTH - LINE_PAD - layout.LINE_QR_SIZE
        steps = [wrap(s.format(account=account), self.text, LINE_STEP, inner) for s in w.line_steps]
        title_line = LINE_TITLE * BODY_LEADING * PT
        step_line = LINE_STEP * BODY_LEADING * PT
        code_line = LINE_CODE * LINK_LEADING * PT
        height = max(
            2 * LINE_PAD + title_line + sum(len(lines) for lines in steps) * step_line + code_line,
            layout.LINE_QR_SIZE,
        )
        self.y += LINE_BEFORE
        self.room(height)
        c = self.canvas
        c.setStrokeColorRGB(*RULE)
        c.setLineWidth(0.6)
        c.rect(
            BODY_LEFT * mm,
            (layout.PAGE_HEIGHT - self.y - height) * mm,
            BODY_WIDTH * mm,
            height * mm,
            stroke=1,
            fill=0,
        )
        left = BODY_LEFT + LINE_PAD
        y = self.y + LINE_PAD
        self.draw(left, y, w.line_title, LINE_TITLE, leading=BODY_LEADING)
        y += title_line
        for lines in steps:
            for text in lines:
                self.draw(left, y, text, LINE_STEP, leading=BODY_LEADING)
                y += step_line
        label_width = self.text.width(w.line_code_label, LINE_STEP)
        # The label's line box as tall as the code's, so that both share a baseline.
        self.draw(
            left, y, w.line_code_label, LINE_STEP, leading=LINK_LEADING * LINE_CODE / LINE_STEP
        )
        self.draw(left + label_width, y, code, LINE_CODE, leading=LINK_LEADING, font=MONO_FONT)
        self.qr(
            add_friend_url(account),
            BODY_LEFT + BODY_WIDTH - layout.LINE_QR_SIZE,
            self.y + (height - layout.LINE_QR_SIZE) / 2,
            size=layout.LINE_QR_SIZE,
            same=True,
        )
        self.y += height

    def qr(
        self, link: str, x: float, top: float, size: float = layout.QR_SIZE, *, same: bool = False
    ) -> None:
        """The link's QR code, ``size`` mm wide with its quiet zone of
        ``layout.QR_BORDER`` modules, as one filled path of a rectangle per run of dark
        modules in a row. Error correction M (15 %) tolerates a fold or a smudge.

        The path is written in module units under a scaling matrix (``cm``), so its
        numbers are small integers: as PDF operators directly (``addLiteral``), a
        thousand times faster than a ReportLab path object formatting each float.
        ``same``: the code is the same on every letter (the add-friend URL), so its path is
        made once (encoding a symbol is most of a QR code's cost)."""
        side, runs = _qr_runs(link) if same else _qr_runs.__wrapped__(link)
        modules = side + 2 * layout.QR_BORDER
        unit = size / modules * mm
        left = x * mm + layout.QR_BORDER * unit
        bottom = (layout.PAGE_HEIGHT - top) * mm - (modules - layout.QR_BORDER) * unit
        self.canvas.addLiteral(
            f"q 0 g {unit:.5f} 0 0 {unit:.5f} {left:.3f} {bottom:.3f} cm\n{runs}\nf Q"
        )


@functools.lru_cache(maxsize=8)
def _qr_runs(link: str) -> tuple[int, str]:
    """The QR code of ``link``: its width in modules, and a ``re`` (rectangle) operator per
    run of dark modules in a row, in module units with the origin at its bottom-left."""
    rows = segno.make(link, error="m", micro=False, boost_error=False).matrix
    ops = []
    last = len(rows) - 1
    for r, row in enumerate(rows):
        y = last - r  # PDF's y runs up, the matrix's rows down
        c, n = 0, len(row)
        while c < n:
            if row[c] & 1:
                start = c
                while c < n and row[c] & 1:
                    c += 1
                ops.append(f"{start} {y} {c - start} 1 re")
            else:
                c += 1
    return len(rows), "\n".join(ops)


def render_letters(letters: Sequence[Letter], *, today: date | None = None) -> bytes:
    """``letters`` as one PDF, each starting on a new A4 page, in its own language.

    Raises ``ValueError`` for an empty sequence or anything that is not a ``Letter``
    (a ``Letter`` checks its own fields when it is made)."""
    if not letters:
        raise ValueError("no letters to print")
    for item in letters:
        if not isinstance(item, Letter):
            raise ValueError(f"not a Letter: {item!r}")
    today = today or timezone.localdate()
    out = io.BytesIO()
    fonts()
    canvas = Canvas(
        out,
        pagesize=(layout.PAGE_WIDTH * mm, layout.PAGE_HEIGHT * mm),
        pageCompression=1,
        invariant=1,
        # Every page starts with its initial font set: ours, or Helvetica would be named
        # (not embedded) on every page though no text uses it.
        initialFontName=TEXT_FONT,
        initialFontSize=BODY,
    )
    canvas.setTitle(WORDING[letters[0].language].document_title)
    canvas.setAuthor("Hyoka")
    sheet = Sheet(canvas)
    for letter in letters:
        canvas.setFillColorRGB(*INK)
        sheet.letter(page(letter, today))
    canvas.save()
    return out.getvalue()


def _render_batch(job: tuple[Sequence[Letter], date]) -> bytes:
    return render_letters(job[0], today=job[1])


def render_letters_batched(
    letters: Sequence[Letter],
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[int, int], None] | None = None,
    today: date | None = None,
    workers: int = 1,
) -> Iterator[bytes]:
    """``letters`` as a series of PDFs of ``batch_size`` letters each, in order.

    ``on_progress(done, total)`` is called after each batch. A caller that needs one file
    concatenates the batches (each is a complete PDF; see ``bench/letters.py``); one that
    prints can send each batch to the printer as it comes.

    ``workers > 1`` renders batches in that many forked processes (ReportLab is pure
    Python and holds the GIL: processes, not threads, use a second core). Fork, because
    the children inherit Django's set-up; so call it from a command or a task, not from a
    process running threads of its own."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    if workers < 1:
        raise ValueError("the number of workers must be at least 1")
    total = len(letters)
    today = today or timezone.localdate()
    jobs = [(letters[start : start + batch_size], today) for start in range(0, total, batch_size)]
    done = 0
    if workers == 1 or len(jobs) == 1:
        results: Iterator[bytes] = map(_render_batch, jobs)
        pool = None
    else:
        fonts()  # loaded once, before the fork: the children share it
        pool = multiprocessing.get_context("fork").Pool(min(workers, len(jobs)))
        results = pool.imap(_render_batch, jobs)
    try:
        for (batch, _), pdf in zip(jobs, results, strict=True):
            done += len(batch)
            if on_progress is not None:
                on_progress(done, total)
            yield pdf
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
