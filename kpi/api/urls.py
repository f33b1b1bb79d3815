"""Routes of the KPI API, included under /api/v1/ by ``config/api/urls.py``."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("segments", views.SegmentViewSet, basename="segment")
router.register("kpis", views.KPIViewSet, basename="kpi")
router.register("runs", views.RunViewSet, basename="run")
router.register("evaluations", views.EvaluationViewSet, basename="evaluation")

urlpatterns = router.urls
