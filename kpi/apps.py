from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KpiConfig(AppConfig):
    name = "kpi"
    verbose_name = _("KPIs and evaluations")

    def ready(self) -> None:
        from kpi.definitions.copying import on_study_copied
        from kpi.scoring.receivers import on_response_submitted
        from surveys.signals import response_submitted, study_copied

        response_submitted.connect(on_response_submitted, dispatch_uid="kpi.score_on_submission")
        study_copied.connect(on_study_copied, dispatch_uid="kpi.copy_definitions")
