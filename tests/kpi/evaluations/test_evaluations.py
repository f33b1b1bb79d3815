"""Evaluations: a frozen snapshot, a recorded sign-off, a signed PDF that verifies, and
nothing that changes afterwards — at the service, the admin and the file."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.urls import reverse

from kpi.evaluations import rendering
from kpi.evaluations import services as evaluations
from kpi.evaluations import snapshot as snapshots
from kpi.evaluations.errors import EvaluationFrozen, RunNotSucceeded, SignOffRefused
from kpi.evaluations.signing import make_development_certificate, verify_pdf
from kpi.models import KPI, Evaluation, EvaluationRun
from kpi.scoring import execution
from surveys import services as survey_services
from surveys.models import Membership
from tests.factories import complete_answers

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def signing_certificate(tmp_path: Path, settings):  # type: ignore[no-untyped-def]
    path = make_development_certificate(tmp_path / "signing.p12", "test-passphrase")
    settings.HYOKA_SIGNING_P12 = str(path)
    settings.HYOKA_SIGNING_PASSPHRASE = "test-passphrase"
    settings.HYOKA_SIGNING_TRUST_ROOTS = []
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return path


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


def signed(run: EvaluationRun, django_capture_on_commit_callbacks) -> Evaluation:  # type: ignore[no-untyped-def]
    user = signer_on_every_site(manager(*[f"kpi.{p}" for p in SIGNER]), run)
    evaluation = evaluations.evaluation_create(run=run, user=user)
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(evaluation, user)
    evaluation.refresh_from_db()
    return evaluation


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


def test_sign_off_is_recorded_in_the_history(run, django_capture_on_commit_callbacks):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    record = evaluation.history.filter(status="signed_off").earliest("history_date")
    assert record.history_user.username == "hanako"
    assert record.statement == "I have reviewed the results."
    assert record.signed_off_at is not None


def test_a_signed_off_evaluation_cannot_change_in_the_services(
    run, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    user = User.objects.get(username="hanako")
    with pytest.raises(EvaluationFrozen):
        sign_off(evaluation, user, statement="Another statement")
    with pytest.raises(EvaluationFrozen):
        evaluations.evaluation_update_draft(evaluation=evaluation, user=user, language="en")
    evaluation.refresh_from_db()
    assert (evaluation.statement, evaluation.language) == ("I have reviewed the results.", "ja")


def test_a_signed_off_evaluation_is_read_only_in_the_admin(
    run, client, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    url = reverse("admin:kpi_evaluation_change", args=[evaluation.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"language": "en", "statement": "x"}).status_code == 403
    delete = reverse("admin:kpi_evaluation_delete", args=[evaluation.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    sign_again = reverse("admin:kpi_evaluation_sign_off", args=[evaluation.pk])
    response = client.post(
        sign_again,
        {"signer_name": "X", "statement": "Y", "password": PASSWORD, "signer_role": ""},
    )
    assert response.status_code == 200  # the form again, with the refusal
    evaluation.refresh_from_db()
    assert (evaluation.signer_name, evaluation.statement) == (
        "Hanako Yamada",
        "I have reviewed the results.",
    )


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


# --- The signed file ---------------------------------------------------------------------


def test_the_signed_pdf_verifies_and_a_changed_byte_does_not(
    run, tmp_path, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    assert evaluation.rendering == "done"
    data = Path(evaluation.pdf.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == evaluation.pdf_sha256
    assert verify_pdf(data).ok
    call_command("verify_evaluation", evaluation.pdf.path)  # exits 0

    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    copy = tmp_path / "tampered.pdf"
    copy.write_bytes(bytes(tampered))
    assert not verify_pdf(bytes(tampered)).ok
    with pytest.raises(CommandError, match="NOT a verified"):
        call_command("verify_evaluation", str(copy))


def test_a_pdf_signed_by_another_certificate_is_not_trusted(
    run, tmp_path, settings, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    other = make_development_certificate(tmp_path / "other.p12", "x")
    settings.HYOKA_SIGNING_TRUST_ROOTS = [str(other.with_suffix(".pem"))]
    verification = verify_pdf(Path(evaluation.pdf.path).read_bytes())
    assert verification.intact
    assert not verification.trusted
    assert not verification.ok


def test_rendering_again_keeps_the_stored_file(run, django_capture_on_commit_callbacks):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    first = evaluation.pdf_sha256
    rendering.evaluation_render_signed(evaluation_id=evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.pdf_sha256 == first


def test_withdrawal_is_recorded_and_leaves_the_signed_file_intact(
    run, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    digest = evaluation.pdf_sha256
    user = User.objects.get(username="hanako")
    evaluations.evaluation_withdraw(
        evaluation=evaluation, user=user, reason="A site was miscounted."
    )
    evaluation.refresh_from_db()
    assert evaluation.status == "withdrawn"
    assert evaluation.withdrawn_by == user
    assert hashlib.sha256(Path(evaluation.pdf.path).read_bytes()).hexdigest() == digest
    assert evaluation.history.filter(status="withdrawn").exists()
    with pytest.raises(SignOffRefused):
        evaluations.evaluation_withdraw(evaluation=evaluation, user=user, reason="again")


def _roles(user: User, run: EvaluationRun, first: str, others: str | None) -> User:
    """``first`` on the study's first site, ``others`` (or nothing) on every other one."""
    first_site, *other_sites = run.study.sites.order_by("pk")
    Membership.objects.create(user=user, site=first_site, role=first)
    for site in other_sites if others else []:
        Membership.objects.create(user=user, site=site, role=others)
    return user


