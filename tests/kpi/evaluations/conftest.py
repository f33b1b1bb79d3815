"""The reference study's report, rendered once per test process for every module that
only reads it.

A render of the 24-page reference report takes seconds; the modules that read the
reference report (figures, front matter, type, charts) rendered the same five PDFs again
and again. ``reference_reports`` builds the study, scores it and renders them once, in
committed data that is flushed again before any test runs (``tests/committed.py``); the
modules that use it share the xdist group ``REFERENCE_REPORTS`` so that one worker renders
them. What a test may then use is only what was produced while the data existed: each
rendering's evaluation (in memory: its rows are gone), PDF, HTML and contents list.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pdfplumber
import pytest
from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.test import override_settings
from django.utils import translation

from kpi.evaluations import evidence as evidences
from kpi.evaluations import services as evaluations
from kpi.evaluations.report import context, render
from kpi.evidence.tsa import serve_authority
from kpi.models import Evaluation, EvaluationRun
from kpi.scoring import execution
from surveys.models import Membership
from tests import committed
from tests.factories import build_reference_study

#: The xdist group of the modules reading ``reference_reports`` (``pytestmark``).
REFERENCE_REPORTS = pytest.mark.xdist_group("reference-reports")

SIGNER = {
    "password": "correct horse battery staple",
    "statement": "I have checked the counts, bases, intervals and verdicts.",
    "signer_name": "Hanako Yamada",
    "signer_role": "Head of child-rearing support",
}


@dataclass(frozen=True)
class Rendering:
    """One render of the reference report, and what it was rendered from."""

    evaluation: Evaluation  # as it was at the render, in memory
    pdf: bytes
    html: str
    contents: list[Any]  # the contents entries (report.front)

    @cached_property
    def document(self) -> pdfplumber.PDF:
        """The PDF opened with pdfplumber, once: its pages keep what was parsed of them,
        which is most of the time a test reading the report takes."""
        return pdfplumber.open(io.BytesIO(self.pdf))


@dataclass(frozen=True)
class ReferenceReports:
    draft: dict[str, Rendering]  # language -> the draft, before sign-off
    final: dict[str, Rendering]  # language -> the signed-off report (unsigned bytes)
    signed_draft: dict[str, Rendering]  # language -> a draft of the signed-off one


def evaluated(study: Any, **options: Any) -> Evaluation:
    """``study`` scored now and frozen as an evaluation (``options``: ``language``)."""
    run = EvaluationRun.objects.create(study=study, trigger="command")
    return evaluations.evaluation_create(
        run=execution.run_execute(run_id=run.pk), user=None, **options
    )


@contextlib.contextmanager
def signing_and_stamping(django_db_blocker, signing_settings, tsa_files) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Set-up of a module that signs reports once: database access outside any test, in
    one transaction rolled back on leaving; signatures by the test certificate, each
    timestamped by a development authority on 127.0.0.1 (yielded), trusted."""
    with (
        django_db_blocker.unblock(),
        transaction.atomic(),
        override_settings(**signing_settings),
        serve_authority(tsa_files) as authority,
        override_settings(
            HYOKA_TSA_URL=authority.url, HYOKA_TSA_TRUST_ROOTS=[str(tsa_files.certificate)]
        ),
    ):
        yield authority
        transaction.set_rollback(True)


def _render(evaluation: Evaluation, *, draft: bool, language: str) -> Rendering:
    evidence = evidences.build(evaluation)
    with translation.override(language):
        contents = context.build(evaluation, draft=draft, language=language, evidence=evidence)[
            "contents"
        ]
    return Rendering(
        evaluation=Evaluation.objects.get(pk=evaluation.pk),
        pdf=render.render_pdf(evaluation, draft=draft, language=language),
        html=render.render_html(evaluation, draft=draft, language=language, evidence=evidence),
        contents=list(contents),
    )


def sign_off(evaluation: Evaluation) -> Evaluation:
    """``evaluation`` signed off by Hanako Yamada, a signer of each of its sites."""
    user = User.objects.create_user("hanako", password=SIGNER["password"], is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="sign_off_evaluation"))
    user = User.objects.get(pk=user.pk)
    for site in evaluation.study.sites.all():  # the report shows every site's results
        Membership.objects.create(user=user, site=site, role=Membership.Role.SIGNER)
    evaluations.evaluation_sign_off(evaluation=evaluation, user=user, **SIGNER)
    evaluation.refresh_from_db()
    return evaluation


@pytest.fixture(scope="session")
def reference_reports(django_db_setup, django_db_blocker) -> ReferenceReports:  # type: ignore[no-untyped-def]
    """The reference evaluation's drafts, in both languages, then the same evaluation
    signed off by Hanako Yamada: its final report in both languages and an English draft
    of it. (The signed PDF itself is made by a task after the sign-off commits, which is
    dropped here: ``test_evidence.py`` signs.)"""
    with committed.committed(django_db_blocker), committed.without_after_commit_work():
        evaluation = evaluated(build_reference_study())
        draft = {lang: _render(evaluation, draft=True, language=lang) for lang in ("ja", "en")}
        evaluation = sign_off(evaluation)
        final = {lang: _render(evaluation, draft=False, language=lang) for lang in ("ja", "en")}
        signed_draft = {"en": _render(evaluation, draft=True, language="en")}
    return ReferenceReports(draft=draft, final=final, signed_draft=signed_draft)
