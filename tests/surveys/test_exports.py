"""Response exports (CSV, XLSX, SPSS, Stata): each format read back with its own reader
(csv, openpyxl, pyreadstat) and compared with the answer rows in the database; scoping
through the API and the admin; the audit record; formula injection; bad parameters.

The study has every question type: a multiple choice with tags, a four-point scale, a
single choice with a label longer than a .sav value label, a question shown only for an
online channel, free text and a number, both optional."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyreadstat
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from rest_framework.test import APIClient

from surveys import services
from surveys.exports.codebook import header as codebook_header
from surveys.exports.layout import NO_ANSWER, NOT_SHOWN
from surveys.exports.running import export_run
from surveys.loading import load_instrument
from surveys.models import Answer, Membership, Response, ResponseExport, Study
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory

INSTRUMENT = Path(__file__).with_name("export_instrument.toml")
LONG = (
    "とても長い選択肢のラベルで、SPSSの値ラベルの上限である百二十バイトを超えるように"
    "書かれた説明文です。まだ続きます。"
)

ANSWERS: list[tuple[str, dict[str, Any], bool]] = [
    # (site, answers, submitted)
    ("a", {"channels": ["online_chat", "ward_phone"], "reassured": "agree",
           "understood": "long", "comment": "=HYPERLINK(\"http://x\")", "children": "2.5"}, True),
    ("a", {"channels": ["ward_phone"], "reassured": "disagree", "comment": "＝1+1",
           "children": "-3"}, True),
    ("a", {"channels": ["none"], "reassured": "somewhat_agree", "comment": "よかった"}, True),
    ("a", {"channels": ["online_chat"]}, False),  # a draft: reassured and understood unanswered
    ("b", {"channels": ["online_chat"], "reassured": "agree", "understood": "yes",
           "children": "1"}, True),
]  # fmt: skip


@pytest.fixture
def study(db, tmp_path: Path, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(code="export-study")
    load_instrument(study=study, path=INSTRUMENT, publish=True)
    sites = {
        "a": SiteFactory(study=study, code="site-a"),
        "b": SiteFactory(study=study, code="site-b"),
    }
    for n, (site, answers, submitted) in enumerate(ANSWERS):
        participant = ParticipantFactory(site=sites[site], reference=f"R-{n}")
        save = services.response_submit if submitted else services.response_save_draft
        save(participant=participant, answers=answers, language="ja")
    ParticipantFactory(site=sites["a"], reference="NO-RESPONSE")
    view = Permission.objects.filter(
        content_type__app_label="surveys",
        codename__in=["view_study", "view_response", "view_participant", "view_site"],
    )
    users = {}
    for key in ("a", "b"):
        user = User.objects.create_user(f"viewer-{key}", password="pw-12345-long", is_staff=True)
        user.user_permissions.set(view)
        Membership.objects.create(user=user, site=sites[key], role="viewer")
        users[key] = user
    return {"study": study, "sites": sites, "users": users}


def expected(site_codes: set[str]) -> dict[str, dict[str, Any]]:
    """Per participant reference, the database's answers, read from the answer rows."""
    rows: dict[str, dict[str, Any]] = {}
    responses = Response.objects.filter(site__code__in=site_codes).select_related("participant")
    for response in responses:
        values: dict[str, Any] = {"status": response.status}
        answers = Answer.objects.filter(response=response).select_related("question", "choice")
        for answer in answers.order_by("question__order", "choice__order"):
            code = answer.question.code
            if answer.choice is not None:
                values.setdefault(code, []).append(answer.choice.code)
            elif answer.text_value is not None:
                values[code] = answer.text_value
            else:
                values[code] = answer.number_value
        rows[response.participant.reference] = values
    return rows


def api(user: User, language: str = "ja") -> APIClient:
    client = APIClient(headers={"Accept-Language": language})
    client.force_authenticate(user)
    return client


def fetch(user: User, study: Study, format: str, language: str = "ja") -> bytes:
    response = api(user, language).get(
        "/api/v1/responses/export/", {"study": study.pk, "format": format}
    )
    assert response.status_code == 200, response.content
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


# --- Each format read back ------------------------------------------------------------