@pytest.mark.parametrize(
    ("first", "others", "allowed"),
    [
        ("signer", None, False),  # the report shows sites this signer may not see
        ("manager", "manager", False),  # sees every site, but signs nowhere
        ("signer", "viewer", True),
        ("signer", "signer", True),
    ],
)
def test_withdrawing_takes_the_same_authority_as_signing_off(
    run, django_capture_on_commit_callbacks, first, others, allowed
):
    assert run.study.sites.count() > 1
    evaluation = signed(run, django_capture_on_commit_callbacks)
    draft = evaluations.evaluation_create(run=run, user=None)
    user = _roles(manager(*[f"kpi.{p}" for p in SIGNER], username="taro"), run, first, others)

    for act in (evaluations.SIGN_OFF, evaluations.WITHDRAW):
        assert evaluations.may_sign(user, evaluation, permission=act) is allowed
    if allowed:
        sign_off(draft, user, signer_name="Taro")
        evaluations.evaluation_withdraw(evaluation=evaluation, user=user, reason="Miscounted.")
    else:
        with pytest.raises(SignOffRefused):
            sign_off(draft, user, signer_name="Taro")
        with pytest.raises(SignOffRefused):
            evaluations.evaluation_withdraw(evaluation=evaluation, user=user, reason="Miscounted.")
    evaluation.refresh_from_db()
    draft.refresh_from_db()
    expected = ("withdrawn", "signed_off") if allowed else ("signed_off", "draft")
    assert (evaluation.status, draft.status) == expected


def test_each_act_still_needs_its_own_permission(run, django_capture_on_commit_callbacks):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    only_signs = signer_on_every_site(manager("kpi.sign_off_evaluation", username="taro"), run)
    assert evaluations.may_sign(only_signs, evaluation, permission=evaluations.SIGN_OFF)
    assert not evaluations.may_sign(only_signs, evaluation, permission=evaluations.WITHDRAW)
    with pytest.raises(SignOffRefused):
        evaluations.evaluation_withdraw(evaluation=evaluation, user=only_signs, reason="No.")
    inactive = signer_on_every_site(manager(*[f"kpi.{p}" for p in SIGNER], username="jiro"), run)
    inactive.is_active = False
    assert not evaluations.may_sign(inactive, evaluation, permission=evaluations.WITHDRAW)


# --- Download ------------------------------------------------------------------------------


def test_the_signed_pdf_downloads_with_its_type_and_name(
    run, client, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    client.force_login(User.objects.get(username="hanako"))  # a signer of every site
    response = client.get(reverse("admin:kpi_evaluation_download", args=[evaluation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        f'filename="hyoka-tokyo-dx-2021-evaluation-{evaluation.pk}-signed-ja.pdf"'
        in response["Content-Disposition"]
    )
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == evaluation.pdf_sha256


def test_a_user_without_the_view_permission_cannot_download(
    run, client, django_capture_on_commit_callbacks
):
    evaluation = signed(run, django_capture_on_commit_callbacks)
    client.force_login(manager("kpi.view_kpi", username="taro"))
    response = client.get(reverse("admin:kpi_evaluation_download", args=[evaluation.pk]))
    assert response.status_code == 403
