"""The registration's admin page and API, and their scope: a manager of another study's
site neither sees nor registers this one; a registered KPI's API change answers 409."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from kpi.models import KPI, Deviation, Registration
from tests.factories import SiteFactory, StudyFactory

from .conftest import PASSWORD, account


@pytest.fixture
def stranger(db):  # type: ignore[no-untyped-def]
    """A signer of another study's site."""
    other = SiteFactory(study=StudyFactory())
    return account("stranger", role="signer", sites=[other])


def post(client, url: str, data: dict):  # type: ignore[no-untyped-def]
    return client.post(url, data, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")


def test_the_api_registers_and_shows_the_hash_time_and_specification(planned, signer, client, tsa):
    client.force_login(signer)
    response = post(
        client,
        "/api/v1/registrations/",
        {"study": planned.pk, "password": PASSWORD, "statement": "Fixed before fieldwork."},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    registration = Registration.objects.get()
    assert body["sha256"] == registration.sha256
    assert body["specification"] == json.loads(bytes(registration.canonical_json))
    assert dt.datetime.fromisoformat(body["timestamped_at"]) == registration.timestamped_at
    listed = client.get("/api/v1/registrations/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert [r["id"] for r in listed["results"]] == [registration.pk]


def test_the_api_refuses_a_wrong_password_with_its_message(planned, signer, client, tsa):
    client.force_login(signer)
    response = post(
        client,
        "/api/v1/registrations/",
        {"study": planned.pk, "password": "wrong", "statement": "x"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["password"] == ["The password is not correct."]
    assert not Registration.objects.exists()


def test_a_manager_of_another_study_can_neither_see_nor_register(registered, stranger, client):
    client.force_login(stranger)
    assert client.get("/api/v1/registrations/").json()["results"] == []
    assert client.get(f"/api/v1/registrations/{registered.pk}/").status_code == 404
    other = StudyFactory()
    response = post(
        client,
        "/api/v1/registrations/",
        {"study": registered.study_id, "password": PASSWORD, "statement": "x"},
    )
    assert response.status_code == 400  # "does not exist" for a study out of scope
    assert "study" in response.json()["error"]["fields"]
    assert other.pk  # (another study exists, unregistered)
    assert client.get(
        reverse("admin:kpi_registration_change", args=[registered.pk])
    ).status_code in (302, 404)
    page = client.get(reverse("admin:kpi_registration_add"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert f'value="{registered.study_id}"' not in page.content.decode()


def test_the_api_answers_409_to_a_change_of_a_registered_kpi(registered, signer, client):
    kpi = KPI.objects.filter(study=registered.study).exclude(threshold=None).first()
    client.force_login(signer)
    response = client.patch(
        f"/api/v1/kpis/{kpi.pk}/",
        {"threshold": "1"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "specification_locked"
    assert "recorded deviation" in response.json()["error"]["message"]


def test_the_api_records_a_deviation(registered, signer, client):
    kpi = KPI.objects.filter(study=registered.study).exclude(threshold=None).first()
    client.force_login(signer)
    response = post(
        client,
        "/api/v1/deviations/",
        {"kpi": kpi.pk, "threshold": "60", "password": PASSWORD, "reason": "Revised by the board."},
    )
    assert response.status_code == 201, response.content
    kpi.refresh_from_db()
    assert kpi.threshold == Decimal("60")
    assert Deviation.objects.get().new_value == {"threshold": "60.0000"}
    detail = client.get(f"/api/v1/registrations/{registered.pk}/").json()
    assert [d["what"] for d in detail["deviations"]] == [f"kpi {kpi.code}: threshold"]


def test_the_admin_page_registers_and_shows_hash_and_time(planned, signer, client, tsa):
    client.force_login(signer)
    url = reverse("admin:kpi_registration_add")
    page = client.get(url, {"study": planned.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "Register the KPI specification" in page.content.decode()
    wrong = client.post(
        url,
        {"study": planned.pk, "statement": "Fixed.", "password": "wrong"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "The password is not correct." in wrong.content.decode()
    done = client.post(
        url,
        {"study": planned.pk, "statement": "Fixed.", "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    registration = Registration.objects.get()
    html = done.content.decode()
    assert registration.sha256 in html
    assert registration.timestamped_at.isoformat() in html
    assert (
        "KPI specification registered and timestamped" in html
        or "registered and timestamped" in html
    )
    assert '"computing_rules"' in html.replace("&quot;", '"')


def test_the_admin_refuses_after_fieldwork_opened_with_the_reason(planned, signer, client, tsa):
    from django.utils import timezone

    planned.sites.update(survey_opens_at=timezone.now())
    client.force_login(signer)
    response = client.post(
        reverse("admin:kpi_registration_add"),
        {"study": planned.pk, "statement": "Fixed.", "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "must be registered before fieldwork" in response.content.decode()
    assert not Registration.objects.exists()


def test_the_study_page_links_to_registering_then_to_the_registration(planned, signer, client, tsa):
    from django.contrib.auth.models import Permission

    signer.user_permissions.add(Permission.objects.get(codename="view_studyresults"))
    client.force_login(signer)
    page = reverse("admin:kpi_studyresults_change", args=[planned.pk])
    html = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"{reverse('admin:kpi_registration_add')}?study={planned.pk}" in html
    registration = post(
        client,
        "/api/v1/registrations/",
        {"study": planned.pk, "password": PASSWORD, "statement": "Fixed."},
    )
    assert registration.status_code == 201
    html = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert reverse("admin:kpi_registration_change", args=[registration.json()["id"]]) in html
