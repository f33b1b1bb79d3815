"""Evaluations: a frozen snapshot and a sign-off that takes the permission, the password, a
statement and a name. The signed PDF, and nothing changing afterwards at the service, the
admin and the file, are tests/kpi/test_evaluations_signed.py."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from kpi.evaluations import services as evaluations
from kpi.evaluations import snapshot as snapshots
from kpi.evaluations.errors import RunNotSucceeded, SignOffRefused
from kpi.models import KPI, Evaluation, EvaluationRun
from kpi.scoring import execution
from surveys import services as survey_services
from surveys.models import Membership
from tests.factories import complete_answers

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _signing(signing_settings, settings):  # type: ignore[no-untyped-def]
    for name, value in signing_settings.items():
        setattr(settings, name, value)


@pytest.fixture
def run(reference_study) -> EvaluationRun:  # type: ignore[no-untyped-def]
    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    return execution.run_execute(run_id=run.pk)


def manager(*permissions: str, username: str = "hanako") -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    codenames = [p.split(".")[1] for p in permissions]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh permission cache


SIGNER = ("sign_off_evaluation", "view_evaluation", "add_evaluation", "withdraw_evaluation")


def signer_on_every_site(user: User, run: EvaluationRun) -> User:
    """The signer role on every site of the run's study: what the admin asks of someone who
    reads or signs off a report showing every site's results."""
    for site in run.study.sites.all():
        Membership.objects.create(user=user, site=site, role="signer")
    return user


def sign_off(evaluation: Evaluation, user: User, **overrides: str) -> Evaluation:
    fields = {
        "password": PASSWORD,
        "statement": "I have reviewed the results.",
        "signer_name": "Hanako Yamada",
        "signer_role": "Programme manager",
        **overrides,
    }
    return evaluations.evaluation_sign_off(evaluation=evaluation, user=user, **fields)


# --- Creation and the snapshot --------------------------------------------------------------


def test_an_evaluation_is_made_only_from_a_succeeded_run(reference_study):
    queued = EvaluationRun.objects.create(study=reference_study, trigger="command")
    with pytest.raises(RunNotSucceeded):
        evaluations.evaluation_create(run=queued, user=None)


def test_the_snapshot_keeps_the_results_and_its_digest_can_be_recomputed(run):
    evaluation = evaluations.evaluation_create(run=run, user=None)
    evaluation.refresh_from_db()  # as stored and read back
    content = evaluation.snapshot
    overall = {r["kpi_code"]: r for r in content["results"] if r["site"] is None}
    assert (overall["understood"]["numerator"], overall["understood"]["denominator"]) == (155, 156)
    assert content["distributions"]["overall"]["tool"]["line"] == 199
    assert content["distributions"]["overall"]["tool"]["_answered"] == 229
    assert content["instrument"]["questions"][0]["code"] == "channels"
    recomputed = hashlib.sha256(snapshots.canonical(content)).hexdigest()
    assert recomputed == evaluation.snapshot_sha256


def test_later_kpi_edits_and_responses_do_not_touch_an_evaluation(run):
    evaluation = evaluations.evaluation_create(run=run, user=None)
    before = evaluation.snapshot_sha256
    KPI.objects.filter(study=run.study, code="reassured").update(threshold=Decimal("99"))
    participant = run.study.sites.get(code="itabashi").participants.exclude(
        response__status="submitted"
    )[0]
    survey_services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    execution.run_execute(
        run_id=EvaluationRun.objects.create(study=run.study, trigger="command").pk
    )
    evaluation.refresh_from_db()
    assert snapshots.digest(evaluation.snapshot) == before == evaluation.snapshot_sha256


# --- Sign-off ---------------------------------------------------------------------------------


def test_signing_off_needs_the_permission(run):
    user = manager("kpi.view_evaluation")
    evaluation = evaluations.evaluation_create(run=run, user=user)
    with pytest.raises(SignOffRefused):
        sign_off(evaluation, user)
    evaluation.refresh_from_db()
    assert evaluation.status == "draft"


def test_signing_off_needs_the_signers_password(run):
    user = signer_on_every_site(manager("kpi.sign_off_evaluation"), run)
    evaluation = evaluations.evaluation_create(run=run, user=user)
    with pytest.raises(SignOffRefused) as caught:
        sign_off(evaluation, user, password="wrong")
    assert "password" in caught.value.errors
    evaluation.refresh_from_db()
    assert evaluation.status == "draft"


def test_signing_off_needs_a_statement_and_a_name(run):
    user = signer_on_every_site(manager("kpi.sign_off_evaluation"), run)
    evaluation = evaluations.evaluation_create(run=run, user=user)
    with pytest.raises(SignOffRefused) as caught:
        sign_off(evaluation, user, statement="  ", signer_name="")
    assert set(caught.value.errors) == {"statement", "signer_name"}


def test_the_admin_sign_off_form_checks_the_password(run, client):
    user = signer_on_every_site(manager(*[f"kpi.{p}" for p in SIGNER]), run)
    evaluation = evaluations.evaluation_create(run=run, user=user)
    client.force_login(user)
    url = reverse("admin:kpi_evaluation_sign_off", args=[evaluation.pk])
    response = client.post(
        url, {"signer_name": "H", "statement": "Reviewed.", "password": "nope", "signer_role": ""}
    )
    assert response.status_code == 200
    evaluation.refresh_from_db()
    assert evaluation.status == "draft"
