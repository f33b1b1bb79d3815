from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FieldworkConfig(AppConfig):
    name = "fieldwork"
    verbose_name = _("Fieldwork")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from surveys.signals import (
            participant_erasing,
            participant_withdrawing,
            response_submitted,
        )

        from .receivers import (
            on_participant_erasing,
            on_participant_withdrawing,
            on_response_submitted,
        )

        participant_erasing.connect(on_participant_erasing, dispatch_uid="fieldwork.erase")
        participant_withdrawing.connect(
            on_participant_withdrawing, dispatch_uid="fieldwork.withdraw"
        )
        response_submitted.connect(on_response_submitted, dispatch_uid="fieldwork.submitted")
