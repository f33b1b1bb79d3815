"""Scoring through the API (202, then the run's status and results) and evaluations
(create, sign off, withdraw, download; frozen once signed off)."""

from __future__ import annotations

from kpi.models import Evaluation, EvaluationRun
from tests.api.conftest import PASSWORD, World


def test_starting_a_scoring_answers_202_with_the_runs_url(
    world: World, as_user, django_capture_on_commit_callbacks
):
    client = as_user(world.users["manager@setagaya"])
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/v1/runs/", {"study": world.study.pk}, format="json")
    assert started.status_code == 202
    location = started["Location"]
    run = EvaluationRun.objects.get(pk=started.json()["id"])
    assert location == started.json()["url"] == f"/api/v1/runs/{run.pk}/"
    assert run.trigger == "api"
    assert run.requested_by == world.users["manager@setagaya"]
    shown = client.get(location).json()
    assert shown["status"] == "succeeded"  # tasks run in-process here
    results = shown["results"]
    assert {r["site_code"] for r in results} == {None, "setagaya"}
    reassured = next(r for r in results if r["kpi_code"] == "reassured" and not r["site_code"])
    # Both respondents answered "agree": 2 of 2 in the top two.
    assert (reassured["numerator"], reassured["denominator"]) == (2, 2)
    assert reassured["value"] == 1.0


def test_a_queued_run_shows_its_status_and_no_results(world: World, as_user):
    client = as_user(world.users["viewer@itabashi"])
    run = EvaluationRun.objects.create(study=world.study, trigger="api")
    shown = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert (shown["status"], shown["results"]) == ("queued", [])


def test_an_evaluation_goes_from_draft_to_signed_off_and_then_refuses_changes(
    world: World, as_user
):
    client = as_user(world.users["signer@both"])
    created = client.post("/api/v1/evaluations/", {"run": world.run.pk}, format="json")
    assert created.status_code == 201
    pk = created.json()["id"]
    assert created.json()["status"] == "draft"
    wrong = client.post(
        f"/api/v1/evaluations/{pk}/sign-off/",
        {"password": "wrong", "statement": "ok", "signer_name": "Sato"},
        format="json",
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "sign_off_refused"
    assert list(wrong.json()["error"]["fields"]) == ["password"]
    incomplete = client.post(
        f"/api/v1/evaluations/{pk}/sign-off/",
        {"password": PASSWORD, "statement": " ", "signer_name": ""},
        format="json",
    )
    assert incomplete.status_code == 400
    assert set(incomplete.json()["error"]["fields"]) == {"statement", "signer_name"}
    signed = client.post(
        f"/api/v1/evaluations/{pk}/sign-off/",
        {"password": PASSWORD, "statement": "Checked.", "signer_name": "Sato"},
        format="json",
    )
    assert signed.status_code == 200
    assert signed.json()["status"] == "signed_off"
    for response in [
        client.patch(f"/api/v1/evaluations/{pk}/", {"language": "en"}, format="json"),
        client.post(
            f"/api/v1/evaluations/{pk}/sign-off/",
            {"password": PASSWORD, "statement": "Again.", "signer_name": "Sato"},
            format="json",
        ),
    ]:
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "evaluation_frozen"
    assert Evaluation.objects.get(pk=pk).language == "ja"
    not_ready = client.get(f"/api/v1/evaluations/{pk}/pdf/")  # rendering is stubbed here
    assert not_ready.status_code == 409
    assert not_ready.json()["error"]["code"] == "pdf_not_ready"


def test_an_evaluation_needs_a_succeeded_run(world: World, as_user):
    failed = EvaluationRun.objects.create(study=world.study, trigger="api", status="failed")
    response = as_user(world.users["manager@setagaya"]).post(
        "/api/v1/evaluations/", {"run": failed.pk}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_not_succeeded"


def test_the_signed_pdf_downloads_with_a_name_that_says_what_it_is(world: World, as_user):
    response = as_user(world.users["signer@both"]).get(
        f"/api/v1/evaluations/{world.signed.pk}/pdf/"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    name = f"hyoka-tokyo-evaluation-{world.signed.pk}-signed-en.pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response.content.startswith(b"%PDF")


def test_withdrawing_keeps_the_file_and_needs_a_reason(world: World, as_user):
    client = as_user(world.users["signer@both"])
    url = f"/api/v1/evaluations/{world.signed.pk}/withdraw/"
    empty = client.post(url, {"reason": ""}, format="json")
    assert empty.status_code == 400
    assert list(empty.json()["error"]["fields"]) == ["reason"]
    done = client.post(url, {"reason": "Wrong cut-off."}, format="json")
    assert done.status_code == 200
    assert done.json()["status"] == "withdrawn"
    assert done.json()["pdf_sha256"] == world.signed.pdf_sha256
    again = client.post(url, {"reason": "Again."}, format="json")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "sign_off_refused"
    draft = client.post(
        f"/api/v1/evaluations/{world.draft.pk}/withdraw/", {"reason": "x"}, format="json"
    )
    assert draft.status_code == 400


def test_evaluations_cannot_be_deleted_or_replaced(world: World, as_user):
    client = as_user(world.users["superuser"])
    assert client.delete(f"/api/v1/evaluations/{world.draft.pk}/").status_code == 405
    assert (
        client.put(f"/api/v1/evaluations/{world.draft.pk}/", {}, format="json").status_code == 405
    )