def test_the_csv_holds_codes_and_labels_of_the_callers_sites(study):  # type: ignore[no-untyped-def]
    raw = fetch(study["users"]["a"], study["study"], "csv")
    rows = {r["participant"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}
    truth = expected({"site-a"})
    assert set(rows) == set(truth)  # no site-b row, no participant without a response
    for reference, values in truth.items():
        row = rows[reference]
        assert row["status"] == values["status"]
        assert row["channels"] == "|".join(values.get("channels", []))
        assert row["reassured"] == "|".join(values.get("reassured", []))
        assert row["children"] == (
            format(values["children"].normalize(), "f") if "children" in values else ""
        )
    assert rows["R-0"]["understood__label"] == LONG
    assert rows["R-0"]["channels__label"] == "オンライン相談|区の電話相談"
    # Formula injection: text a spreadsheet would evaluate starts with a quote.
    assert rows["R-0"]["comment"] == '\'=HYPERLINK("http://x")'
    assert rows["R-1"]["comment"] == "'＝1+1"
    assert rows["R-2"]["comment"] == "よかった"


def xlsx_rows(raw: bytes) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]], Any]:
    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=False)
    data, codebook = book.worksheets
    header, *body = list(data.iter_rows(values_only=True))
    return (
        [dict(zip(header, r, strict=True)) for r in body],
        list(codebook.iter_rows(values_only=True)),
        data,
    )


def test_the_xlsx_has_a_data_sheet_with_a_column_per_choice_and_a_codebook(study):  # type: ignore[no-untyped-def]
    raw = fetch(study["users"]["a"], study["study"], "xlsx")
    data, codebook, sheet = xlsx_rows(raw)
    rows = {r["participant"]: r for r in data}
    truth = expected({"site-a"})
    assert set(rows) == set(truth)
    for reference, values in truth.items():
        row = rows[reference]
        chosen = set(values.get("channels", []))
        for code in ("online_chat", "ward_phone", "none"):
            assert row[f"channels__{code}"] == (1 if code in chosen else 0), (reference, code)
        assert row["reassured"] == (values["reassured"][0] if "reassured" in values else None)
        if "children" in values:
            assert Decimal(str(row["children"])) == values["children"]
        else:
            assert row["children"] is None
    assert rows["R-0"]["understood__label"] == LONG
    assert isinstance(rows["R-0"]["response_id"], int)
    # Typed text: a formula-looking answer is a string cell, never a formula.
    comment = next(c for c in sheet[1] if c.value == "comment").column
    cells = [sheet.cell(row=r, column=comment) for r in range(2, sheet.max_row + 1)]
    assert {c.data_type for c in cells if c.value} == {"s"}
    assert '=HYPERLINK("http://x")' in {c.value for c in cells}
    # The codebook: both languages, conditions, codes, labels, scores, tags (its header
    # in the export's language: compared by position).
    with translation.override("ja"):
        assert list(codebook[0]) == codebook_header()
    keys = [
        "variable", "question", "type", "required", "condition", "text_ja", "text_en",
        "value", "choice", "label_ja", "label_en", "score", "tags", "notes",
    ]  # fmt: skip
    entries = [dict(zip(keys, r, strict=True)) for r in codebook[1:]]
    chat = next(e for e in entries if e["variable"] == "channels__online_chat" and e["value"] == 1)
    assert chat["text_ja"] == "利用した窓口をすべて選んでください。"
    assert chat["text_en"] == "Which channels did you use?"
    assert chat["score"] == 2 and chat["tags"] == "online"
    understood = [e for e in entries if e["variable"] == "understood" and e["choice"]]
    assert [(e["value"], e["choice"], e["label_ja"]) for e in understood] == [
        (1, "yes", "はい"),
        (2, "long", LONG),
    ]
    assert understood[0]["condition"] == "channels = online_chat"
    assert "120" in understood[0]["notes"]  # the .sav value label is cut, and it says so
    assert [e["value"] for e in entries if e["variable"] == "children"] == [None, None, None]


