"""The audit trail of KPI targets and evaluations: an edit in the admin or through the
API, a sign-off and a withdrawal each leave a record saying who, when, how and what
changed from what to what; so do changes made by a command or a task."""

from __future__ import annotations

from typing import Any

import pytest
from celery import shared_task
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from kpi.evaluations import services as evaluations
from kpi.models import KPI, Evaluation, EvaluationRun
from kpi.scoring.execution import run_execute
from surveys.history import AuditedCommand
from surveys.models import Membership, Site, Study
from tests.kpi.test_admin import form_data

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

PASSWORD = "pw-audit-12345"


@pytest.fixture
def kpis(study) -> Study:  # type: ignore[no-untyped-def]
    from kpi.definitions.loading import kpis_path, load_kpis

    load_kpis(study=study, path=kpis_path())  # type: ignore[arg-type]
    return study


def records(obj: Any) -> list[tuple[str, str | None, str | None]]:
    return [
        (r.history_type, r.history_change_reason, r.history_user and r.history_user.username)
        for r in obj.history.order_by("history_id").select_related("history_user")
    ]


def latest_changes(obj: Any) -> dict[str, tuple[Any, Any]]:
    new, old = obj.history.order_by("-history_id")[:2]
    return {c.field: (c.old, c.new) for c in new.diff_against(old).changes}


def test_a_target_edited_in_the_admin_is_recorded_with_who_how_old_and_new(kpis):
    user = User.objects.create_superuser("kato", password=PASSWORD)
    client = Client()
    client.force_login(user)
    kpi = KPI.objects.get(study=kpis, code="reassured")
    change = reverse("admin:kpi_kpi_change", args=[kpi.pk])
    data = form_data(client.get(change))
    data["threshold"] = "75"
    assert client.post(change, data).status_code == 302
    assert records(kpi)[-1] == ("~", "admin", "kato")
    assert latest_changes(kpi) == {"threshold": (70, 75)}


def test_a_target_edited_through_the_api_is_recorded_with_who_how_old_and_new(kpis):
    user = User.objects.create_superuser("api-kato", password=PASSWORD)
    client = APIClient()
    client.force_authenticate(user)
    kpi = KPI.objects.get(study=kpis, code="reassured")
    answer = client.patch(f"/api/v1/kpis/{kpi.pk}/", {"threshold": "80"}, format="json")
    assert answer.status_code == 200, answer.json()
    assert records(kpi)[-1] == ("~", "api", "api-kato")
    assert latest_changes(kpi) == {"threshold": (70, 80)}


def signer(site: Site) -> User:
    user = User.objects.create_user("hanako", password=PASSWORD)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["sign_off_evaluation", "withdraw_evaluation"])
    )
    Membership.objects.create(user=user, site=site, role="signer")
    return User.objects.get(pk=user.pk)  # permissions are cached on the instance


def test_sign_off_and_withdrawal_are_recorded_with_who_how_old_and_new(kpis, site):
    run = EvaluationRun.objects.create(study=kpis, trigger=EvaluationRun.Trigger.COMMAND)
    user = signer(site)
    evaluation = evaluations.evaluation_create(run=run_execute(run_id=run.pk), user=user)
    evaluations.evaluation_sign_off(
        evaluation=evaluation,
        user=user,
        password=PASSWORD,
        statement="Checked.",
        signer_name="Hanako Sato",
        signer_role="Director",
    )
    signed = latest_changes(evaluation)
    assert signed["status"] == ("draft", "signed_off")
    assert signed["statement"] == ("", "Checked.")
    assert signed["signed_off_by"] == (None, user.pk)
    evaluations.evaluation_withdraw(evaluation=evaluation, user=user, reason="Wrong cut-off.")
    withdrawn = latest_changes(evaluation)
    assert withdrawn["status"] == ("signed_off", "withdrawn")
    assert withdrawn["withdrawal_reason"] == ("", "Wrong cut-off.")
    assert records(evaluation) == [
        ("+", "evaluation created", "hanako"),
        ("~", "evaluation signed off", "hanako"),
        ("~", "evaluation withdrawn", "hanako"),
    ]
    assert Evaluation.objects.get(pk=evaluation.pk).status == "withdrawn"


class ProbeCommand(AuditedCommand):
    def handle(self, *args: object, **options: Any) -> None:
        KPI.objects.filter(code="reassured").get().save()


@shared_task(name="tests.audit_probe")
def probe_task() -> None:
    KPI.objects.filter(code="reassured").get().save()


def test_changes_made_by_a_command_or_a_task_name_it(kpis):
    kpi = KPI.objects.get(study=kpis, code="reassured")
    call_command(ProbeCommand())
    probe_task.apply()
    assert records(kpi)[-2:] == [
        ("~", "command: test_audit", None),
        ("~", "task: tests.audit_probe", None),
    ]
    kpi.save()  # outside both: no reason
    assert records(kpi)[-1] == ("~", None, None)
