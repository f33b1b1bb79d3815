"""The managers' admin, through the test client: pages render, imports and exports keep
their promises (all or nothing; links shown once; old links stop), responses and published
instruments cannot change, and the response-rate table counts what the database holds."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from surveys import selectors, services
from surveys.models import Choice, Instrument, Participant, Question, Response, Site, Study
from tests.factories import (
    ParticipantFactory,
    SiteFactory,
    StudyFactory,
    complete_answers,
    reference_instrument,
)

# WhiteNoise warns that STATIC_ROOT has not been collected; the admin does not need it here.
pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

TOKEN_IN_LINK = re.compile(r"/r/([A-Za-z0-9_-]{43})/")


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url(name: str, *args: object) -> str:
    return reverse(f"admin:surveys_{name}", args=args)


def english(client: Client) -> Client:
    # The admin follows Accept-Language; the assertions read the English messages.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def manager(db) -> Client:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser("manager", "manager@example.org", "pw-manager-1234")
    client = Client()
    client.force_login(user)
    return english(client)


@pytest.fixture
def viewer(db) -> Client:  # type: ignore[no-untyped-def]
    """A staff user who may look at participants and responses but change nothing."""
    user = User.objects.create_user("viewer", password="pw-viewer-1234", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="surveys",
            codename__in=["view_participant", "view_response", "view_instrument", "view_study"],
        )
    )
    client = Client()
    client.force_login(user)
    return english(client)


def submitted(participant: Participant, **answers: object) -> Response:
    return services.response_submit(
        participant=participant, answers=complete_answers(**answers), language="ja"
    )


def draft(participant: Participant) -> Response:
    return services.response_save_draft(
        participant=participant, answers={"reassured": "agree"}, language="en"
    )


def upload(content: bytes, name: str = "participants.csv") -> io.BytesIO:
    f = io.BytesIO(content)
    f.name = name
    return f


def import_csv(client: Client, study: Study, content: bytes):  # type: ignore[no-untyped-def]
    return client.post(url("participant_import"), {"study": study.pk, "file": upload(content)})


class Cells(HTMLParser):
    """The text of every ``data-count`` cell, per ``data-site`` row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._site: str | None = None
        self._count: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-site" in a:
            self._site = a["data-site"] or "total"
            self.rows[self._site] = {}
        if tag == "td" and "data-count" in a:
            self._count = a["data-count"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._count = None

    def handle_data(self, data: str) -> None:
        if self._site and self._count:
            cells = self.rows[self._site]
            cells[self._count] = cells.get(self._count, "") + data.strip()


# --- Every page renders ----------------------------------------------------------------


def test_every_changelist_and_change_page_renders(manager, participant):
    response = submitted(participant)
    instrument = response.instrument
    question = instrument.questions.get(code="channels")
    pages = [
        url("study_changelist"),
        url("study_change", participant.site.study.pk),
        url("study_add"),
        url("site_changelist"),
        url("site_change", participant.site.pk),
        url("site_add"),
        url("instrument_changelist"),
        url("instrument_change", instrument.pk),
        url("instrument_add"),
        url("question_changelist"),
        url("question_change", question.pk),
        url("question_add"),
        url("participant_changelist"),
        url("participant_change", participant.pk),
        url("participant_import"),
        url("response_changelist"),
        url("response_change", response.pk),
        url("response_changelist") + f"?submitted_at__year={response.submitted_at.year}",  # type: ignore[union-attr]
        url("instrument_new_version", instrument.pk),
        reverse("admin:index"),
    ]
    for page in pages:
        assert manager.get(page).status_code == 200, page


def test_changelist_filters_render(manager, participant):
    submitted(participant)
    site, study = participant.site, participant.site.study
    for page, query in [
        ("participant_changelist", f"site__study__id__exact={study.pk}&site={site.pk}"),
        ("participant_changelist", "response=none&status__exact=active"),
        ("participant_changelist", "response=submitted&q=" + participant.reference),
        ("response_changelist", f"participant__site__study__id__exact={study.pk}&site={site.pk}"),
        ("response_changelist", "status__exact=submitted&source__exact=web&language__exact=ja"),
        ("study_changelist", "status__exact=open&q=" + study.code),
    ]:
        page_response = manager.get(f"{url(page)}?{query}")
        assert page_response.status_code == 200, query
        assert "errornote" not in page_response.content.decode(), query


def test_adding_a_participant_leads_to_the_import(manager):
    response = manager.get(url("participant_add"))
    assert response.status_code == 302
    assert response["Location"] == url("participant_import")
    assert url("participant_import") in manager.get(url("participant_changelist")).content.decode()


def test_the_token_hash_is_never_shown(manager, participant):
    for page in (url("participant_changelist"), url("participant_change", participant.pk)):
        html = manager.get(page).content.decode()
        assert participant.token_hash not in html
        assert "token_hash" not in html


@pytest.mark.parametrize(
    ("page", "make"),
    [
        ("participant_changelist", lambda site, n: ParticipantFactory.create_batch(n, site=site)),
        (
            "response_changelist",
            lambda site, n: [submitted(p) for p in ParticipantFactory.create_batch(n, site=site)],
        ),
        ("study_changelist", lambda site, n: SiteFactory.create_batch(n, study=StudyFactory())),
    ],
)
def test_changelists_run_the_same_queries_for_3_rows_as_for_20(manager, site, page, make):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert manager.get(url(page)).status_code == 200
        return len(ctx.captured_queries)

    make(site, 3)
    few = queries()
    make(site, 17)
    assert queries() == few


# --- Studies: the response-rate table --------------------------------------------------


def test_the_response_rate_table_shows_what_the_database_holds(manager, study):
    setagaya = SiteFactory(study=study, code="setagaya", name_en="Setagaya")
    itabashi = SiteFactory(study=study, code="itabashi", name_en="Itabashi")
    SiteFactory(study=study, code="fuchu", name_en="Fuchu")  # no participants yet
    for site, n_submitted, n_drafts, n_waiting in [(setagaya, 5, 2, 3), (itabashi, 3, 1, 4)]:
        people = ParticipantFactory.create_batch(n_submitted + n_drafts + n_waiting, site=site)
        for p in people[:n_submitted]:
            submitted(p)
        for p in people[n_submitted : n_submitted + n_drafts]:
            draft(p)
    # A withdrawn participant does not count as invited.
    services.participant_withdraw(participant=ParticipantFactory(site=itabashi))
    other_study_site = SiteFactory(code="setagaya")  # same code, another study: not counted
    submitted_elsewhere = ParticipantFactory(site=other_study_site)
    reference_study = other_study_site.study
    reference_instrument(reference_study)
    submitted(submitted_elsewhere)

    page = manager.get(url("study_change", study.pk))
    assert page.status_code == 200
    cells = Cells()
    cells.feed(page.content.decode())

    def expected(sites: list[Site]) -> dict[str, str]:
        participants = Participant.objects.filter(
            site__in=sites, status=Participant.Status.ACTIVE
        ).count()
        responses = Response.objects.filter(participant__site__in=sites)
        drafts = responses.filter(status=Response.Status.DRAFT).count()
        done = responses.filter(status=Response.Status.SUBMITTED).count()
        rate = f"{100 * done / participants:.1f}%" if participants else "—"
        return {
            "participants": str(participants),
            "drafts": str(drafts),
            "submitted": str(done),
            "rate": rate,
        }

    sites = list(Site.objects.filter(study=study))
    assert set(cells.rows) == {"setagaya", "itabashi", "fuchu", "total"}
    for site in sites:
        assert cells.rows[site.code] == expected([site]), site.code
    assert cells.rows["total"] == expected(sites)
    assert cells.rows["setagaya"]["rate"] == "50.0%"  # 5 of 10, the numbers above
    assert cells.rows["total"]["rate"] == "44.4%"  # 8 of 18


def test_the_study_list_shows_the_study_wide_response_rate(manager, participant):
    submitted(participant)
    ParticipantFactory(site=participant.site)
    html = manager.get(url("study_changelist")).content.decode()
    assert "50.0% (1 / 2)" in html


# --- Participants: import --------------------------------------------------------------


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b""], ids=["utf8-bom", "utf8"])
def test_an_import_creates_the_rows_and_shows_links_that_open_their_questionnaire(
    manager, study, bom
):
    setagaya = SiteFactory(study=study, code="setagaya")
    itabashi = SiteFactory(study=study, code="itabashi")
    before = Participant.objects.count()
    content = "reference,site\r\nSET-0001,setagaya\r\nSET-0002,setagaya\r\n板橋-3,itabashi\r\n"
    response = import_csv(manager, study, bom + content.encode())
    assert response.status_code == 200
    html = response.content.decode()
    assert "each stays the same until a manager replaces it" in html
    assert "no-store" in response["Cache-Control"]

    created = {(p.site_id, p.reference): p for p in Participant.objects.filter(site__study=study)}
    assert Participant.objects.count() == before + 3
    assert set(created) == {
        (setagaya.pk, "SET-0001"),
        (setagaya.pk, "SET-0002"),
        (itabashi.pk, "板橋-3"),
    }
    tokens = set(TOKEN_IN_LINK.findall(html))
    assert len(tokens) == 3
    assert {sha256(t) for t in tokens} == {p.token_hash for p in created.values()}
    for token in tokens:
        found = selectors.participant_for_token(token)
        assert found is not None and found.site.study == study
        assert Client().get(f"/r/{token}/").status_code == 200  # the questionnaire opens

    # The download offered in the page holds the same links, with a BOM for Excel.
    uri = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)"[^>]*id="download', html)
    assert uri is not None
    data = base64.b64decode(uri.group(1)).decode("utf-8")
    assert data.startswith("\ufeffreference,site,link\r\n")
    rows = list(csv.DictReader(io.StringIO(data.lstrip("\ufeff"))))
    assert {(r["reference"], r["site"]) for r in rows} == {
        ("SET-0001", "setagaya"),
        ("SET-0002", "setagaya"),
        ("板橋-3", "itabashi"),
    }
    assert {TOKEN_IN_LINK.search(r["link"]).group(1) for r in rows} == tokens  # type: ignore[union-attr]

    # Shown once: the participant pages never show a link again.
    listing = manager.get(url("participant_changelist")).content.decode()
    assert not any(t in listing for t in tokens)


