"""A manager of Setagaya cannot read, by any endpoint, a participant, a response or a
per-site result of Itabashi: 404 for the record, and absent from every list and export."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User

from kpi.models import KPI, Evaluation, EvaluationRun, Segment
from surveys.models import Membership, Participant, Question, Site, Study
from tests.api.conftest import World

NOT_FOUND = {"error": {"code": "not_found", "message": "見つかりませんでした。", "fields": {}}}


@pytest.fixture
def setagaya(world: World, as_user):  # type: ignore[no-untyped-def]
    return as_user(world.users["manager@setagaya"])


def _all(client, path: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(path, {"page_size": 500})
    assert response.status_code == 200
    return response.json()["results"]


def test_itabashi_records_answer_404_exactly_like_records_that_do_not_exist(world, setagaya):
    itabashi_participant = world.participants["itabashi"].pk
    itabashi_response = world.responses["itabashi"].pk
    for path in [
        f"/api/v1/participants/{itabashi_participant}/",
        f"/api/v1/responses/{itabashi_response}/",
        f"/api/v1/sites/{world.itabashi.pk}/",
        f"/api/v1/participants/{world.participants['osaka'].pk}/",
        "/api/v1/participants/999999/",
        "/api/v1/responses/999999/",
        f"/api/v1/studies/{world.other_study.pk}/",
    ]:
        response = setagaya.get(path)
        assert response.status_code == 404, path
        assert response.json() == NOT_FOUND


def test_lists_hold_only_setagaya_rows(world, setagaya):
    participants = _all(setagaya, "/api/v1/participants/")
    assert sorted(p["reference"] for p in participants) == ["SET-1", "SET-2"]
    responses = _all(setagaya, "/api/v1/responses/")
    assert [r["participant_reference"] for r in responses] == ["SET-1"]
    assert [s["code"] for s in _all(setagaya, "/api/v1/sites/")] == ["setagaya"]
    assert [s["code"] for s in _all(setagaya, "/api/v1/studies/")] == ["tokyo"]


def test_filtering_on_itabashi_finds_nothing_rather_than_refusing(world, setagaya):
    for path in ["/api/v1/participants/", "/api/v1/responses/"]:
        response = setagaya.get(path, {"site": world.itabashi.pk})
        assert response.status_code == 200
        assert response.json()["count"] == 0


def test_the_export_holds_only_setagaya_responses(world, setagaya):
    response = setagaya.get("/api/v1/responses/export/")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["site"], r["participant"]) for r in rows] == [("setagaya", "SET-1")]
    assert "ITA-" not in text and "itabashi" not in text


def test_a_run_shows_study_wide_results_and_only_setagaya_per_site_results(
    world, setagaya, as_user
):
    results = setagaya.get(f"/api/v1/runs/{world.run.pk}/").json()["results"]
    sites = {r["site_code"] for r in results}
    assert sites == {None, "setagaya"}
    overall = [r for r in results if r["site_code"] is None]
    # The study-wide response rate counts both wards: 2 respondents of 4 invited.
    rate = next(r for r in overall if r["kpi_code"] == "response_rate")
    assert (rate["numerator"], rate["denominator"]) == (2, 4)
    everything = as_user(world.users["superuser"]).get(f"/api/v1/runs/{world.run.pk}/")
    assert {r["site_code"] for r in everything.json()["results"]} == {
        None,
        "setagaya",
        "itabashi",
    }


def test_the_report_with_every_site_is_refused_to_a_member_of_one_site(world, setagaya):
    response = setagaya.get(f"/api/v1/evaluations/{world.signed.pk}/pdf/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_another_studys_definitions_are_not_listed(world, setagaya):
    Segment.objects.create(study=world.other_study, code="elsewhere", name_ja="他")
    assert all(s["study"] == world.study.pk for s in _all(setagaya, "/api/v1/segments/"))
    assert all(k["study"] == world.study.pk for k in _all(setagaya, "/api/v1/kpis/"))
    assert KPI.objects.filter(study=world.study).count() == len(_all(setagaya, "/api/v1/kpis/"))


def test_a_role_is_needed_on_the_record_besides_the_model_permission(world, as_user):
    """A user whose groups grant everything but whose membership is only "viewer" may
    read but not change: the role on the record's site or study decides too."""
    user = User.objects.create_user("viewer-with-all-permissions")
    user.groups.add(Group.objects.get(name="api-signer"))
    Membership.objects.create(user=user, site=world.setagaya, role="viewer")
    client = as_user(user)
    assert client.get(f"/api/v1/kpis/{world.kpi.pk}/").status_code == 200
    assert client.patch(f"/api/v1/kpis/{world.kpi.pk}/", {"min_n": 5}).status_code == 403
    created = client.post(
        "/api/v1/participants/", {"site": world.setagaya.pk, "reference": "X-1"}, format="json"
    )
    assert created.status_code == 400
    assert "site" in created.json()["error"]["fields"]
    manager = User.objects.create_user("manager-with-all-permissions")
    manager.groups.add(Group.objects.get(name="api-signer"))
    for site in (world.setagaya, world.itabashi):
        Membership.objects.create(user=manager, site=site, role="manager")
    signing = as_user(manager).post(
        f"/api/v1/evaluations/{world.draft.pk}/sign-off/",
        {"password": "x", "statement": "s", "signer_name": "n"},
        format="json",
    )
    assert signing.status_code == 403


