"""Rule violations of registration and the lock (the one error type, surveys.errors)."""

from django.utils.translation import gettext_lazy as _

from surveys.errors import RuleViolation


class RegistrationRefused(RuleViolation):
    code = "registration_refused"
    default_message = _("The KPI specification was not registered.")


class SpecificationLocked(RuleViolation):
    code = "specification_locked"
    default_message = _(
        "The KPI specification of this study is registered: it can change only by a "
        "recorded deviation, made by a signer."
    )


class DeviationRefused(RuleViolation):
    code = "deviation_refused"
    default_message = _("The deviation was not recorded.")
