"""Letters to PDF with WeasyPrint: one document, a page (or more) per letter.

The HTML comes from ``templates/fieldwork/letters/letters.html`` and its stylesheet
``letters.css`` beside it (rendered from ``layout``'s numbers). Fonts are the project's own
files under ``static/fonts`` (IPAex Gothic for the text, DejaVu Sans Mono for the typed-out
link), embedded as subsets, and nothing else is read while rendering (``fetcher``).

Speed: the template and the stylesheet are compiled once per process, and the stylesheet
is parsed once per document; a batch of letters is one HTML document, so the fonts are
loaded and subset once per batch, not per letter.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

import segno
import weasyprint
from django.template import Context, Template
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from weasyprint.text.fonts import FontConfiguration

from surveys.bidi import strip_bidi_controls

from . import layout
from .fetcher import FontsFetcher, base_url
from .letter import Letter

TEMPLATE = "fieldwork/letters/letters.html"
STYLESHEET = "fieldwork/letters/letters.css"
DEFAULT_BATCH = 200

_WEEKDAYS_JA = "月火水木金土日"
_MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def format_date(day: date, language: str, *, weekday: bool = False) -> str:
    """A date as a letter prints it: 2027年1月15日（金） or Friday 15 January 2027."""
    if language == "ja":
        text = f"{day.year}年{day.month}月{day.day}日"
        return text + f"（{_WEEKDAYS_JA[day.weekday()]}）" if weekday else text
    text = f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{_WEEKDAYS_EN[day.weekday()]} {text}" if weekday else text


def qr_svg(link: str) -> SafeString:
    """The link's QR code as inline SVG: one path, black modules on no background, with
    a quiet zone of ``layout.QR_BORDER`` modules; sized by the stylesheet.

    Error correction M (15 %) tolerates a fold or a smudge across the code. segno writes
    the path from the link alone, so the SVG holds nothing a template could misplace."""
    code = segno.make(link, error="m", micro=False, boost_error=False)
    return mark_safe(  # noqa: S308 - segno's own SVG of an already-checked ASCII URL
        code.svg_inline(border=layout.QR_BORDER, omitsize=True, svgclass="qr", lineclass=None)
    )


@dataclass(frozen=True)
class Page:
    """What the template shows for one letter (strings cleaned of direction controls)."""

    letter: Letter
    lang: str
    reference: str
    name: str
    address: str  # lines joined by newlines: the stylesheet keeps them (pre-line)
    sender: str
    paragraphs: tuple[str, ...]
    dated: str
    deadline: str
    link: str
    qr: SafeString


def page(letter: Letter, today: date) -> Page:
    clean = strip_bidi_controls
    return Page(
        letter=letter,
        lang=letter.language,
        reference=clean(letter.reference),
        name=clean(letter.addressee_name),
        address="\n".join(clean(line) for line in letter.address_lines),
        sender="\n".join(clean(line) for line in letter.sender_lines),
        paragraphs=tuple(
            p.strip()
            for p in clean(letter.purpose).replace("\r\n", "\n").split("\n\n")
            if p.strip()
        ),
        dated=format_date(letter.dated or today, letter.language),
        deadline=format_date(letter.deadline, letter.language, weekday=True),
        link=letter.link,
        qr=qr_svg(letter.link),
    )


@functools.cache
def _template() -> Template:
    return get_template(TEMPLATE).template  # type: ignore[attr-defined,no-any-return]


@functools.cache
def _stylesheet_text() -> str:
    values = {
        name: getattr(layout, name)
        for name in dir(layout)
        if name.isupper() and not name.startswith("_")
    }
    return get_template(STYLESHEET).render(values)


def render_html(letters: Sequence[Letter], *, today: date | None = None) -> str:
    """The HTML of ``letters`` (what ``render_letters`` prints), one section per letter."""
    today = today or timezone.localdate()
    pages = [page(letter, today) for letter in letters]
    lang = pages[0].lang if pages else "ja"
    return _template().render(Context({"pages": pages, "lang": lang}, autoescape=True))


def render_letters(letters: Sequence[Letter], *, today: date | None = None) -> bytes:
    """``letters`` as one PDF, each starting on a new A4 page, in its own language.

    Raises ``ValueError`` for an empty sequence or anything that is not a ``Letter``
    (a ``Letter`` checks its own fields when it is made)."""
    if not letters:
        raise ValueError("no letters to print")
    for item in letters:
        if not isinstance(item, Letter):
            raise ValueError(f"not a Letter: {item!r}")
    fetcher = FontsFetcher()
    fonts = FontConfiguration()
    css = weasyprint.CSS(
        string=_stylesheet_text(), base_url=base_url(), url_fetcher=fetcher, font_config=fonts
    )
    html = weasyprint.HTML(
        string=render_html(letters, today=today), base_url=base_url(), url_fetcher=fetcher
    )
    pdf = html.write_pdf(stylesheets=[css], font_config=fonts)
    assert pdf is not None
    return pdf


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

    ``workers > 1`` renders batches in that many forked processes (WeasyPrint is pure
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