# --- No inference across sites: "exists out of scope" answers as "exists nowhere" ------


def _absent_like(model: type, pk: int) -> int:
    """An id of ``model`` that exists nowhere."""
    return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def _same_answer(hidden, absent, echoed: tuple[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
    """Status, headers and body byte for byte; ``echoed`` the value each request sent that
    the answer repeats (an id, a site code), put in its place in the first body (so the
    lengths may differ by as much)."""
    body = hidden.content
    if echoed is not None:
        body = body.replace(echoed[0].encode(), echoed[1].encode())
    assert (hidden.status_code, body) == (absent.status_code, absent.content)
    # Expires (never_cache: "now") moves with the clock between the two requests, and
    # crosses a second now and then: only its presence is compared (as test_token_attempts).
    headers = [
        {k: (v if k != "Expires" else "present") for k, v in r.headers.items()}
        for r in (hidden, absent)
    ]
    for h in headers:
        h.pop("Content-Length", None)
    assert headers[0] == headers[1]


def _import(client, world: World, rows: str):  # type: ignore[no-untyped-def]
    upload = io.BytesIO(f"reference,site\r\n{rows}".encode())
    upload.name = "participants.csv"
    return client.post(
        "/api/v1/participants/import/",
        {"study": world.study.pk, "file": upload},
        format="multipart",
    )


def test_an_import_row_for_another_sites_participant_answers_as_one_for_nobody(world, setagaya):
    before = sorted(Participant.objects.values_list("site_id", "reference"))
    taken = _import(setagaya, world, "ITA-1,itabashi\r\n")  # exists at Itabashi
    free = _import(setagaya, world, "ITA-9,itabashi\r\n")  # exists nowhere
    assert taken.status_code == 400
    _same_answer(taken, free, ("ITA-1", "ITA-9"))
    # A site that exists nowhere is refused in the same words as one out of scope, and
    # the sites listed are the caller's only.
    nowhere = _import(setagaya, world, "ITA-1,xtabashi\r\n")
    _same_answer(taken, nowhere, ("itabashi", "xtabashi"))
    for response, echoed in ((taken, 1), (_import(setagaya, world, "SET-9,\r\n"), 0)):
        text = response.content.decode()
        assert "setagaya" in text and "ITA-2" not in text
        assert text.count("itabashi") == echoed  # only the code the caller wrote
        assert "already" not in text and "既に" not in text
    # Mixed with a good row and a bad one of the caller's own: every row is judged on
    # what the caller may see, and nothing is stored.
    mixed = _import(setagaya, world, "SET-9,setagaya\r\nITA-1,itabashi\r\nSET-1,setagaya\r\n")
    assert mixed.status_code == 400
    assert set(mixed.json()["error"]["fields"]) == {"3", "4"}
    assert sorted(Participant.objects.values_list("site_id", "reference")) == before


def test_a_reference_used_at_another_site_is_free_at_the_callers_own(world, setagaya):
    """References are unique per site: the one an Itabashi participant holds is created
    at Setagaya exactly as a reference that exists nowhere is."""
    ignore = {"id", "created_at", "token_issued_at", "invitation_url", "token"}
    answers = []
    for reference in ("ITA-1", "ITA-7"):
        response = setagaya.post(
            "/api/v1/participants/",
            {"site": world.setagaya.pk, "reference": reference},
            format="json",
        )
        assert response.status_code == 201, response.content
        body = {k: v for k, v in response.json().items() if k not in ignore}
        answers.append({**body, "reference": None})
        imported = _import(setagaya, world, f"{reference}-b,setagaya\r\n")
        assert imported.status_code == 201
    assert answers[0] == answers[1]
    assert Participant.objects.filter(site=world.setagaya, reference="ITA-1").exists()
    # The same reference twice at the caller's own site is theirs to be told about.
    again = setagaya.post(
        "/api/v1/participants/", {"site": world.setagaya.pk, "reference": "ITA-1"}, format="json"
    )
    assert again.status_code == 400
    assert list(again.json()["error"]["fields"]) == ["reference"]


def test_a_participant_for_another_sites_id_answers_as_for_an_id_of_no_site(world, setagaya):
    before = Participant.objects.count()
    absent = _absent_like(Site, world.itabashi.pk)
    answers = [
        setagaya.post("/api/v1/participants/", {"site": site, "reference": "ITA-1"}, format="json")
        for site in (world.itabashi.pk, absent)
    ]
    assert answers[0].status_code == 400
    _same_answer(*answers, (f'\\"{world.itabashi.pk}\\"', f'\\"{absent}\\"'))
    assert Participant.objects.count() == before


def test_a_study_run_segment_or_question_of_another_study_answers_as_one_that_does_not_exist(
    world, setagaya
):
    """Every id a create takes in its body: out of scope is "does not exist"."""
    other_run = EvaluationRun.objects.create(study=world.other_study, trigger="command")
    other_segment = Segment.objects.create(study=world.other_study, code="line", name_ja="L")
    other_question = Question.objects.filter(instrument__study=world.other_study).first()
    own_question = Question.objects.filter(instrument__study=world.study, code="channels").get()
    counts = (
        Segment.objects.count(),
        KPI.objects.count(),
        EvaluationRun.objects.count(),
        Evaluation.objects.count(),
    )

    def kpi(study: int, numerator: int) -> dict:
        return {
            "study": study,
            "code": "new_kpi",
            "name_ja": "新",
            "kind": "share",
            "base": "respondents",
            "numerator": numerator,
            "comparator": ">=",
            "threshold": "70",
        }

    own_segment = Segment.objects.filter(study=world.study).first()
    cases = [
        ("/api/v1/runs/", lambda i: {"study": i}, Study, world.other_study.pk),
        (
            "/api/v1/segments/",
            lambda i: {"study": i, "code": "n", "name_ja": "n"},
            Study,
            world.other_study.pk,
        ),
        (
            "/api/v1/segments/",
            lambda i: {
                "study": world.study.pk,
                "code": "n",
                "name_ja": "n",
                "clauses": [{"question": i, "tag": "online"}],
            },
            Question,
            other_question.pk,
        ),
        (
            "/api/v1/segments/",
            lambda i: {
                "study": world.study.pk,
                "code": "n",
                "name_ja": "n",
                "clauses": [{"question": own_question.pk, "choices": [i]}],
            },
            type(other_question.choices.first()),
            other_question.choices.first().pk,
        ),
        ("/api/v1/kpis/", lambda i: kpi(i, own_segment.pk), Study, world.other_study.pk),
        ("/api/v1/kpis/", lambda i: kpi(world.study.pk, i), Segment, other_segment.pk),
        ("/api/v1/evaluations/", lambda i: {"run": i}, EvaluationRun, other_run.pk),
    ]
    for path, body, model, hidden in cases:
        absent = _absent_like(model, hidden)
        answers = [setagaya.post(path, body(i), format="json") for i in (hidden, absent)]
        assert answers[0].status_code == 400, (path, answers[0].content)
        _same_answer(*answers, (f'\\"{hidden}\\"', f'\\"{absent}\\"'))
    assert counts == (
        Segment.objects.count(),
        KPI.objects.count(),
        EvaluationRun.objects.count(),
        Evaluation.objects.count(),
    )


def test_a_run_of_a_study_where_the_caller_has_one_site_of_two_is_study_wide_by_design(
    world, setagaya
):
    """Runs, KPIs and their study-wide results are for members of any site of the study
    (the study's total is published); a run's answer names no site and counts no site
    apart: per-site results stay with each site's members."""
    started = setagaya.post("/api/v1/runs/", {"study": world.study.pk}, format="json")
    assert started.status_code == 202
    assert "itabashi" not in started.content.decode()
    run = setagaya.get(started.json()["url"]).json()
    assert {r["site_code"] for r in run["results"]} <= {None, "setagaya"}
