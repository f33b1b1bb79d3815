"""Participants (create, import: the link shown once) and responses (filters, the
streamed CSV export with codes and labels)."""

from __future__ import annotations

import csv
import io

from django.http import StreamingHttpResponse

from surveys import services
from surveys.models import Participant
from tests.api.conftest import World
from tests.factories import ParticipantFactory, complete_answers


def upload(text: str) -> io.BytesIO:
    data = io.BytesIO(text.encode("utf-8"))
    data.name = "participants.csv"
    return data


def test_a_created_participant_comes_with_a_working_link_shown_only_then(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    created = client.post(
        "/api/v1/participants/", {"site": world.setagaya.pk, "reference": " NEW-1 "}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["reference"] == "NEW-1"
    assert body["invitation_url"].endswith(f"/r/{body['token']}/")
    assert "no-store" in created["Cache-Control"]
    assert created["Location"] == f"/api/v1/participants/{body['id']}/"
    again = client.get(created["Location"]).json()
    assert "token" not in again and "invitation_url" not in again
    state = as_user(None).get(f"/api/v1/invitations/{body['token']}/")
    assert state.status_code == 200
    assert state.json()["site"]["code"] == "setagaya"


def test_a_participant_reference_is_checked(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    for reference, field in [("SET-1", "reference"), ("a@b.jp", "reference"), ("  ", "reference")]:
        response = client.post(
            "/api/v1/participants/",
            {"site": world.setagaya.pk, "reference": reference},
            format="json",
        )
        assert response.status_code == 400, reference
        assert list(response.json()["error"]["fields"]) == [field]


def test_an_import_is_all_or_nothing_with_errors_per_row(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    before = Participant.objects.count()
    text = "reference,site\r\nOK-1,setagaya\r\n,setagaya\r\nOK-2,nowhere\r\nSET-1,setagaya\r\n"
    response = client.post(
        "/api/v1/participants/import/",
        {"study": world.study.pk, "file": upload(text)},
        format="multipart",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "import_rejected"
    assert sorted(error["fields"]) == ["3", "4", "5"]
    assert Participant.objects.count() == before


def test_an_import_into_a_site_the_caller_does_not_manage_is_refused_whole(world, as_user):
    client = as_user(world.users["manager@setagaya"])
    before = Participant.objects.count()
    text = "reference,site\r\nNEW-1,setagaya\r\nNEW-2,itabashi\r\n"
    response = client.post(
        "/api/v1/participants/import/",
        {"study": world.study.pk, "file": upload(text)},
        format="multipart",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["3"]
    assert Participant.objects.count() == before


def test_an_import_returns_every_link_once(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    text = "\ufeffreference,site\r\nNEW-1,setagaya\r\nNEW-2,setagaya\r\n"
    response = client.post(
        "/api/v1/participants/import/",
        {"study": world.study.pk, "file": upload(text)},
        format="multipart",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["created"] == 2
    assert [p["reference"] for p in body["participants"]] == ["NEW-1", "NEW-2"]
    assert all(p["invitation_url"].endswith(f"/r/{p['token']}/") for p in body["participants"])
    assert "no-store" in response["Cache-Control"]


def test_an_import_that_is_not_a_csv_file_is_a_400(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    for data in [b"\xff\xfe\x00binary", b""]:
        file = io.BytesIO(data)
        file.name = "x.csv"
        response = client.post(
            "/api/v1/participants/import/",
            {"study": world.study.pk, "file": file},
            format="multipart",
        )
        assert response.status_code == 400
    missing = client.post("/api/v1/participants/import/", {"study": world.study.pk})
    assert missing.status_code in {400, 415}


def test_responses_are_filtered_by_site_status_source_and_submission_time(world, as_user):
    client = as_user(world.users["superuser"])
    waiting = world.participants["setagaya_waiting"]
    services.response_save_draft(participant=waiting, answers={}, language="ja")

    def ids(**params: object) -> set[int]:
        response = client.get("/api/v1/responses/", params)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    setagaya = world.responses["setagaya"]
    itabashi = world.responses["itabashi"]
    draft = waiting.response.pk
    assert ids(site=world.setagaya.pk) == {setagaya.pk, draft}
    assert ids(site=world.setagaya.pk, status="submitted") == {setagaya.pk}
    assert ids(status="draft") == {draft}
    assert ids(source="web", study=world.study.pk) == {setagaya.pk, itabashi.pk, draft}
    assert ids(source="api") == set()
    after = setagaya.submitted_at.isoformat()
    assert setagaya.pk in ids(submitted_after=after)
    assert setagaya.pk not in ids(submitted_before=after)
    bad = client.get("/api/v1/responses/", {"submitted_after": "yesterday"})
    assert bad.status_code == 400
    assert list(bad.json()["error"]["fields"]) == ["submitted_after"]


def test_a_response_shows_its_answers_by_code(world: World, as_user):
    client = as_user(world.users["viewer@setagaya"])
    body = client.get(f"/api/v1/responses/{world.responses['setagaya'].pk}/").json()
    assert body["answers"] == {
        "channels": ["anytime", "ward_phone"],
        "reassured": "agree",
        "continue": "somewhat_agree",
        "reuse": "agree",
        "understood": "fully",
        "tool": "line",
    }
    assert body["participant_reference"] == "SET-1"


def test_the_export_streams_codes_and_labels(world: World, as_user):
    client = as_user(world.users["superuser"])
    response = client.get(
        "/api/v1/responses/export/",
        {"study": world.study.pk},
        headers={"Accept-Language": "en", "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="hyoka-responses-')
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["participant"] for r in sorted(rows, key=lambda r: r["participant"])] == [
        "ITA-1",
        "SET-1",
    ]
    row = next(r for r in rows if r["participant"] == "SET-1")
    assert row["channels"] == "anytime|ward_phone"
    assert row["channels__label"].count("|") == 1
    assert row["reassured"] == "agree"
    assert row["reassured__label"] == "Agree"
    assert row["tool"] == "line"
    assert row["status"] == "submitted"
    assert row["site"] == "setagaya"
    ita = next(r for r in rows if r["participant"] == "ITA-1")
    assert ita["tool"] == "phone"


def test_the_export_labels_follow_the_language_and_survive_many_rows(world: World, as_user):
    for n in range(250):
        participant = ParticipantFactory(site=world.itabashi, reference=f"BULK-{n:03d}")
        services.response_submit(participant=participant, answers=complete_answers(), language="ja")
    client = as_user(world.users["manager@itabashi"])
    response = client.get("/api/v1/responses/export/")
    chunks = list(response.streaming_content)
    assert len(chunks) > 1  # sent as it is generated, not as one body
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(rows) == 251
    assert {r["site"] for r in rows} == {"itabashi"}
    assert rows[0]["reassured__label"] == "そう思う"
