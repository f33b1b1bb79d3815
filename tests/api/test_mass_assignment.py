"""Protected fields in a request body change nothing: status, site, participant, token
hash, sign-off facts, results."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from kpi.models import KPI, Evaluation, EvaluationRun, KPIResult, Segment
from surveys.models import Participant, Response, hash_token
from tests.api.conftest import PASSWORD, World
from tests.factories import complete_answers

FORGED_HASH = "0" * 64


def test_creating_a_participant_ignores_status_token_and_response(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    response = client.post(
        "/api/v1/participants/",
        {
            "site": world.setagaya.pk,
            "reference": "NEW-1",
            "status": "withdrawn",
            "token_hash": FORGED_HASH,
            "token_issued_at": "2000-01-01T00:00:00Z",
            "response": world.responses["setagaya"].pk,
            "id": 1,
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    participant = Participant.objects.get(pk=body["id"])
    assert participant.status == "active"
    assert participant.token_hash != FORGED_HASH
    assert participant.token_hash == hash_token(body["token"])
    assert participant.token_issued_at.year > 2000
    assert body["response"] is None
    assert "token_hash" not in body


def test_a_submission_belongs_to_the_token_whatever_the_body_says(world: World, as_user):
    participant = world.participants["setagaya_waiting"]
    other = world.participants["itabashi_waiting"]
    response = as_user(None).post(
        f"/api/v1/invitations/{participant.token}/submission/",
        {
            "answers": complete_answers(),
            "participant": other.pk,
            "site": world.itabashi.pk,
            "status": "draft",
            "source": "web",
            "submitted_at": "2000-01-01T00:00:00Z",
            "id": world.responses["setagaya"].pk,
        },
        format="json",
    )
    assert response.status_code == 201
    stored = Response.objects.get(pk=response.json()["id"])
    assert stored.participant_id == participant.pk
    assert stored.site_id == world.setagaya.pk
    assert (stored.status, stored.source) == ("submitted", "api")
    assert stored.submitted_at is not None and stored.submitted_at.year > 2000
    assert not Response.objects.filter(participant=other).exists()


def test_a_draft_cannot_be_made_submitted_by_saying_so(world: World, as_user):
    participant = world.participants["setagaya_waiting"]
    response = as_user(None).put(
        f"/api/v1/invitations/{participant.token}/draft/",
        {"answers": complete_answers(), "status": "submitted"},
        format="json",
    )
    assert response.status_code == 200
    assert Response.objects.get(participant=participant).status == "draft"


def test_a_kpi_or_segment_never_moves_to_another_study(world: World, as_user):
    client = as_user(world.users["superuser"])
    kpi = client.patch(
        f"/api/v1/kpis/{world.kpi.pk}/",
        {"study": world.other_study.pk, "id": 999, "min_n": 12},
        format="json",
    )
    assert kpi.status_code == 200
    world.kpi.refresh_from_db()
    assert (world.kpi.study_id, world.kpi.min_n, world.kpi.pk) == (
        world.study.pk,
        12,
        kpi.json()["id"],
    )
    segment = client.patch(
        f"/api/v1/segments/{world.segment_unused.pk}/",
        {"study": world.other_study.pk, "name_en": "Moved?"},
        format="json",
    )
    assert segment.status_code == 200
    assert Segment.objects.get(pk=world.segment_unused.pk).study_id == world.study.pk
    assert KPI.objects.filter(study=world.other_study).count() == 0


def test_an_evaluation_cannot_be_signed_off_or_altered_through_its_fields(world: World, as_user):
    client = as_user(world.users["signer@both"])
    root = world.users["superuser"]
    response = client.patch(
        f"/api/v1/evaluations/{world.draft.pk}/",
        {
            "language": "en",
            "status": "signed_off",
            "signed_off_by": root.pk,
            "signed_off_at": "2021-01-01T00:00:00Z",
            "statement": "forged",
            "signer_name": "forged",
            "snapshot_sha256": FORGED_HASH,
            "pdf_sha256": FORGED_HASH,
            "study": world.other_study.pk,
            "run": world.run.pk,
        },
        format="json",
    )
    assert response.status_code == 200
    draft = Evaluation.objects.get(pk=world.draft.pk)
    assert draft.language == "en"
    assert draft.status == "draft"
    assert draft.signed_off_by_id is None and draft.signed_off_at is None
    assert (draft.statement, draft.signer_name, draft.pdf_sha256) == ("", "", "")
    assert draft.snapshot_sha256 != FORGED_HASH
    assert draft.study_id == world.study.pk


def test_signing_off_records_the_caller_and_the_time_not_the_body(world: World, as_user):
    signer = world.users["signer@both"]
    response = as_user(signer).post(
        f"/api/v1/evaluations/{world.draft.pk}/sign-off/",
        {
            "password": PASSWORD,
            "statement": "Checked.",
            "signer_name": "Sato",
            "signed_off_by": world.users["superuser"].pk,
            "signed_off_at": "2000-01-01T00:00:00Z",
            "status": "withdrawn",
        },
        format="json",
    )
    assert response.status_code == 200
    evaluation = Evaluation.objects.get(pk=world.draft.pk)
    assert evaluation.status == "signed_off"
    assert evaluation.signed_off_by_id == signer.pk
    assert evaluation.signed_off_at is not None
    assert timezone.now() - evaluation.signed_off_at < dt.timedelta(minutes=1)
    assert "password" not in response.json()


def test_creating_an_evaluation_or_a_run_ignores_status_and_results(world: World, as_user):
    client = as_user(world.users["manager@setagaya"])
    evaluation = client.post(
        "/api/v1/evaluations/",
        {"run": world.run.pk, "status": "signed_off", "study": world.other_study.pk},
        format="json",
    )
    assert evaluation.status_code == 201
    created = Evaluation.objects.get(pk=evaluation.json()["id"])
    assert (created.status, created.study_id) == ("draft", world.study.pk)
    run = client.post(
        "/api/v1/runs/",
        {"study": world.study.pk, "status": "succeeded", "results": [{"value": 1}]},
        format="json",
    )
    assert run.status_code == 202
    started = EvaluationRun.objects.get(pk=run.json()["id"])
    assert started.status == "queued"  # its task is enqueued when the request commits
    assert started.trigger == "api"
    assert not KPIResult.objects.filter(run=started).exists()
