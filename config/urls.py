from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from config.api.views import NotFoundView
from config.health import healthz

urlpatterns = [
    # Probes and monitors (no authentication, never cached): see config/health.py.
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The REST API (docs/api.md); its schema, and the docs served without a CDN.
    path("api/v1/", include("config.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI with its start-up script as a separate request (no inline script); its
    # stylesheet draws icons from data: URIs.
    path(
        "api/docs/",
        csp_update({"img-src": [SELF, "data:"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    # ReDoc injects <style> elements, draws icons from data: URIs and runs its search in a
    # blob: worker: this page alone allows these. Scripts stay 'self' only everywhere.
    path(
        "api/redoc/",
        csp_update(
            {
                "style-src": [UNSAFE_INLINE],
                "img-src": [SELF, "data:"],
                "worker-src": [SELF, "blob:"],
            }
        )(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    re_path(r"^api/", NotFoundView.as_view()),
    # LINE's webhook (fieldwork/line/webhook.py): signed by LINE, no session, no CSRF.
    path("line/", include("fieldwork.line.urls")),
    path("", include("surveys.urls")),
]

# Participants may land on any of these: each page is translated and in the site's look.
handler400 = "config.errors.bad_request"
handler404 = "surveys.views.page_not_found"
handler500 = "config.errors.server_error"
