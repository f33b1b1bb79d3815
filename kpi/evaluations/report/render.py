"""HTML to PDF with WeasyPrint: the evaluation report, A4, Japanese by default."""

from __future__ import annotations

import contextlib
import gc
import io
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import weasyprint
from django.template.loader import render_to_string
from django.utils import translation
from weasyprint.text.fonts import FontConfiguration

from surveys.bidi import strip_bidi_controls

from .. import evidence as evidences
from ..models import Evaluation
from . import context, phrases
from .fetcher import StaticFilesFetcher, base_url, static_root

LANGUAGES = ("ja", "en")
TEMPLATE = "kpi/report/report.html"
#: The report's stylesheets, under ``static/``, in cascade order.
STYLESHEETS = ("kpi/report.css", "kpi/report-front.css")


#: PDF/A-3 in its accessible conformance: tagged (headings, tables, reading order, the
#: document's language), Unicode text, and data files attached as associated files.
#: WeasyPrint 70 offers it as a variant that turns ``pdf_tags`` on.
PDF_VARIANT = "pdf/a-3a"


def render_html(
    evaluation: Evaluation,
    *,
    draft: bool,
    language: str | None = None,
    evidence: evidences.Evidence | None = None,
    linked_stylesheets: bool = True,
) -> str:
    """The report's HTML (what ``render_pdf`` prints), in ``language`` or the evaluation's.

    ``linked_stylesheets=False`` leaves out the ``<link>`` to ``STYLESHEETS``, which
    ``render_pdf`` hands WeasyPrint already parsed."""
    language = report_language(evaluation, language)
    evidence = evidence or evidences.build(evaluation)
    with translation.override(language):
        data = context.build(evaluation, draft=draft, language=language, evidence=evidence)
        data["stylesheets"] = STYLESHEETS if linked_stylesheets else ()
        return render_to_string(TEMPLATE, data)


def report_language(evaluation: Evaluation, language: str | None) -> str:
    """``language``, else the evaluation's, else Japanese; one the report is written in."""
    language = language or evaluation.language or "ja"
    if language not in LANGUAGES:
        raise ValueError(f"the report is written in Japanese or English, not {language!r}")
    return language


def render_pdf(evaluation: Evaluation, *, draft: bool, language: str | None = None) -> bytes:
    """The evaluation report as PDF bytes.

    ``draft=True`` marks every page "DRAFT — not signed off" and leaves the sign-off block
    empty; ``draft=False`` is the document that is signed. Only files under ``static/``
    are read while rendering (see ``fetcher``); nothing is fetched from the network.
    """
    language = report_language(evaluation, language)  # refused before any work
    with fewer_collections():
        return _render_pdf(evaluation, draft=draft, language=language)


def _render_pdf(evaluation: Evaluation, *, draft: bool, language: str) -> bytes:
    # The report is Japanese or English, which needs no explicit direction control: a name
    # holding one (U+202E, surveys/bidi.py) is printed as typed, never reordered.
    evidence = evidences.build(evaluation)
    html = strip_bidi_controls(
        render_html(
            evaluation,
            draft=draft,
            language=language,
            evidence=evidence,
            linked_stylesheets=False,
        )
    )
    # Lines break between phrases only: 実施地域, "99 %" and "227 / 229" stay whole.
    html = phrases.document(html)
    fetcher = StaticFilesFetcher()
    font_config, stylesheets = parsed_stylesheets()
    document = weasyprint.HTML(string=html, base_url=base_url(), url_fetcher=fetcher)
    when = evaluation.signed_off_at or evaluation.created_at
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB profile for the PDF/A output intent and never closes
        # it (weasyprint/pdf/__init__.py, ColorProfile): the file is dropped, and warned
        # about, at once, inside this call.
        warnings.filterwarnings("ignore", category=ResourceWarning, message=".*sRGB2014.icc")
        pdf = document.write_pdf(
            pdf_variant=PDF_VARIANT,
            stylesheets=stylesheets,
            font_config=font_config,
            finisher=associated_files_once,
            attachments=[
                weasyprint_attachment(attachment, fetcher, when)
                for attachment in evidence.all_attachments()
            ],
        )
    assert pdf is not None
    return pdf


_parsed = threading.local()


def parsed_stylesheets() -> tuple[FontConfiguration, list[weasyprint.CSS]]:
    """``STYLESHEETS`` parsed once per thread, with the font configuration their
    ``@font-face`` (the embedded IPAex Gothic) is registered in; parsed again when a file
    changes. Parsing them and loading the font was a tenth of each render.

    WeasyPrint takes these as user stylesheets, below the author's ``<style>`` of the
    report (margin-box texts) in the cascade: report.css sets no margin-box ``content``
    that the page's ``<style>`` could then override unintentionally."""
    root = static_root()
    paths = [root / name for name in STYLESHEETS]
    key = (root, tuple(path.stat().st_mtime_ns for path in paths))
    cached = getattr(_parsed, "value", None)
    if cached is None or cached[0] != key:
        font_config = FontConfiguration()
        fetcher = StaticFilesFetcher()
        sheets = [
            weasyprint.CSS(url=path.as_uri(), url_fetcher=fetcher, font_config=font_config)
            for path in paths
        ]
        cached = _parsed.value = (key, font_config, sheets)
    return cached[1], cached[2]


#: The cyclic garbage collector's first threshold while a report is rendered (Python's
#: default is 700 allocations). WeasyPrint allocates hundreds of thousands of objects
#: (boxes, tokens, PDF objects) that live until the document is written; at 700 the
#: collector runs hundreds of times meanwhile, and each of its full passes walks every
#: object of the process: a fifth of the reference report's CPU time. Nothing is left
#: uncollected: the collector still runs, 14 times less often, and as usual afterwards.
RENDER_GC_THRESHOLD = 10_000

_gc_lock = threading.Lock()
_gc_renders = 0
_gc_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's first threshold to ``RENDER_GC_THRESHOLD`` for the duration
    (process-wide, so counted: the thresholds in force before the first of overlapping
    renders in threads are the ones put back after the last)."""
    global _gc_renders, _gc_saved
    with _gc_lock:
        if _gc_renders == 0:
            _gc_saved = gc.get_threshold()
            if _gc_saved[0] and _gc_saved[0] < RENDER_GC_THRESHOLD:
                gc.set_threshold(RENDER_GC_THRESHOLD, *_gc_saved[1:])
        _gc_renders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_renders -= 1
            if _gc_renders == 0:
                gc.set_threshold(*_gc_saved)


def associated_files_once(document: object, pdf: Any) -> None:
    """List each attachment once in the catalog's /AF: WeasyPrint 70's PDF/A-3 step adds
    every file specification twice (once from the name tree, once found among the
    objects)."""
    if "AF" in pdf.catalog:
        unique = list(dict.fromkeys(pdf.catalog["AF"]))
        pdf.catalog["AF"].clear()
        pdf.catalog["AF"].extend(unique)


def weasyprint_attachment(
    attachment: evidences.Attachment, fetcher: StaticFilesFetcher, when: object
) -> weasyprint.Attachment:
    """An evidence file attached as the exact bytes its digest is taken of: whoever holds
    the (signed) file can recompute the SHA-256 printed in it."""
    return weasyprint.Attachment(
        file_obj=io.BytesIO(attachment.data),
        url_fetcher=fetcher,
        name=attachment.name,
        description=f"{attachment.description}; SHA-256 {attachment.sha256}",
        created=when,
        modified=when,
        relationship=attachment.relationship,
    )