GOOD = "reference,site\nSET-1,setagaya\nSET-2,setagaya\n{bad}\nSET-3,setagaya\n"


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("SET-9,nerima", "“nerima” is not a site of this study"),
        (",setagaya", "The reference is empty."),
        ("SET-1,setagaya", "Same participant as row 2."),
        ("OLD-1,setagaya", "This participant already exists at this site."),
        ("hanako@example.jp,setagaya", "The reference looks like an e-mail address"),
    ],
    ids=["unknown-site", "empty-reference", "duplicate-in-file", "already-exists", "e-mail"],
)
def test_an_import_with_one_bad_row_lists_it_and_creates_nothing(manager, study, bad_row, message):
    site = SiteFactory(study=study, code="setagaya")
    ParticipantFactory(site=site, reference="OLD-1")
    before = set(Participant.objects.values_list("pk", "token_hash"))

    response = import_csv(manager, study, GOOD.format(bad=bad_row).encode())

    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was imported" in html
    row = re.search(r'<tr data-row="(\d+)">(.*?)</tr>', html, re.S)
    assert row is not None
    assert row.group(1) == "4"  # the header is row 1
    assert message in row.group(2)
    assert len(re.findall(r"<tr data-row=", html)) == 1
    assert set(Participant.objects.values_list("pk", "token_hash")) == before
    assert not TOKEN_IN_LINK.search(html)


