"""Security headers of every response.

Content-Security-Policy comes from django-csp (``CONTENT_SECURITY_POLICY``, through the
faster subclass of its middleware below); Referrer-Policy, X-Content-Type-Options and
Cross-Origin-Opener-Policy from Django's ``SecurityMiddleware``; X-Frame-Options from its
clickjacking middleware. This module adds Permissions-Policy, and ``Cache-Control:
no-store`` on every response but the static files.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import csp.middleware
from csp.constants import HEADER
from csp.middleware import CheckableLazyObject
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers


class PermissionsPolicyMiddleware:
    """``Permissions-Policy: camera=(), …``: the features no page of Hyoka uses, refused
    to the page and anything it might embed. One constant header: no per-request work."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.policy = settings.PERMISSIONS_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Permissions-Policy", self.policy)
        return response


class NoStoreMiddleware:
    """No cache keeps anything Hyoka renders: ``Cache-Control: no-store`` (with Django's
    other never-cache headers) on every page and answer, from the one place that sees them
    all. A questionnaire page holds a participant's answers and link; the admin and the
    API, participants, responses and links; a proxy's, a shared computer's or a browser's
    cache must keep none of them, and nothing else rendered gains from being cached.
    Static files are served (and cached) by WhiteNoise before this middleware runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", ""):
            add_never_cache_headers(response)
        return response


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, with the site-wide policy built once per process.

    django-csp rebuilds the header from the settings on every response (about 0.1 ms):
    a response with no per-view change (``csp_update`` and the like), no nonce and no
    report-only policy gets the prebuilt string instead; any other goes the usual way."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        self.site_policy = build_policy()
        self.simple = not getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None) and not (
            (getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}).get("EXCLUDE_URL_PREFIXES")
        )

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        customised = any(hasattr(response, name) for name in CUSTOMISED)
        if not self.simple or customised or getattr(request, "_csp_nonce", None) is not None:
            return super().process_response(request, response)
        if (
            response.status_code in (HTTPStatus.NOT_FOUND, HTTPStatus.INTERNAL_SERVER_ERROR)
            and settings.DEBUG
        ):
            return response  # Django's debug pages carry inline scripts and styles
        if self.site_policy:
            response.headers.setdefault(HEADER, self.site_policy)
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


# Attributes django-csp's decorators set on a response to change or drop its policy.
CUSTOMISED = (
    "_csp_exempt",
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt_ro",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
