"""A manager of Setagaya cannot read, by any endpoint, a participant, a response or a
per-site result of Itabashi: 404 for the record, and absent from every list and export."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User

from kpi.models import KPI, Segment
from surveys.models import Membership
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
