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


# --- No cache keeps a participant's data or a link (config.security.NoStoreMiddleware) --


@pytest.fixture
def seen(participant, settings):  # type: ignore[no-untyped-def]
    """Every kind of response that carries a participant's data, a link, or a credential,
    and the pages around them (their errors, the login and lockout pages)."""
    from axes.models import AccessAttempt
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from surveys import services
    from surveys.models import Response
    from tests.factories import ParticipantFactory, complete_answers

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.HYOKA_TOKEN_FAILURE_RATE = "1/m"
    root = User.objects.create_superuser("root", password="correct horse battery staple")
    done = ParticipantFactory(site=participant.site)
    services.response_submit(participant=done, answers=complete_answers(), language="ja")
    response = Response.objects.get(participant=done)
    token, used, bad = participant.token, done.token, "A" * 43
    admin, api = Client(), APIClient()
    admin.force_login(root)
    api.force_authenticate(root)
    anonymous = Client()
    responses = {
        # The questionnaire, its thank-you page and its errors.
        "questionnaire": anonymous.get(f"/r/{token}/"),
        "draft saved (303)": anonymous.post(f"/r/{token}/", {"action": "save"}),
        "thank-you page": anonymous.get(f"/r/{used}/"),
        "second submission (409)": anonymous.post(f"/r/{used}/", {"action": "submit"}),
        "invalid link (404)": anonymous.get(f"/r/{bad}/"),
        "too many invalid links (429)": anonymous.get(f"/r/{bad}/"),
        "wrong method (405)": anonymous.put(f"/r/{token}/"),
        "expired form (403)": Client(enforce_csrf_checks=True).post(f"/r/{token}/", {}),
        # The API's invitation endpoints.
        "api invitation": APIClient().get(f"/api/v1/invitations/{token}/"),
        "api invitation draft": APIClient().put(
            f"/api/v1/invitations/{token}/draft/", {"answers": {}}, format="json"
        ),
        "api invitation submission": APIClient().post(
            f"/api/v1/invitations/{token}/submission/",
            {"answers": complete_answers()},
            format="json",
        ),
        "api invitation not found": APIClient(REMOTE_ADDR="192.0.2.77").get(
            "/api/v1/invitations/" + "B" * 43 + "/"
        ),
        # Authenticated API answers: participants, responses, exports, tokens.
        "api participants": api.get("/api/v1/participants/"),
        "api participant": api.get(f"/api/v1/participants/{participant.pk}/"),
        "api new participant's link": api.post(
            "/api/v1/participants/",
            {"site": participant.site_id, "reference": "NEW-1"},
            format="json",
        ),
        "api responses": api.get("/api/v1/responses/"),
        "api response": api.get(f"/api/v1/responses/{response.pk}/"),
        "api response export": api.get("/api/v1/responses/export/"),
        "api token": APIClient().post(
            "/api/v1/auth/token/",
            {"username": "root", "password": "correct horse battery staple"},
            format="json",
        ),
        "api unauthenticated (401)": APIClient().get("/api/v1/participants/"),
        # The admin's pages of participants and responses, its login and lockout.
        "admin participants": admin.get("/admin/surveys/participant/"),
        "admin participant": admin.get(f"/admin/surveys/participant/{participant.pk}/change/"),
        "admin responses": admin.get("/admin/surveys/response/"),
        "admin response": admin.get(f"/admin/surveys/response/{response.pk}/change/"),
        "admin links file": admin.post(
            "/admin/surveys/participant/",
            {"action": "export_links", "_selected_action": [participant.pk], "confirmed": "yes"},
        ),
        "admin login": Client().get("/admin/login/"),
    }
    settings.AXES_FAILURE_LIMIT = 1
    AccessAttempt.objects.all().delete()
    locked = Client()
    locked.post("/admin/login/", {"username": "root", "password": "wrong"})
    responses["admin lockout (429)"] = locked.post(
        "/admin/login/", {"username": "root", "password": "wrong"}
    )
    return responses


EXPECTED_STATUS = {
    "questionnaire": 200,
    "draft saved (303)": 303,
    "thank-you page": 200,
    "second submission (409)": 409,
    "invalid link (404)": 404,
    "too many invalid links (429)": 429,
    "wrong method (405)": 405,
    "expired form (403)": 403,
    "api invitation": 200,
    "api invitation draft": 200,
    "api invitation submission": 201,
    "api invitation not found": 404,
    "api participants": 200,
    "api participant": 200,
    "api new participant's link": 201,
    "api responses": 200,
    "api response": 200,
    "api response export": 200,
    "api token": 201,
    "api unauthenticated (401)": 401,
    "admin participants": 200,
    "admin participant": 200,
    "admin responses": 200,
    "admin response": 200,
    "admin links file": 200,
    "admin login": 200,
    "admin lockout (429)": 429,
}


def test_no_response_with_a_participants_data_or_a_link_may_be_stored(seen):
    assert {name: r.status_code for name, r in seen.items()} == EXPECTED_STATUS
    stored = {
        name: r.get("Cache-Control")
        for name, r in seen.items()
        if "no-store" not in {d.strip() for d in r.get("Cache-Control", "").split(",")}
    }
    assert stored == {}
