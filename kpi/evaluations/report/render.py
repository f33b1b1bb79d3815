"""HTML to PDF with WeasyPrint: the evaluation report, A4, Japanese by default."""

from __future__ import annotations

import io

import weasyprint
from django.template.loader import render_to_string
from django.utils import translation

from surveys.bidi import strip_bidi_controls

from .. import snapshot as snapshots
from ..models import Evaluation
from . import context
from .fetcher import StaticFilesFetcher, base_url

LANGUAGES = ("ja", "en")
ATTACHMENT = "snapshot.json"
TEMPLATE = "kpi/report/report.html"


def render_html(evaluation: Evaluation, *, draft: bool, language: str | None = None) -> str:
    """The report's HTML (what ``render_pdf`` prints), in ``language`` or the evaluation's."""
    language = language or evaluation.language or "ja"
    if language not in LANGUAGES:
        raise ValueError(f"the report is written in Japanese or English, not {language!r}")
    with translation.override(language):
        return render_to_string(TEMPLATE, context.build(evaluation, draft=draft, language=language))


def render_pdf(evaluation: Evaluation, *, draft: bool, language: str | None = None) -> bytes:
    """The evaluation report as PDF bytes.

    ``draft=True`` marks every page "DRAFT — not signed off" and leaves the sign-off block
    empty; ``draft=False`` is the document that is signed. Only files under ``static/``
    are read while rendering (see ``fetcher``); nothing is fetched from the network.
    """
    # The report is Japanese or English, which needs no explicit direction control: a name
    # holding one (U+202E, surveys/bidi.py) is printed as typed, never reordered.
    html = strip_bidi_controls(render_html(evaluation, draft=draft, language=language))
    fetcher = StaticFilesFetcher()
    document = weasyprint.HTML(string=html, base_url=base_url(), url_fetcher=fetcher)
    pdf = document.write_pdf(attachments=[snapshot_attachment(evaluation, fetcher)])
    assert pdf is not None
    return pdf


def snapshot_attachment(
    evaluation: Evaluation, fetcher: StaticFilesFetcher
) -> weasyprint.Attachment:
    """The results snapshot, attached to the PDF as the exact bytes its digest is taken of:
    whoever holds the (signed) file can recompute the SHA-256 printed in it."""
    when = evaluation.signed_off_at or evaluation.created_at
    return weasyprint.Attachment(
        file_obj=io.BytesIO(snapshots.canonical(evaluation.snapshot)),
        url_fetcher=fetcher,
        name=ATTACHMENT,
        description=f"Hyoka results snapshot, SHA-256 {evaluation.snapshot_sha256}",
        created=when,
        modified=when,
        relationship="Data",
    )
