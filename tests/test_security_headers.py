"""Every kind of page carries the security headers (config/settings.py, config/security.py):
the participant's questionnaire and its error pages, the admin, and the API."""

from __future__ import annotations

import pytest
from django.test import Client

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.parametrize(
    "path",
    [
        "/r/{token}/",  # the questionnaire
        "/r/" + "A" * 43 + "/",  # an invalid link (404)
        "/admin/login/",
        "/api/v1/studies/",  # 401, JSON
        "/api/docs/",
        "/no/such/page/",
    ],
)
def test_every_page_carries_the_security_headers(participant, path):
    response = Client().get(path.format(token=participant.token))

    policy = directives(response["Content-Security-Policy"])
    expected = dict(POLICY)
    if path == "/api/docs/":
        expected["img-src"] = "'self' data:"  # Swagger UI's icons
    assert {k: policy.get(k) for k in expected} == expected
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


def test_the_questionnaire_posts_only_to_itself_and_carries_a_csrf_token(participant):
    html = Client().get(f"/r/{participant.token}/").content.decode()
    assert f'action="/r/{participant.token}/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "<script>" not in html and " style=" not in html  # no inline script or style


def test_the_prebuilt_policy_is_django_csps_own():
    """config.security.CSPMiddleware builds the site-wide header once; it must say what
    django-csp's middleware says for every response."""
    import csp.middleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from config.security import CSPMiddleware

    def view(request):  # type: ignore[no-untyped-def]
        return HttpResponse("ok")

    ours = CSPMiddleware(view)(RequestFactory().get("/"))["Content-Security-Policy"]
    theirs = csp.middleware.CSPMiddleware(view)(RequestFactory().get("/"))
    assert directives(ours) == directives(theirs["Content-Security-Policy"])
