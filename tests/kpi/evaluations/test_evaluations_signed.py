"""A signed-off evaluation: its sign-off recorded, its signed PDF that verifies (and a
changed byte that does not), and nothing that changes afterwards — at the service, the
admin and the file — but a withdrawal by someone with the authority to sign it off.

Rendering and signing the PDF takes seconds: the evaluation is signed off once for the
module (committed, tests/committed.py) and each test works on it inside its own
transaction, rolled back after it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse

from kpi.evaluations import rendering
from kpi.evaluations import services as evaluations
from kpi.evaluations.errors import EvaluationFrozen, SignOffRefused
from kpi.evaluations.signing import make_development_certificate, verify_pdf
from kpi.evidence.tsa import serve_authority
from kpi.models import Evaluation, EvaluationRun
from kpi.scoring import execution
from surveys.models import Membership
from tests.committed import committed, without_after_commit_work
from tests.factories import build_reference_study
from tests.kpi.evaluations.test_evaluations import (
    PASSWORD,
    SIGNER,
    manager,
    sign_off,
    signer_on_every_site,
)


@pytest.fixture(scope="module")
def _module_signed(django_db_setup, django_db_blocker, signing_settings, tsa_files):  # type: ignore[no-untyped-def]
    """The reference study scored, and its evaluation signed off by Hanako, a signer of
    every site; the signed PDF is rendered after the commit, in process, and timestamped
    by a time-stamping authority on 127.0.0.1."""
    with (
        committed(django_db_blocker, private_to="evaluation"),
        override_settings(**signing_settings),
        serve_authority(tsa_files) as authority,
        override_settings(
            HYOKA_TSA_URL=authority.url, HYOKA_TSA_TRUST_ROOTS=[str(tsa_files.certificate)]
        ),
    ):
        with without_after_commit_work():
            study = build_reference_study()
        run = EvaluationRun.objects.create(study=study, trigger="command")
        run = execution.run_execute(run_id=run.pk)
        user = signer_on_every_site(manager(*[f"kpi.{p}" for p in SIGNER]), run)
        evaluation = evaluations.evaluation_create(run=run, user=user)
        sign_off(evaluation, user)
        yield evaluation.pk


@pytest.fixture
def evaluation(_module_signed, db, signing_settings, tsa_files, settings) -> Evaluation:  # type: ignore[no-untyped-def]
    for name, value in signing_settings.items():
        setattr(settings, name, value)
    settings.HYOKA_TSA_TRUST_ROOTS = [str(tsa_files.certificate)]
    return Evaluation.objects.get(pk=_module_signed)


@pytest.fixture
def run(evaluation: Evaluation) -> EvaluationRun:
    return evaluation.run


def test_sign_off_is_recorded_in_the_history(evaluation):
    record = evaluation.history.filter(status="signed_off").earliest("history_date")
    assert record.history_user.username == "hanako"
    assert record.statement == "I have reviewed the results."
    assert record.signed_off_at is not None


def test_a_signed_off_evaluation_cannot_change_in_the_services(evaluation):
    user = User.objects.get(username="hanako")
    with pytest.raises(EvaluationFrozen):
        sign_off(evaluation, user, statement="Another statement")
    with pytest.raises(EvaluationFrozen):
        evaluations.evaluation_update_draft(evaluation=evaluation, user=user, language="en")
    evaluation.refresh_from_db()
    assert (evaluation.statement, evaluation.language) == ("I have reviewed the results.", "ja")


def test_a_signed_off_evaluation_is_read_only_in_the_admin(client, evaluation):
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


# --- The signed file ---------------------------------------------------------------------


def test_the_signed_pdf_verifies_and_a_changed_byte_does_not(tmp_path, evaluation):
    assert evaluation.rendering == "done"
    data = Path(evaluation.pdf.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == evaluation.pdf_sha256
    assert verify_pdf(data).passed
    call_command("verify_evaluation", evaluation.pdf.path)  # exits 0

    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    copy = tmp_path / "tampered.pdf"
    copy.write_bytes(bytes(tampered))
    assert not verify_pdf(bytes(tampered)).passed
    with pytest.raises(CommandError, match="NOT a verified"):
        call_command("verify_evaluation", str(copy))


def test_a_pdf_signed_by_another_certificate_is_not_trusted(tmp_path, settings, evaluation):
    other = make_development_certificate(tmp_path / "other.p12", "x")
    settings.HYOKA_SIGNING_TRUST_ROOTS = [str(other.with_suffix(".pem"))]
    report = verify_pdf(Path(evaluation.pdf.path).read_bytes())
    assert report.failures == [
        "signature: the signing certificate (Common Name: Hyoka development signing "
        "certificate, Organization: Hyoka (development only), Country: JP) is not trusted "
        "(--trust)"
    ]


def test_rendering_again_keeps_the_stored_file(evaluation):
    first = evaluation.pdf_sha256
    rendering.evaluation_render_signed(evaluation_id=evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.pdf_sha256 == first


def test_withdrawal_is_recorded_and_leaves_the_signed_file_intact(evaluation):
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
    run, evaluation, first, others, allowed
):
    assert run.study.sites.count() > 1
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


def test_each_act_still_needs_its_own_permission(run, evaluation):
    only_signs = signer_on_every_site(manager("kpi.sign_off_evaluation", username="taro"), run)
    assert evaluations.may_sign(only_signs, evaluation, permission=evaluations.SIGN_OFF)
    assert not evaluations.may_sign(only_signs, evaluation, permission=evaluations.WITHDRAW)
    with pytest.raises(SignOffRefused):
        evaluations.evaluation_withdraw(evaluation=evaluation, user=only_signs, reason="No.")
    inactive = signer_on_every_site(manager(*[f"kpi.{p}" for p in SIGNER], username="jiro"), run)
    inactive.is_active = False
    assert not evaluations.may_sign(inactive, evaluation, permission=evaluations.WITHDRAW)


# --- Download ------------------------------------------------------------------------------


def test_the_signed_pdf_downloads_with_its_type_and_name(client, evaluation):
    client.force_login(User.objects.get(username="hanako"))  # a signer of every site
    response = client.get(reverse("admin:kpi_evaluation_download", args=[evaluation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        f'filename="hyoka-tokyo-dx-2021-evaluation-{evaluation.pk}-signed-ja.pdf"'
        in response["Content-Disposition"]
    )
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == evaluation.pdf_sha256


def test_a_user_without_the_view_permission_cannot_download(client, evaluation):
    client.force_login(manager("kpi.view_kpi", username="taro"))
    response = client.get(reverse("admin:kpi_evaluation_download", args=[evaluation.pk]))
    assert response.status_code == 403
