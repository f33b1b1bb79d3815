"""One error shape for every refusal; tokens hashed at rest; sessions with CSRF; the
schema and the docs served without a CDN."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.middleware.csrf import get_token
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api.conftest import PASSWORD, World


def error_of(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def login(client: APIClient, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_without_credentials_the_answer_is_401_in_japanese_or_english(world, client):
    response = client.get("/api/v1/participants/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error_of(response) == {
        "code": "not_authenticated",
        "message": "認証情報が含まれていません。",
        "fields": {},
    }
    english = client.get("/api/v1/participants/", headers={"Accept-Language": "en"})
    assert error_of(english)["message"] == "Authentication credentials were not provided."


def test_a_token_is_issued_once_kept_only_as_a_digest_and_revoked(world: World, client):
    issued = login(client, "manager-setagaya")
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert "no-store" in issued["Cache-Control"]
    stored = AuthToken.objects.get(user=world.users["manager@setagaya"])
    assert token not in {stored.digest, stored.token_key}
    assert len(stored.digest) == 128  # SHA-512, hex
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/v1/participants/")
    assert listed.status_code == 200
    assert {p["reference"] for p in listed.json()["results"]} == {"SET-1", "SET-2"}
    assert client.post("/api/v1/auth/logout/").status_code == 204
    again = client.get("/api/v1/participants/")
    assert again.status_code == 401
    assert error_of(again)["code"] == "authentication_failed"


@pytest.mark.parametrize(
    "header",
    [b"Token nonsense", b"Token", b"Token a b", b"Token \xff\xfe", "Token 名前".encode()],
)
def test_a_bad_token_is_a_401_never_a_500(world, client, header):
    response = client.get("/api/v1/studies/", HTTP_AUTHORIZATION=header.decode("latin-1"))
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def _works(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/studies/").status_code


def test_a_token_stops_working_when_its_users_password_changes(world: World, client):
    token = login(client, "manager-setagaya").json()["token"]
    other = login(APIClient(), "manager-itabashi").json()["token"]
    assert _works(token) == 200
    user = User.objects.get(username="manager-setagaya")
    user.set_password("a new and different passphrase")
    user.save()

    assert _works(token) == 401
    assert not AuthToken.objects.filter(user=user).exists()
    assert _works(other) == 200  # another user's token is not touched
    assert login(client, "manager-setagaya").status_code == 400  # the old password is gone
    fresh = login(client, "manager-setagaya", "a new and different passphrase")
    assert _works(fresh.json()["token"]) == 200


def test_a_password_changed_in_the_admin_ends_the_users_tokens(world: World, client):
    token = login(client, "manager-setagaya").json()["token"]
    user = User.objects.get(username="manager-setagaya")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    browser = Client()
    browser.force_login(user)
    new = "another correct horse battery"
    changed = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert changed.status_code == 302, changed.content.decode()[:2000]
    assert _works(token) == 401


def test_saving_a_user_without_a_new_password_keeps_their_tokens(world: World, client):
    token = login(client, "manager-setagaya").json()["token"]
    user = User.objects.get(username="manager-setagaya")
    user.first_name = "Hanako"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])  # what every login does
    assert _works(token) == 200


def test_a_token_stops_working_when_its_user_is_deactivated(world: World, client):
    token = login(client, "manager-setagaya").json()["token"]
    user = User.objects.get(username="manager-setagaya")
    user.is_active = False
    user.save()
    assert _works(token) == 401
    # Reactivating the account does not bring the token back.
    user.is_active = True
    user.save()
    assert _works(token) == 401


def test_knox_refuses_an_inactive_users_token_even_if_it_was_kept(world: World, client):
    """Deactivated behind the application's back (an UPDATE: no save, no signal)."""
    token = login(client, "manager-setagaya").json()["token"]
    User.objects.filter(username="manager-setagaya").update(is_active=False)
    assert AuthToken.objects.filter(user__username="manager-setagaya").exists()
    assert _works(token) == 401


def test_a_wrong_password_gets_no_token_and_guessing_is_throttled(world, client):
    wrong = login(client, "manager-setagaya", "wrong")
    assert wrong.status_code == 400
    assert error_of(wrong)["code"] == "invalid_credentials"
    for _ in range(12):
        last = login(client, "manager-setagaya", "wrong")
    assert last.status_code == 429
    assert error_of(last)["code"] == "throttled"
    assert int(last["Retry-After"]) > 0
    assert not AuthToken.objects.exists()


def test_a_browser_session_works_and_must_send_the_csrf_token(world: World):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.users["manager@setagaya"])
    assert browser.get("/api/v1/runs/").status_code == 200
    refused = browser.post("/api/v1/runs/", {"study": world.study.pk}, format="json")
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "permission_denied"
    # A page of the site would hand out the token; here the cookie and header are set.
    request = browser.get("/api/v1/runs/").wsgi_request
    token = get_token(request)
    browser.cookies["csrftoken"] = request.META["CSRF_COOKIE"]
    allowed = browser.post(
        "/api/v1/runs/", {"study": world.study.pk}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code == 202


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("delete", "/api/v1/studies/", {}, 405, "method_not_allowed"),
        ("put", "/api/v1/responses/1/", {"format": "json"}, 405, "method_not_allowed"),
        (
            "post",
            "/api/v1/runs/",
            {"data": "study=1", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        (
            "post",
            "/api/v1/runs/",
            {"data": "{oops", "content_type": "application/json"},
            400,
            "parse_error",
        ),
        ("get", "/api/v1/studies/", {"HTTP_ACCEPT": "application/xml"}, 406, "not_acceptable"),
        ("get", "/api/v1/nothing-here/", {}, 404, "not_found"),
        ("get", "/api/v2/studies/", {}, 404, "not_found"),
        ("get", "/api/v1/studies/abc/", {}, 404, "not_found"),
        ("get", "/api/v1/participants/99999999999999999999/", {}, 404, "not_found"),
        ("get", "/api/v1/participants/", {"data": {"page": 99}}, 404, "not_found"),
        ("get", "/api/v1/participants/", {"data": {"site": "9" * 30}}, 400, "invalid"),
        ("get", "/api/v1/responses/", {"data": {"status": "lost"}}, 400, "invalid"),
        ("post", "/api/v1/runs/", {"data": {"study": "x"}, "format": "json"}, 400, "invalid"),
        ("post", "/api/v1/runs/", {"data": [1, 2], "format": "json"}, 400, "invalid"),
    ],
)
def test_every_refusal_has_the_one_shape(world, as_user, method, path, kwargs, status, code):
    client = as_user(world.users["superuser"])
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.content
    assert error_of(response)["code"] == code


def test_a_page_size_is_capped(world, as_user):
    response = as_user(world.users["superuser"]).get("/api/v1/participants/", {"page_size": 10**9})
    assert response.status_code == 200
    assert response.json()["count"] == 5


def test_the_schema_and_the_docs_are_served_without_a_cdn(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/invitations/{token}/submission/" in paths
    assert "/api/v1/runs/" in paths
    for page in ["/api/docs/", "/api/redoc/"]:
        html = client.get(page).content.decode()
        assert "/static/drf_spectacular_sidecar/" in html
        assert "cdn" not in html.lower()
