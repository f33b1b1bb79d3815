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

from kpi.definitions.loading import kpis_path, load_kpis
from kpi.evaluations import services as evaluations
from kpi.evaluations.report import render
from kpi.models import Evaluation, EvaluationRun
from kpi.scoring import execution
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
    run = execution.run_execute(
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
    """Extracted text (no whitespace), the URIs of links out of the document, the images
    drawn."""
    import io

    reader = PdfReader(io.BytesIO(pdf))
    text = re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in reader.pages))
    uris, images = [], 0
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A") or {}
            if action.get("/S") == "/URI":  # the contents' links to its own pages are GoTo
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
    monkeypatch.setattr("kpi.evaluations.services._enqueue_render", lambda evaluation_id: None)


# --- Direction controls (U+202E and the like) ------------------------------------------

from html.parser import HTMLParser  # noqa: E402

from surveys.bidi import BIDI_CONTROLS  # noqa: E402
from surveys.models import Participant  # noqa: E402

# Every explicit direction control Unicode has: embeddings, overrides, isolates, marks.
CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
OVERRIDE = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "ITA-\u202e1000" shows as "ITA-0001"


def test_direction_controls_are_removed_where_answers_and_references_come_in(hostile, db):
    site = hostile.participant.site
    for control in CONTROLS:
        participant = ParticipantFactory(site=site)
        survey_services.response_save_draft(
            participant=participant, answers={"comment": f"A{control}BC"}, language="ja"
        )
        assert participant.response.answers.get().text_value == "ABC", hex(ord(control))
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("bidi-root", password=PASSWORD))
    created = api.post(
        "/api/v1/participants/",
        {"site": site.pk, "reference": f"API-{CONTROLS}1"},
        format="json",
    )
    assert created.status_code == 201 and created.json()["reference"] == "API-1"
    survey_services.participants_import_csv(
        study=site.study, data=f"reference,site\nCSV-{CONTROLS}1,{site.code}\n"
    )
    participant = ParticipantFactory(site=site)
    survey_services.response_submit(
        participant=participant, answers={"comment": f"{OVERRIDE}web"}, language="ja"
    )
    stored = list(Participant.objects.values_list("reference", flat=True))
    stored += list(Response.objects.filter(site=site).values_list("answers__text_value", flat=True))
    assert "API-1" in stored and "CSV-1" in stored and "web" in stored
    assert not any(BIDI_CONTROLS.search(text or "") for text in stored)


# Elements that start a paragraph of their own, or isolate their content (<bdi>): an
# override inside one reorders nothing outside it.
ISOLATING = {
    "bdi", "td", "th", "div", "p", "li", "dd", "dt", "h1", "h2", "h3", "h4", "title",
    "option", "textarea", "caption", "label", "legend", "pre", "blockquote",
    "script", "style", "form", "fieldset", "ul", "ol", "table", "thead", "tbody", "tr",
    "body", "html", "head", "main", "nav", "header", "footer", "section", "details",
    "summary", "select", "button",
}  # fmt: skip
VOID = {"br", "img", "input", "meta", "link", "hr", "col", "wbr", "source"}


class DirectionalText(HTMLParser):
    """Collects what each isolating element holds in its own paragraph (an isolating
    child counts as one object, U+FFFC); the ones holding a direction control."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, list[str]]] = [("#root", [])]
        self.exposed: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
        if tag not in VOID:
            self.stack.append((tag, []))

    def handle_data(self, data: str) -> None:
        self.stack[-1][1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or not any(t == tag for t, _ in self.stack[1:]):
            return
        while True:
            name, parts = self.stack.pop()
            text = "".join(parts)
            if name in ISOLATING:
                if BIDI_CONTROLS.search(text) and name not in {"script", "style"}:
                    self.exposed.append(text.strip())
                self.stack[-1][1].append("\ufffc")
            else:
                self.stack[-1][1].append(text)
            if name == tag:
                return


def test_text_stored_with_direction_controls_reorders_nothing_around_it_in_the_admin(
    hostile, admin_client
):
    """Text that holds an override (stored before the input rule, or a name a manager
    typed) is alone in its paragraph on every page that shows it: a table cell, or <bdi>
    where it stands among other words (a history line "old → new"); and where the admin
    puts an object's name among its own words (titles, breadcrumbs, links, messages) the
    name comes without its controls."""
    response = hostile
    participant = response.participant
    reference = f"ITA-{OVERRIDE}1000"
    site_name = f"区{OVERRIDE}ABC"
    study_name = f"調査{OVERRIDE}XYZ"
    answer = f"とても{OVERRIDE}良い"
    Participant.objects.filter(pk=participant.pk).update(reference=reference)
    response.answers.update(text_value=answer)
    type(participant.site).objects.filter(pk=participant.site_id).update(name_ja=site_name)
    study = participant.site.study
    type(study).objects.filter(pk=study.pk).update(name_ja=study_name)
    # A history line old → new: the reference changed in the admin.
    url = f"/admin/surveys/participant/{participant.pk}/change/"
    from tests.surveys.test_admin_scoping import form_values

    data = form_values(admin_client.get(url).content.decode())
    data["reference"] = [f"NEW-{OVERRIDE}2"]
    assert admin_client.post(url, data).status_code == 302
    Participant.objects.filter(pk=participant.pk).update(reference=reference)
    values = {reference, site_name, study_name, answer, f"NEW-{OVERRIDE}2", "NEW-2"}
    pages = [
        "/admin/surveys/participant/",
        url,
        f"/admin/surveys/participant/{participant.pk}/history/",
        "/admin/surveys/response/",
        f"/admin/surveys/response/{response.pk}/change/",
        f"/admin/surveys/response/{response.pk}/history/",
        "/admin/surveys/study/",
        f"/admin/surveys/study/{study.pk}/change/",
        f"/admin/surveys/site/{participant.site_id}/change/",
    ]
    seen = set()
    for path in pages:
        page = admin_client.get(path)
        assert page.status_code == 200, path
        parser = DirectionalText()
        parser.feed(page.content.decode())
        assert all(text in values for text in parser.exposed), (path, parser.exposed)
        seen.update(parser.exposed)
    assert {reference, answer, site_name, study_name} <= seen  # the pages did show them


def test_the_pdf_keeps_direction_controls_inside_each_name_and_drops_them_from_the_sign_off(
    db, no_render_on_commit
):
    """The statement, signer and role are typed at sign-off: stored without controls. A
    name holding an override (typed by a manager) is printed as typed: the report drops
    the controls (it is Japanese or English), so nothing is reordered."""
    signed, pdf = _evaluation(
        f"調査{OVERRIDE}XYZ", f"区{OVERRIDE}ABC", f"確認{OVERRIDE}しました。{CONTROLS}以上"
    )
    assert signed.statement == "確認しました。以上"
    text, _uris, _images = _facts(pdf)
    assert "確認しました。以上" in text
    assert "評価報告書調査XYZ" in text  # the cover: the kind of document, then the name
    assert "区ABC" in text and "CBA" not in text and "ZYX" not in text