def test_an_import_lists_every_bad_row_with_its_number(manager, study):
    SiteFactory(study=study, code="setagaya")
    content = "reference,site\nA-1,setagaya\n,setagaya\nA-1,setagaya\nx@y.jp,nerima\n"
    html = import_csv(manager, study, content.encode()).content.decode()
    assert re.findall(r'<tr data-row="(\d+)">', html) == ["3", "4", "5"]
    assert "looks like an e-mail address" in html and "“nerima”" in html
    assert Participant.objects.count() == 0


def test_a_shift_jis_file_gets_a_clear_message_and_creates_nothing(manager, study):
    SiteFactory(study=study, code="setagaya")
    content = "reference,site\n世田谷-1,setagaya\n".encode("shift_jis")
    response = import_csv(manager, study, content)
    assert response.status_code == 200
    assert "The file is not in UTF-8" in response.content.decode()
    assert "CSV UTF-8" in response.content.decode()
    assert Participant.objects.count() == 0


def test_a_file_without_the_columns_is_refused(manager, study):
    SiteFactory(study=study, code="setagaya")
    response = import_csv(manager, study, b"name,ward\nA,setagaya\n")
    assert "needs the columns reference, site" in response.content.decode()
    assert Participant.objects.count() == 0


def test_a_staff_user_without_the_permission_cannot_import(viewer, study):
    SiteFactory(study=study, code="setagaya")
    assert viewer.get(url("participant_changelist")).status_code == 200
    assert (
        url("participant_import") not in viewer.get(url("participant_changelist")).content.decode()
    )
    assert viewer.get(url("participant_import")).status_code == 403
    response = import_csv(viewer, study, b"reference,site\nA-1,setagaya\n")
    assert response.status_code == 403
    assert Participant.objects.count() == 0


