"""Writes of evaluations: create from a run, sign off, withdraw, change a draft.

Every change goes through here (or ``rendering``, for the signed file), and here a
signed-off evaluation is refused any change but the one-time rendering of its signed file
(enqueued at sign-off) and a withdrawal (a new, recorded act that leaves the file
intact). The admin shows it read-only and the API refuses too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kpi.scoring.models import EvaluationRun
from surveys import scoping
from surveys.bidi import strip_bidi_controls
from surveys.history import Reason, recorded_by, save_with_reason
from surveys.models import Membership, Site

from . import snapshot as snapshots
from .errors import EvaluationFrozen, RunNotSucceeded, SignOffRefused
from .models import Evaluation
from .selectors import evaluation_locked
from .tasks import render_evaluation

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser


SIGN_OFF = "kpi.sign_off_evaluation"
WITHDRAW = "kpi.withdraw_evaluation"


def may_sign(user: User, evaluation: Evaluation, *, permission: str) -> bool:
    """Whether ``user`` may sign off (``permission=SIGN_OFF``) or withdraw (``WITHDRAW``)
    ``evaluation``. Both acts take the same authority: the act's permission, the signer
    role on a site of the study, and a role on every site of the study, since the report
    signed or withdrawn shows every site's results. The admin and the API ask here."""
    if not user.is_authenticated or not user.has_perm(permission):  # type: ignore[attr-defined]
        return False
    if scoping.sees_everything(user):
        return True
    sites = Site.objects.filter(study_id=evaluation.study_id)
    return (
        scoping.sites(user, sites, at_least=Membership.Role.SIGNER).exists()
        and scoping.sites(user, sites).count() == sites.count()
    )


def _user_id(user: User | None) -> int | None:
    return user.pk if user is not None and user.is_authenticated else None


def evaluation_create(*, run: EvaluationRun, user: User | None, language: str = "ja") -> Evaluation:
    """A draft evaluation holding a frozen copy of the run's results."""
    if run.status != EvaluationRun.Status.SUCCEEDED:
        raise RunNotSucceeded()
    if language not in {"ja", "en"}:
        raise SignOffRefused(_("The report language must be Japanese or English."))
    content = snapshots.build(run)
    evaluation = Evaluation(
        study_id=run.study_id,
        run=run,
        language=language,
        snapshot=content,
        snapshot_sha256=snapshots.digest(content),
        created_by_id=_user_id(user),
    )
    with recorded_by(user):
        save_with_reason(evaluation, Reason.EVALUATION_CREATED.value)
    return evaluation


def evaluation_sign_off(
    *,
    evaluation: Evaluation,
    user: AbstractBaseUser,
    password: str,
    statement: str,
    signer_name: str,
    signer_role: str,
) -> Evaluation:
    """Sign off a draft: the signer's permission, password and statement are checked,
    the act is recorded, and the signed PDF is rendered by a task after commit."""
    if not may_sign(user, evaluation, permission=SIGN_OFF):
        raise SignOffRefused(_("You do not have permission to sign off evaluations."))
    if not password or not user.check_password(password):
        raise SignOffRefused(
            _("The password is not correct."),
            errors={"password": _("The password is not correct.")},
        )
    # Printed in the signed PDF beside the results: no direction controls (surveys/bidi.py).
    statement, signer_name, signer_role = (
        strip_bidi_controls(text) for text in (statement, signer_name, signer_role)
    )
    errors = {}
    if not statement.strip():
        errors["statement"] = _("Write the statement you sign off with.")
    if not signer_name.strip():
        errors["signer_name"] = _("Give the signer's name as it should appear in the report.")
    if errors:
        raise SignOffRefused(_("The sign-off is incomplete."), errors=errors)
    with transaction.atomic():
        evaluation = evaluation_locked(evaluation)
        if evaluation.is_frozen:
            raise EvaluationFrozen()
        if snapshots.digest(evaluation.snapshot) != evaluation.snapshot_sha256:
            raise SignOffRefused(_("The stored results do not match their digest."))
        evaluation.status = Evaluation.Status.SIGNED_OFF
        evaluation.signed_off_by_id = user.pk
        evaluation.signed_off_at = timezone.now()
        evaluation.statement = statement.strip()
        evaluation.signer_name = signer_name.strip()
        evaluation.signer_role = signer_role.strip()
        evaluation.rendering = Evaluation.Rendering.PENDING
        with recorded_by(user):
            save_with_reason(evaluation, Reason.SIGNED_OFF.value)
        evaluation_id = evaluation.pk
        _enqueue_render(evaluation_id)
    return evaluation


def _enqueue_render(evaluation_id: int) -> None:
    """Render once this transaction commits (config.celery.Task: never fails the caller)."""
    render_evaluation.apply_async_on_commit((evaluation_id,))


def evaluation_withdraw(
    *, evaluation: Evaluation, user: AbstractBaseUser, reason: str
) -> Evaluation:
    if not may_sign(user, evaluation, permission=WITHDRAW):
        raise SignOffRefused(_("You do not have permission to withdraw evaluations."))
    if not reason.strip():
        raise SignOffRefused(
            _("Give the reason for the withdrawal."), errors={"reason": _("Give the reason.")}
        )
    with transaction.atomic():
        evaluation = evaluation_locked(evaluation)
        if evaluation.status != Evaluation.Status.SIGNED_OFF:
            raise SignOffRefused(_("Only a signed-off evaluation can be withdrawn."))
        evaluation.status = Evaluation.Status.WITHDRAWN
        evaluation.withdrawn_by_id = user.pk
        evaluation.withdrawn_at = timezone.now()
        evaluation.withdrawal_reason = reason.strip()
        with recorded_by(user):
            save_with_reason(evaluation, Reason.WITHDRAWN.value)
    return evaluation


def evaluation_update_draft(
    *, evaluation: Evaluation, user: User | None, **fields: Any
) -> Evaluation:
    """Change a draft's editable fields (its language); refused once signed off."""
    with transaction.atomic():
        evaluation = evaluation_locked(evaluation)
        if evaluation.is_frozen:
            raise EvaluationFrozen()
        for name, value in fields.items():
            if name != "language":
                raise SignOffRefused(_("Only the report language of a draft can change."))
            if value not in {"ja", "en"}:
                raise SignOffRefused(_("The report language must be Japanese or English."))
            setattr(evaluation, name, value)
        with recorded_by(user):
            evaluation.save()
    return evaluation
