"""Text typed by participants (free-text answers, through the questionnaire or the API) or
by managers (references, study and site names, a sign-off statement) never becomes markup:
in the admin it is escaped, the API answers JSON only (never an HTML page), and the PDF
prints it as characters, with no link or image made from it.

What the PDF shows: study, site and KPI names, answer labels and the sign-off (signer,
role, statement). Participants' free-text answers and references are not in it at all;
the test checks both facts.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from pypdf import PdfReader
from rest_framework.test import APIClient

from kpi import evaluations, services
from kpi.loading import kpis_path, load_kpis
from kpi.models import Evaluation, EvaluationRun
from kpi.report import render
from surveys import services as survey_services
from surveys.models import Instrument, Membership, Question, Response
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, complete_answers

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
LINK = '<a href="javascript:alert(1)">x</a>'
FILE = '<img src="file:///etc/passwd">'
PAYLOADS = [SCRIPT, ATTRIBUTE, LINK, FILE]
# What would run or load if any of them reached a page as markup.
LIVE = ["<script>alert", "<img src=x", 'href="javascript:', '<img src="file:', "onerror=alert(1)>"]
PASSWORD = "correct horse battery staple"


def _escaped(payload: str) -> str:
    return (
        payload.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def _assert_inert(html: str, *shown: str) -> None:
    for live in LIVE:
        assert live not in html, live
    for payload in shown:
        assert _escaped(payload) in html, payload


@pytest.fixture
def hostile(db):  # type: ignore[no-untyped-def]
    """A study, site and participant named with payloads, and a submitted response whose
    free-text answer holds all of them."""
    study = StudyFactory(name_ja=f"調査 {SCRIPT}", name_en=f"Study {LINK}")
    instrument = Instrument.objects.create(study=study, version=1, title_ja=f"票 {ATTRIBUTE}")
    Question.objects.create(
        instrument=instrument,
        code="comment",
        order=1,
        type=Question.Type.TEXT,
        required=True,
        text_ja="ご意見",
        text_en="Comments",
    )
    survey_services.instrument_publish(instrument=instrument)
    site = SiteFactory(study=study, name_ja=f"区 {ATTRIBUTE}", name_en=f"Ward {FILE}")
    participant = ParticipantFactory(site=site, reference=f"R {ATTRIBUTE}"[:64])
    response = survey_services.response_submit(
        participant=participant, answers={"comment": " ".join(PAYLOADS)}, language="ja"
    )
    return response


@pytest.fixture
def admin_client(db) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    return client


def test_the_admin_escapes_free_text_references_and_names(hostile, admin_client):
    response = hostile
    participant = response.participant
    study = participant.site.study
    pages = {
        f"/admin/surveys/response/{response.pk}/change/": PAYLOADS,  # the answer, in full
        "/admin/surveys/response/": [],
        "/admin/surveys/participant/": [f"R {ATTRIBUTE}"],
        f"/admin/surveys/participant/{participant.pk}/change/": [f"R {ATTRIBUTE}"],
        "/admin/surveys/study/": [f"調査 {SCRIPT}"],
        f"/admin/surveys/study/{study.pk}/change/": [f"調査 {SCRIPT}"],
        f"/admin/surveys/site/{participant.site.pk}/change/": [f"区 {ATTRIBUTE}"],
        f"/admin/kpi/studyresults/{study.pk}/change/": [f"調査 {SCRIPT}"],
    }
    for path, shown in pages.items():
        page = admin_client.get(path)
        assert page.status_code == 200, path
        _assert_inert(page.content.decode(), *shown)


def test_the_questionnaire_shows_a_draft_of_free_text_escaped(hostile, db):
    participant = ParticipantFactory(site=hostile.participant.site)
    survey_services.response_save_draft(
        participant=participant, answers={"comment": " ".join(PAYLOADS)}, language="ja"
    )
    html = Client().get(f"/r/{participant.token}/").content.decode()
    _assert_inert(html, " ".join(PAYLOADS))


@pytest.mark.parametrize(
    ("suffix", "headers"),
    [
        ("?format=api", {}),
        ("?format=html", {}),
        ("", {"Accept": "text/html"}),
        ("", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),  # a browser
    ],
)
def test_the_api_never_answers_html(hostile, suffix, headers):
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("api-root", password=PASSWORD))
    for path in [f"/api/v1/responses/{hostile.pk}/", "/api/v1/participants/", "/api/v1/studies/"]:
        answer = client.get(path + suffix, headers=headers)
        assert answer["Content-Type"].startswith("application/json"), (path, suffix)
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert b"<html" not in answer.content.lower()
    # The JSON a browser asking for HTML gets carries the text as a JSON string only.
    detail = client.get(f"/api/v1/responses/{hostile.pk}/", headers={"Accept": "*/*"}).json()
    assert detail["answers"]["comment"] == " ".join(PAYLOADS)


def test_the_answer_comes_back_as_written_through_the_api(hostile, db):
    """Stored as typed, not pre-escaped: escaping belongs to whatever renders it."""
    assert Response.objects.get(pk=hostile.pk).answers.get().text_value == " ".join(PAYLOADS)


# --- the PDF ---------------------------------------------------------------------------


def _evaluation(study_name: str, site_name: str, statement: str) -> tuple[Evaluation, bytes]:
    from tests.factories import reference_instrument

    study = StudyFactory(name_ja=study_name)
    reference_instrument(study)
    load_kpis(study=study, path=kpis_path())
    site = SiteFactory(study=study, name_ja=site_name)
    for n in range(3):
        survey_services.response_submit(
            participant=ParticipantFactory(site=site, reference=f"REF-{ATTRIBUTE}-{n}"[:64]),
            answers=complete_answers(),
            language="ja",
        )
    run = services.run_execute(
        run_id=EvaluationRun.objects.create(study=study, trigger="command").pk
    )
    evaluation = evaluations.evaluation_create(run=run, user=None, language="ja")
    signer = User.objects.create_user(f"signer-{study.pk}", password=PASSWORD, is_staff=True)
    signer.user_permissions.set(Permission.objects.filter(codename="sign_off_evaluation"))
    Membership.objects.create(user=signer, site=site, role=Membership.Role.SIGNER)
    signer = User.objects.get(pk=signer.pk)
    evaluations.evaluation_sign_off(
        evaluation=evaluation,
        user=signer,
        password=PASSWORD,
        statement=statement,
        signer_name=f"署名者 {SCRIPT}",
        signer_role=f"役職 {FILE}",
    )
    evaluation.refresh_from_db()
    return evaluation, render.render_pdf(evaluation, draft=False, language="ja")


def _facts(pdf: bytes) -> tuple[str, list[str], int]:
    """Extracted text (no whitespace), the URIs of link annotations, the images drawn."""
    import io

    reader = PdfReader(io.BytesIO(pdf))
    text = re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in reader.pages))
    uris, images = [], 0
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A") or {}
            uris.append(str(action.get("/URI", "")))
        images += len(page.images)
    return text, uris, images


def test_the_pdf_prints_names_and_the_statement_as_text_without_links_or_images(
    db, no_render_on_commit
):
    _signed, pdf = _evaluation(f"調査 {SCRIPT}", f"区 {ATTRIBUTE}", f"確認しました。 {LINK} {FILE}")
    text, uris, images = _facts(pdf)

    for payload in [f"調査 {SCRIPT}", f"区 {ATTRIBUTE}", LINK, FILE, f"署名者 {SCRIPT}"]:
        assert re.sub(r"\s+", "", payload) in text, payload
    # The report has no link and no image of its own (its charts are drawn): so none was
    # made from a payload, and file:///etc/passwd was never fetched into it.
    assert uris == []
    assert images == 0
    # Participants' references and free text are not in the report at all.
    assert "REF-" not in text


@pytest.fixture
def no_render_on_commit(monkeypatch):  # type: ignore[no-untyped-def]
    """The test renders the PDF itself; the sign-off's task would render it again."""
    monkeypatch.setattr("kpi.evaluations._enqueue_render", lambda evaluation_id: None)