# --- Participants: export and withdraw -------------------------------------------------


def action(client: Client, name: str, participants: list[Participant], **extra: str):  # type: ignore[no-untyped-def]
    data = {"action": name, "_selected_action": [str(p.pk) for p in participants], **extra}
    return client.post(url("participant_changelist"), data)


def test_export_asks_first_and_changes_nothing_until_confirmed(manager, site):
    people = ParticipantFactory.create_batch(2, site=site)
    response = action(manager, "export_links", people)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Each participant keeps the same link" in html
    assert 'name="confirmed" value="yes"' in html
    for p in people:
        assert selectors.participant_for_token(p.token) == p


def test_export_gives_the_same_links_every_time_and_earlier_links_keep_working(manager, site):
    people = ParticipantFactory.create_batch(3, site=site)
    chosen, untouched = people[:2], people[2]

    response = action(manager, "export_links", chosen, confirmed="yes")
    again = action(manager, "export_links", chosen, confirmed="yes")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["reference"] for r in rows] == sorted(p.reference for p in chosen)
    assert {r["site"] for r in rows} == {site.code}
    for p in chosen:
        row = next(r for r in rows if r["reference"] == p.reference)
        token = TOKEN_IN_LINK.search(row["link"]).group(1)  # type: ignore[union-attr]
        p.refresh_from_db()
        assert p.token_hash == sha256(token)
        assert selectors.participant_for_token(token) == p
        # The factory's link, random as links were before they were derived, still works.
        assert selectors.participant_for_token(p.token) == p
    assert selectors.participant_for_token(untouched.token) == untouched
    assert again.content == body  # the same links


def test_replacing_links_asks_first_then_the_old_ones_stop_working(manager, site):
    people = ParticipantFactory.create_batch(3, site=site)
    chosen, untouched = people[:2], people[2]
    exported = action(manager, "export_links", chosen, confirmed="yes").content

    confirm = action(manager, "replace_links", chosen)
    assert "stop working" in confirm.content.decode()
    assert action(manager, "export_links", chosen, confirmed="yes").content == exported

    response = action(manager, "replace_links", chosen, confirmed="yes")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    old_rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
    assert [r["reference"] for r in rows] == sorted(p.reference for p in chosen)
    for row, old in zip(rows, old_rows, strict=True):
        new_token = TOKEN_IN_LINK.search(row["link"]).group(1)  # type: ignore[union-attr]
        old_token = TOKEN_IN_LINK.search(old["link"]).group(1)  # type: ignore[union-attr]
        assert new_token != old_token
        found = selectors.participant_for_token(new_token)
        assert found is not None and found.reference == row["reference"]
        assert selectors.participant_for_token(old_token) is None
    for p in chosen:
        assert selectors.participant_for_token(p.token) is None  # the link from before too
    assert selectors.participant_for_token(untouched.token) == untouched
    # The export now gives the new links.
    assert action(manager, "export_links", chosen, confirmed="yes").content == response.content


