"""Response headers Django has no setting for.

Content-Security-Policy comes from django-csp (``CONTENT_SECURITY_POLICY``); Referrer-Policy,
X-Content-Type-Options and Cross-Origin-Opener-Policy from Django's ``SecurityMiddleware``;
X-Frame-Options from its clickjacking middleware. This adds Permissions-Policy.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


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
