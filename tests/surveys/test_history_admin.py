"""History pages in the admin: a manager reads who changed their sites' participants and
responses, when, how and from what to what; another site's history answers 404, also
once the participant is deleted; nobody saves a version back where it is not allowed."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from kpi.models import KPI
from surveys import services
from surveys.models import Membership, Participant, Response, Site
from tests.factories import ParticipantFactory, SiteFactory, complete_answers

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

PERMISSIONS = [
    "view_participant",
    "change_participant",
    "delete_participant",
    "view_response",
    "view_kpi",
    "change_kpi",
]


def member(username: str, site: Site, role: str = "manager") -> Client:
    user = User.objects.create_user(username, password="pw-history-1234", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=PERMISSIONS))
    Membership.objects.create(user=user, site=site, role=role)
    client = Client()
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.cookies["django_language"] = "en"
    return client


def form_data(response: Any) -> dict[str, Any]:
    """The POST data of a version's page as rendered."""
    data: dict[str, Any] = {}
    for bound in response.context["adminform"].form:
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):  # a multiple choice: one value per ticked box
            data[bound.html_name] = [str(item) for item in value]
        elif value is not None:
            data[bound.html_name] = str(value)
    return data


def history(model: str, pk: int) -> str:
    return reverse(f"admin:surveys_{model}_history", args=[pk])


def text(response: Any) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def sites(study) -> tuple[Site, Site]:  # type: ignore[no-untyped-def]
    return SiteFactory(study=study, code="setagaya"), SiteFactory(study=study, code="itabashi")


def test_a_manager_reads_who_withdrew_their_participant_and_from_what_to_what(sites):
    own, _other = sites
    client = member("kato", own)
    participant = ParticipantFactory(site=own)
    answer = client.post(
        reverse("admin:surveys_participant_changelist"),
        {
            "action": "withdraw",
            helpers.ACTION_CHECKBOX_NAME: [participant.pk],
            "confirmed": "yes",
        },
    )
    assert answer.status_code == 302
    page = client.get(history("participant", participant.pk))
    assert page.status_code == 200
    latest = page.context["page_obj"].object_list[0]
    assert (latest.actor, latest.history_change_reason) == ("kato", "participant withdrawn")
    assert latest.history_delta_changes == [
        {"field": "Status", "old": "Active", "new": "Withdrawn"}
    ]
    assert "Status:</strong> <bdi>Active</bdi> → <bdi>Withdrawn</bdi>" in text(page)
    assert participant.token_hash not in text(page)


def test_a_response_history_shows_the_participants_answers_and_their_changes(sites):
    own, _other = sites
    client = member("kato", own)
    participant = ParticipantFactory(site=own)
    services.response_save_draft(
        participant=participant, answers=complete_answers(tool="line"), language="ja"
    )
    services.response_submit(
        participant=participant, answers=complete_answers(tool="phone"), language="en"
    )
    response = Response.objects.get(participant=participant)
    page = client.get(history("response", response.pk))
    assert page.status_code == 200
    versions = page.context["page_obj"].object_list
    assert [v.actor for v in versions] == ["the participant", "the participant"]
    changes = {c["field"]: (c["old"], c["new"]) for c in versions[0].history_delta_changes}
    assert changes["Status"] == ("Draft", "Submitted")
    assert changes["Language"] == ("Japanese", "English")
    answers = page.context["answer_changes"]
    assert [(a.action, a.question, a.value.split()[0]) for a in answers[:2]] == [
        ("answered", "tool", "phone"),
        ("answer removed", "tool", "line"),
    ] or [(a.action, a.question, a.value.split()[0]) for a in answers[:2]] == [
        ("answer removed", "tool", "line"),
        ("answered", "tool", "phone"),
    ]
    assert "participant submission (web)" in text(page)
    assert "Changes to its answers" in text(page)


def test_another_sites_participant_and_response_histories_answer_404(sites):
    own, other = sites
    client = member("kato", own)
    theirs = ParticipantFactory(site=other)
    response = services.response_submit(
        participant=theirs, answers=complete_answers(), language="ja"
    )
    assert client.get(history("participant", theirs.pk)).status_code == 404
    assert client.get(history("response", response.pk)).status_code == 404
    version = Participant.history.filter(id=theirs.pk).get()  # type: ignore[attr-defined]
    form = reverse("admin:surveys_participant_simple_history", args=[theirs.pk, version.pk])
    assert client.get(form).status_code == 404


def test_a_deleted_participants_history_stays_readable_by_its_sites_members_only(sites):
    own, other = sites
    client, outsider = member("kato", own), member("ito", other)
    participant = ParticipantFactory(site=own)
    delete = reverse("admin:surveys_participant_delete", args=[participant.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not Participant.objects.filter(pk=participant.pk).exists()
    page = client.get(history("participant", participant.pk))
    assert page.status_code == 200
    latest = page.context["page_obj"].object_list[0]
    assert (latest.history_type, latest.actor) == ("-", "kato")
    assert outsider.get(history("participant", participant.pk)).status_code == 404


def test_no_one_saves_a_participants_version_back(sites, admin_client):
    own, _other = sites
    participant = ParticipantFactory(site=own, reference="P-old")
    participant.reference = "P-new"
    participant.save()
    version = Participant.history.earliest("history_id")  # type: ignore[attr-defined]
    form = reverse("admin:surveys_participant_simple_history", args=[participant.pk, version.pk])
    assert admin_client.get(form).status_code == 200
    answer = admin_client.post(form, {"reference": "P-old", "_change_history": "1"})
    assert answer.status_code == 403
    participant.refresh_from_db()
    assert participant.reference == "P-new"


def test_a_kpi_version_is_restored_only_by_someone_who_may_change_it_as_a_new_record(
    sites,
):
    from kpi.definitions.loading import kpis_path, load_kpis

    own, _other = sites
    load_kpis(study=own.study, path=kpis_path())  # type: ignore[arg-type]
    kpi = KPI.objects.get(study=own.study, code="reassured")
    kpi.threshold = 80
    kpi.save()
    first = kpi.history.earliest("history_id")  # type: ignore[attr-defined]
    form = reverse("admin:kpi_kpi_simple_history", args=[kpi.pk, first.pk])
    viewer, manager = member("ito", own, role="viewer"), member("kato", own)
    data = form_data(manager.get(form))
    assert data["threshold"] == "70"
    assert viewer.post(form, data).status_code == 403
    kpi.refresh_from_db()
    assert kpi.threshold == 80
    assert manager.post(form, data).status_code == 302
    kpi.refresh_from_db()
    assert kpi.threshold == 70
    versions = list(kpi.history.order_by("history_id"))  # type: ignore[attr-defined]
    assert [v.threshold for v in versions] == [70, 80, 70]
    assert (versions[-1].history_type, versions[-1].history_user.username) == ("~", "kato")