def test_export_of_a_whole_filtered_list_leaves_withdrawn_participants_out(manager, site):
    active = ParticipantFactory.create_batch(3, site=site)
    withdrawn = ParticipantFactory(site=site)
    services.participant_withdraw(participant=withdrawn)
    elsewhere = ParticipantFactory()
    changelist = url("participant_changelist") + f"?site={site.pk}"

    confirm = manager.post(
        changelist,
        {"action": "export_links", "select_across": "1", "_selected_action": [active[0].pk]},
    )
    assert "1 selected participant is not included" in confirm.content.decode()
    response = manager.post(
        changelist,
        {
            "action": "export_links",
            "select_across": "1",
            "_selected_action": [active[0].pk],
            "confirmed": "yes",
        },
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert sorted(r["reference"] for r in rows) == sorted(p.reference for p in active)
    assert selectors.participant_for_token(elsewhere.token) == elsewhere


def test_a_staff_user_without_the_permission_cannot_export(viewer, site):
    p = ParticipantFactory(site=site)
    response = action(viewer, "export_links", [p], confirmed="yes")
    assert response["Content-Type"].startswith("text/html")
    p.refresh_from_db()
    assert selectors.participant_for_token(p.token) == p


def test_withdraw_asks_first_then_withdraws(manager, site):
    people = ParticipantFactory.create_batch(2, site=site)
    assert "Yes, withdraw them" in action(manager, "withdraw", people).content.decode()
    assert Participant.objects.filter(status=Participant.Status.WITHDRAWN).count() == 0

    response = action(manager, "withdraw", people, confirmed="yes")

    assert response.status_code == 302
    assert Participant.objects.filter(status=Participant.Status.WITHDRAWN).count() == 2
    assert selectors.participant_for_token(people[0].token) is None
    assert "2 participants withdrawn." in manager.get(response["Location"]).content.decode()


# --- Responses -------------------------------------------------------------------------


def test_responses_cannot_be_added_changed_or_deleted(manager, participant):
    response = submitted(participant)
    answers = list(response.answers.values_list("pk", "choice_id"))
    change = url("response_change", response.pk)
    page = manager.get(change).content.decode()
    assert 'name="_save"' not in page
    assert url("response_delete", response.pk) not in page

    assert manager.post(change, {"status": "draft", "language": "en"}).status_code == 403
    assert manager.post(url("response_delete", response.pk), {"post": "yes"}).status_code == 403
    assert manager.get(url("response_add")).status_code == 403
    bulk = manager.post(
        url("response_changelist"),
        {"action": "delete_selected", "_selected_action": [response.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)

    response.refresh_from_db()
    assert response.status == Response.Status.SUBMITTED and response.language == "ja"
    assert list(response.answers.values_list("pk", "choice_id")) == answers


def test_a_response_page_shows_the_answers_with_labels(manager, participant):
    response = submitted(participant, tool="line")
    html = manager.get(url("response_change", response.pk)).content.decode()
    row = re.search(r'<tr data-question="tool">(.*?)</tr>', html, re.S)
    assert row is not None
    line = Choice.objects.get(question__instrument=response.instrument, code="line")
    assert line.label_en in row.group(1) or line.label_ja in row.group(1)


def test_free_text_is_escaped_on_the_response_page(manager):
    study = StudyFactory()
    instrument = Instrument.objects.create(study=study, version=1, title_ja="テスト")
    Question.objects.create(
        instrument=instrument,
        code="comment",
        order=1,
        type=Question.Type.TEXT,
        required=True,
        text_ja="ご意見",
        text_en="Comments",
    )
    services.instrument_publish(instrument=instrument)
    participant = ParticipantFactory(site=SiteFactory(study=study))
    script = '<script>alert("x")</script> & <b>bold</b>'
    response = services.response_submit(
        participant=participant, answers={"comment": script}, language="ja"
    )

    html = manager.get(url("response_change", response.pk)).content.decode()

    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert" not in html
    assert "<b>bold</b>" not in html


# --- Instruments -----------------------------------------------------------------------


def test_a_published_instrument_its_questions_and_choices_are_read_only(manager, study):
    instrument = study.instruments.get()
    assert instrument.is_frozen
    question = instrument.questions.get(code="reassured")
    choice = question.choices.get(code="agree")

    page = manager.get(url("instrument_change", instrument.pk)).content.decode()
    assert 'name="_save"' not in page
    assert "can no longer change" in page
    assert 'name="questions-0-code"' not in page
    question_page = manager.get(url("question_change", question.pk)).content.decode()
    assert 'name="_save"' not in question_page
    assert 'name="choices-0-label_ja"' not in question_page

    assert (
        manager.post(url("instrument_change", instrument.pk), {"title_ja": "x"}).status_code == 403
    )
    assert manager.post(url("instrument_delete", instrument.pk), {"post": "yes"}).status_code == 403
    assert manager.post(url("question_change", question.pk), {"code": "x"}).status_code == 403
    assert manager.post(url("question_delete", question.pk), {"post": "yes"}).status_code == 403
    # A new question cannot be added to it either.
    added = manager.post(
        url("question_add"),
        {"instrument": instrument.pk, "order": 99, "code": "extra", "type": "text", "text_ja": "x"},
    )
    assert added.status_code == 200 and "errornote" in added.content.decode()

    instrument.refresh_from_db()
    question.refresh_from_db()
    choice.refresh_from_db()
    assert question.code == "reassured" and choice.code == "agree"
    assert instrument.questions.count() == 6


def test_a_new_draft_version_is_editable_and_can_be_published(manager, study):
    v1 = study.instruments.get()
    response = manager.post(
        url("instrument_changelist"), {"action": "new_version", "_selected_action": [v1.pk]}
    )
    assert response.status_code == 302
    v2 = study.instruments.get(version=2)
    assert v2.status == Instrument.Status.DRAFT
    assert "is a new draft copied from" in manager.get(response["Location"]).content.decode()

    page = manager.get(url("instrument_change", v2.pk)).content.decode()
    assert 'name="_save"' in page and 'name="questions-0-code"' in page
    question = v2.questions.get(code="reassured")
    assert (
        'name="choices-0-label_ja"'
        in manager.get(url("question_change", question.pk)).content.decode()
    )

    response = manager.post(
        url("instrument_changelist"), {"action": "publish", "_selected_action": [v2.pk]}
    )
    v2.refresh_from_db()
    assert v2.status == Instrument.Status.PUBLISHED
    assert "is published" in manager.get(response["Location"]).content.decode()
    assert selectors.instrument_current(study) == v2


def test_publishing_from_the_instrument_page_asks_first(manager, study):
    v2 = services.instrument_new_version(instrument=study.instruments.get())
    page = manager.get(url("instrument_change", v2.pk)).content.decode()
    assert url("instrument_publish", v2.pk) in page
    assert "Yes, publish" in manager.get(url("instrument_publish", v2.pk)).content.decode()
    v2.refresh_from_db()
    assert not v2.is_frozen
    assert manager.post(url("instrument_publish", v2.pk)).status_code == 302
    v2.refresh_from_db()
    assert v2.is_frozen


def test_publishing_an_instrument_without_questions_explains_why_not(manager, study):
    empty = Instrument.objects.create(study=study, version=5, title_ja="空")
    response = manager.post(
        url("instrument_changelist"), {"action": "publish", "_selected_action": [empty.pk]}
    )
    assert "needs at least one question" in manager.get(response["Location"]).content.decode()
    empty.refresh_from_db()
    assert empty.status == Instrument.Status.DRAFT


def test_a_draft_questions_condition_must_name_an_earlier_question(manager, study):
    v2 = services.instrument_new_version(instrument=study.instruments.get())
    understood = v2.questions.get(code="understood")
    channels = v2.questions.get(code="channels")
    online = list(understood.condition_choices.values_list("pk", flat=True))
    data = {
        "order": 0,  # moved before the question its condition reads
        "code": understood.code,
        "type": understood.type,
        "required": "on",
        "text_ja": understood.text_ja,
        "condition_question": channels.pk,
        "condition_choices": online,
        "choices-TOTAL_FORMS": "0",
        "choices-INITIAL_FORMS": "0",
    }
    response = manager.post(url("question_change", understood.pk), data)
    assert response.status_code == 200
    assert "The condition must be on an earlier question." in response.content.decode()
    understood.refresh_from_db()
    assert understood.order == 5

    # Later questions are not even offered as conditions.
    page = manager.get(url("question_change", understood.pk)).content.decode()
    tool = v2.questions.get(code="tool")
    assert f'<option value="{tool.pk}"' not in page
    assert f'<option value="{channels.pk}" selected>' in page
