"""Every route of /api/v1/ (namespace ``api``): the token endpoints and the two apps'."""

from __future__ import annotations

from django.urls import path

from kpi.api.urls import urlpatterns as kpi_urls
from surveys.api.urls import urlpatterns as surveys_urls

from . import views

app_name = "api"

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    *surveys_urls,
    *kpi_urls,
]