def test_the_sav_has_japanese_labels_and_tells_not_shown_from_not_answered(study, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "x.sav"
    path.write_bytes(fetch(study["users"]["a"], study["study"], "sav"))
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    rows = {r["participant"]: r for r in frame.to_dict("records")}
    truth = expected({"site-a"})
    assert set(rows) == set(truth)
    labels = meta.column_names_to_labels
    assert labels["reassured"] == "安心して子育てできましたか。"
    assert labels["channels__online_chat"].startswith("オンライン相談")
    assert meta.variable_value_labels["reassured"][1] == "そう思う"
    with translation.override("ja"):
        assert meta.variable_value_labels["reassured"][NOT_SHOWN] == gettext("not shown")
    cut = meta.variable_value_labels["understood"][2]
    assert len(cut.encode()) <= 120 and cut.endswith("…") and LONG.startswith(cut[:-1])
    declared = {(r["lo"], r["hi"]) for r in meta.missing_ranges["understood"]}
    assert declared == {(NOT_SHOWN, NOT_SHOWN), (NO_ANSWER, NO_ANSWER)}
    # Values: positions of the choices; the condition's hidden question is "not shown".
    assert rows["R-0"]["understood"] == 2
    assert rows["R-1"]["understood"] == NOT_SHOWN  # no online channel
    assert rows["R-3"]["understood"] == NO_ANSWER  # a draft: shown, not answered
    assert rows["R-3"]["reassured"] == NO_ANSWER
    assert rows["R-1"]["reassured"] == 4
    assert rows["R-0"]["children"] == 2.5 and rows["R-1"]["children"] == -3
    assert rows["R-2"]["comment"] == "よかった"
    assert rows["R-0"]["comment"] == '=HYPERLINK("http://x")'  # data, not a spreadsheet
    assert meta.readstat_variable_types["comment"] == "string"
    assert meta.readstat_variable_types["children"] == "double"
    for reference, values in truth.items():
        for code in ("online_chat", "ward_phone", "none"):
            assert rows[reference][f"channels__{code}"] == (
                1 if code in values.get("channels", []) else 0
            )


def test_the_dta_has_japanese_labels_and_extended_missing_values(study, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "x.dta"
    path.write_bytes(fetch(study["users"]["a"], study["study"], "dta"))
    assert path.read_bytes().startswith(b"<stata_dta><header><release>118</release>")
    frame, meta = pyreadstat.read_dta(str(path), user_missing=True)
    rows = {r["participant"]: r for r in frame.to_dict("records")}
    assert set(rows) == set(expected({"site-a"}))
    assert meta.column_names_to_labels["reassured"] == "安心して子育てできましたか。"
    assert meta.variable_value_labels["understood"][2] == LONG  # whole in .dta
    assert rows["R-1"]["understood"] == "a"  # .a: not shown
    assert rows["R-3"]["understood"] == "b"  # .b: not answered
    assert rows["R-2"]["children"] == "b"
    assert rows["R-0"]["understood"] == 2 and rows["R-0"]["children"] == 2.5
    assert rows["R-0"]["channels__online_chat"] == 1 and rows["R-0"]["channels__none"] == 0
    assert rows["R-2"]["comment"] == "よかった"


# --- Scope, audit, the task, the admin ------------------------------------------------


def test_a_viewer_of_site_b_gets_none_of_site_as_rows_in_any_format(study, tmp_path):  # type: ignore[no-untyped-def]
    user = study["users"]["b"]
    raw = fetch(user, study["study"], "csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["participant"] for r in rows] == ["R-4"]
    path = tmp_path / "b.sav"
    path.write_bytes(fetch(user, study["study"], "sav"))
    frame, _meta = pyreadstat.read_sav(str(path))
    assert list(frame["participant"]) == ["R-4"]
    data, _codebook, _sheet = xlsx_rows(fetch(user, study["study"], "xlsx"))
    assert [r["participant"] for r in data] == ["R-4"]


def test_every_export_is_recorded_with_who_when_study_format_and_rows(study):  # type: ignore[no-untyped-def]
    user = study["users"]["a"]
    for format in ("csv", "sav"):
        fetch(user, study["study"], format)
    records = ResponseExport.history.filter(requested_by=user).order_by("history_id")
    assert [(r.history_type, r.format, r.status, r.rows) for r in records] == [
        ("+", "csv", "running", None),
        ("~", "csv", "succeeded", 4),
        ("+", "sav", "running", None),
        ("~", "sav", "succeeded", 4),
    ]
    assert {r.history_user for r in records} == {user}
    assert {r.study_id for r in records} == {study["study"].pk}
    assert {r.history_change_reason for r in records} == {"api"}


def test_the_record_keeps_the_filters_applied_and_not_the_rest_of_the_query(study):  # type: ignore[no-untyped-def]
    """A parameter the list does not know is ignored by it and not recorded: a NUL byte
    in one once failed the request on PostgreSQL (its JSON column refuses it)."""
    user = study["users"]["a"]
    response = api(user).get(
        "/api/v1/responses/export/",
        {"study": study["study"].pk, "status": "submitted", "format": "csv", "x": "\x00="},
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)
    export = ResponseExport.objects.get(requested_by=user)
    assert export.filters == {"study": str(study["study"].pk), "status": "submitted"}


def test_a_queued_export_is_written_once_and_downloaded_by_its_requester_only(study):  # type: ignore[no-untyped-def]
    user, other = study["users"]["a"], study["users"]["b"]
    client = api(user)
    created = client.post(
        "/api/v1/exports/", {"study": study["study"].pk, "format": "dta"}, format="json"
    )
    assert created.status_code == 202, created.content
    export_id = created.json()["id"]
    assert created.json()["status"] == "queued"  # the task runs after the commit
    assert export_run(export_id=export_id) is not None
    assert export_run(export_id=export_id) is None  # claimed once
    state = client.get(f"/api/v1/exports/{export_id}/").json()
    assert state["status"] == "succeeded" and state["rows"] == 4
    download = client.get(state["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"<stata_dta>")
    assert api(other).get(f"/api/v1/exports/{export_id}/").status_code == 404
    assert api(other).get(state["download_url"]).status_code == 404
    assert api(other).get("/api/v1/exports/").json()["count"] == 0


def test_the_admin_exports_the_callers_sites_and_records_it(
    study, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    user = study["users"]["b"]
    client = Client(headers={"Accept-Language": "ja"})
    client.force_login(user)
    url = reverse("admin:surveys_study_export", args=[study["study"].pk])
    page = client.get(url)
    assert page.status_code == 200
    with translation.override("ja"):
        assert gettext("Export responses") in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post(url, {"format": "csv", "language": "en"})
    assert posted.status_code == 302
    export = ResponseExport.objects.get(requested_by=user)
    assert (export.status, export.rows, export.study) == ("succeeded", 1, study["study"])
    download = client.get(
        reverse("admin:surveys_study_export_download", args=[study["study"].pk, export.pk])
    )
    rows = list(
        csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig")))
    )
    assert [r["participant"] for r in rows] == ["R-4"]
    assert rows[0]["reassured__label"] == "Agree"
    # Another member of the study does not get it.
    other = Client()
    other.force_login(study["users"]["a"])
    assert (
        other.get(
            reverse("admin:surveys_study_export_download", args=[study["study"].pk, export.pk])
        ).status_code
        == 404
    )


def test_a_study_outside_the_callers_sites_has_no_export_page(study):  # type: ignore[no-untyped-def]
    elsewhere = StudyFactory(code="elsewhere")
    client = Client()
    client.force_login(study["users"]["a"])
    url = reverse("admin:surveys_study_export", args=[elsewhere.pk])
    assert client.get(url).status_code in (302, 404)
    assert ResponseExport.objects.count() == 0


def test_bad_parameters_are_a_4xx_in_the_callers_language(study):  # type: ignore[no-untyped-def]
    client = api(study["users"]["a"], "ja")
    response = client.get("/api/v1/responses/export/", {"format": "pdf"})
    assert response.status_code == 400
    assert "有効な選択肢ではありません" in response.content.decode()
    created = client.post(
        "/api/v1/exports/", {"study": study["study"].pk, "format": "x"}, format="json"
    )
    assert created.status_code == 400
    wrong_site = client.post(
        "/api/v1/exports/",
        {"study": study["study"].pk, "format": "csv", "site": study["sites"]["b"].pk},
        format="json",
    )
    assert wrong_site.status_code == 400
    assert ResponseExport.objects.count() == 0
