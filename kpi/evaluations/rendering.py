"""Rendering an evaluation's PDF: the signed one, once, after sign-off (its task), and
unsigned drafts for review. Everything here reads the evaluation's frozen snapshot."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.db import transaction

from surveys.history import Reason, recorded_by, save_with_reason

from .models import Evaluation
from .selectors import evaluation_locked


def evaluation_render_signed(*, evaluation_id: int) -> Evaluation:
    """Render, sign and store the signed-off evaluation's PDF, once."""
    # Imported here, not at the top: WeasyPrint and pyHanko take about two seconds to
    # import, which every process (web, worker, command) would pay at start; only those
    # that render pay it, once. (Not to break an import cycle: tests/test_import_cycles.py.)
    from .report.render import render_pdf
    from .signing import sign_pdf

    evaluation = Evaluation.objects.select_related("study").get(pk=evaluation_id)
    if evaluation.status == Evaluation.Status.DRAFT or evaluation.pdf:
        return evaluation
    # Rendering takes a second or two: do it before taking the lock.
    pdf = sign_pdf(
        render_pdf(evaluation, draft=False),
        reason=f"Hyoka evaluation {evaluation.pk}: signed off by {evaluation.signer_name}",
    )
    with transaction.atomic():
        evaluation = evaluation_locked(evaluation)
        if evaluation.pdf:
            return evaluation  # another rendering stored it first
        evaluation.pdf.save(download_name(evaluation), ContentFile(pdf), save=False)
        evaluation.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
        evaluation.pdf_size = len(pdf)
        evaluation.rendering = Evaluation.Rendering.DONE
        evaluation.rendering_error = ""
        with recorded_by(None):  # the system, even when rendered in the signer's request
            save_with_reason(evaluation, Reason.PDF_STORED.value)
    return evaluation


def evaluation_render_failed(*, evaluation_id: int, error: str) -> None:
    Evaluation.objects.filter(pk=evaluation_id, rendering=Evaluation.Rendering.PENDING).update(
        rendering=Evaluation.Rendering.FAILED, rendering_error=error[:4000]
    )


def evaluation_preview(evaluation: Evaluation, *, language: str | None = None) -> bytes:
    """An unsigned PDF marked as a draft (for review before signing off)."""
    from .report.render import render_pdf  # at first use: see evaluation_render_signed

    return render_pdf(evaluation, draft=True, language=language)


def download_name(evaluation: Evaluation) -> str:
    """A file name that says what the file is: study, evaluation, status, language."""
    state = "signed" if evaluation.is_frozen else "draft"
    study, language = evaluation.study.code, evaluation.language
    return f"hyoka-{study}-evaluation-{evaluation.pk}-{state}-{language}.pdf"
