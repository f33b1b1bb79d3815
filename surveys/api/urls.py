"""Routes of the survey API, included under /api/v1/ by ``config/api/urls.py``."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views
from .exports import ExportViewSet

router = SimpleRouter()
router.register("studies", views.StudyViewSet, basename="study")
router.register("sites", views.SiteViewSet, basename="site")
router.register("instruments", views.InstrumentViewSet, basename="instrument")
router.register("participants", views.ParticipantViewSet, basename="participant")
router.register("responses", views.ResponseViewSet, basename="response")
router.register("exports", ExportViewSet, basename="export")

urlpatterns = [
    *router.urls,
    path("invitations/<str:token>/", views.InvitationView.as_view(), name="invitation"),
    path(
        "invitations/<str:token>/draft/",
        views.InvitationDraftView.as_view(),
        name="invitation-draft",
    ),
    path(
        "invitations/<str:token>/submission/",
        views.InvitationSubmitView.as_view(),
        name="invitation-submission",
    ),
]
