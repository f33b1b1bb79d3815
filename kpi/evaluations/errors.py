"""Rule violations of the KPI app (one error type, shared with surveys)."""

from django.utils.translation import gettext_lazy as _

from surveys.errors import RuleViolation


class RunNotSucceeded(RuleViolation):
    code = "run_not_succeeded"
    default_message = _("An evaluation can only be made from a run that succeeded.")


class EvaluationFrozen(RuleViolation):
    code = "evaluation_frozen"
    default_message = _("This evaluation has been signed off and can no longer change.")


class SignOffRefused(RuleViolation):
    code = "sign_off_refused"
    default_message = _("The sign-off was refused.")
