"""Routes of the KPI API, included under /api/v1/ by ``config/api/urls.py``; the viewsets
live with their subdomain."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from kpi.definitions.api import KPIViewSet, SegmentViewSet
from kpi.evaluations.api import EvaluationViewSet
from kpi.registration.api import DeviationViewSet, RegistrationViewSet
from kpi.scoring.api import CrosstabView, RunViewSet

router = SimpleRouter()
router.register("segments", SegmentViewSet, basename="segment")
router.register("kpis", KPIViewSet, basename="kpi")
router.register("runs", RunViewSet, basename="run")
router.register("evaluations", EvaluationViewSet, basename="evaluation")
router.register("registrations", RegistrationViewSet, basename="registration")
router.register("deviations", DeviationViewSet, basename="deviation")

urlpatterns = [*router.urls, path("crosstab/", CrosstabView.as_view(), name="crosstab")]
