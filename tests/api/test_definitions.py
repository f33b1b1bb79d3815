"""KPI and segment definitions: full CRUD with the admin's validation rules, refusals as
field errors."""

from __future__ import annotations

import pytest

from kpi.models import KPI, Clause, Segment
from surveys.models import Choice, Question
from tests.api.conftest import World


@pytest.fixture
def client(world: World, as_user):  # type: ignore[no-untyped-def]
    return as_user(world.users["manager@setagaya"])


def question(world: World, code: str) -> Question:
    return Question.objects.get(instrument__study=world.study, code=code)


def choice(world: World, question_code: str, code: str) -> Choice:
    return Choice.objects.get(question=question(world, question_code), code=code)


def segment(world: World, code: str) -> Segment:
    return Segment.objects.get(study=world.study, code=code)


def kpi_body(world: World, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "study": world.study.pk,
        "code": "new_kpi",
        "name_ja": "新しい指標",
        "kind": "share",
        "base": "respondents",
        "numerator": segment(world, "online").pk,
        "comparator": ">=",
        "threshold": "70",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_a_segment_is_created_with_its_clauses_and_read_back_with_codes(world, client):
    body = {
        "study": world.study.pk,
        "code": "line_or_phone",
        "name_ja": "LINEか電話",
        "clauses": [
            {
                "question": question(world, "tool").pk,
                "choices": [choice(world, "tool", "line").pk, choice(world, "tool", "phone").pk],
            },
            {"question": question(world, "channels").pk, "tag": "online", "negate": True},
        ],
    }
    created = client.post("/api/v1/segments/", body, format="json")
    assert created.status_code == 201, created.json()
    read = client.get(f"/api/v1/segments/{created.json()['id']}/").json()
    assert [
        (c["question_code"], c["choice_codes"], c["tag"], c["negate"]) for c in read["clauses"]
    ] == [
        ("tool", ["line", "phone"], "", False),
        ("channels", [], "online", True),
    ]


def test_a_choice_of_another_question_is_a_field_error(world, client):
    body = {
        "study": world.study.pk,
        "code": "wrong",
        "name_ja": "誤り",
        "clauses": [
            {"question": question(world, "tool").pk, "tag": ""},
            {
                "question": question(world, "tool").pk,
                "choices": [choice(world, "reassured", "agree").pk],
            },
        ],
    }
    response = client.post("/api/v1/segments/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    # The first clause names neither choices nor a tag; the second a foreign choice.
    assert set(error["fields"]) == {"clauses.0.choices", "clauses.1.choices"}
    assert "tool" in error["fields"]["clauses.1.choices"][0]
    assert not Segment.objects.filter(code="wrong").exists()


def test_replacing_clauses_replaces_them_all(world, client):
    target = segment(world, "online")
    response = client.patch(
        f"/api/v1/segments/{target.pk}/",
        {
            "clauses": [
                {
                    "question": question(world, "tool").pk,
                    "tag": "",
                    "choices": [choice(world, "tool", "line").pk],
                }
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    assert list(Clause.objects.filter(segment=target).values_list("question__code", flat=True)) == [
        "tool"
    ]


def test_a_segment_in_use_cannot_be_deleted(world, client):
    response = client.delete(f"/api/v1/segments/{segment(world, 'online').pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "protected"
    assert Segment.objects.filter(pk=segment(world, "online").pk).exists()


def test_a_segment_code_is_unique_in_its_study(world, client):
    body = {"study": world.study.pk, "code": "online", "name_ja": "重複", "clauses": []}
    response = client.post("/api/v1/segments/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["code"]


def test_a_kpi_is_created_read_updated_and_deleted(world, client):
    created = client.post("/api/v1/kpis/", kpi_body(world), format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert client.get(f"/api/v1/kpis/{pk}/").json()["threshold"] == "70.0000"
    updated = client.put(f"/api/v1/kpis/{pk}/", kpi_body(world, threshold="80"), format="json")
    assert updated.status_code == 200, updated.json()
    assert KPI.objects.get(pk=pk).threshold == 80
    assert client.delete(f"/api/v1/kpis/{pk}/").status_code == 204
    assert not KPI.objects.filter(pk=pk).exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"threshold": "150"}, "threshold"),  # a share is a percentage
        ({"threshold": "-1"}, "threshold"),
        ({"comparator": None, "threshold": "70"}, "threshold"),  # target without comparator
        ({"numerator": None}, "numerator"),
        ({"kind": "mean", "mean_question": None}, "mean_question"),
        ({"kind": "ratio", "base": "respondents"}, "base"),
        ({"code": "reassured"}, "code"),  # taken in this study
        ({"confidence": "0.2"}, "confidence"),
        ({"kind": "chart"}, "kind"),
    ],
)
def test_an_invalid_kpi_is_refused_with_the_field_named(world, client, changes, field):
    response = client.post("/api/v1/kpis/", kpi_body(world, **changes), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert not KPI.objects.filter(code="new_kpi").exists()


def test_a_ratio_over_a_segment_without_clauses_is_refused(world, client):
    empty = Segment.objects.create(study=world.study, code="empty", name_ja="空")
    body = kpi_body(
        world, kind="ratio", base="segment", base_segment=empty.pk, comparator=">=", threshold="1"
    )
    response = client.post("/api/v1/kpis/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["base_segment"]


def test_a_mean_target_outside_the_scale_is_refused(world, client):
    body = kpi_body(
        world,
        kind="mean",
        numerator=None,
        mean_question=question(world, "reassured").pk,
        threshold="9",
    )
    response = client.post("/api/v1/kpis/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["threshold"]


def test_a_kpi_may_not_use_another_studys_segment(world, client, as_user):
    foreign = Segment.objects.create(study=world.other_study, code="foreign", name_ja="他")
    response = client.post("/api/v1/kpis/", kpi_body(world, numerator=foreign.pk), format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["numerator"]
    # Even a superuser, who sees both studies, gets the admin's rule.
    root = as_user(world.users["superuser"])
    response = root.post("/api/v1/kpis/", kpi_body(world, numerator=foreign.pk), format="json")
    assert response.status_code == 400
    assert "numerator" in response.json()["error"]["fields"]
