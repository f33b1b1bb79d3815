"""Admin logins under attack: django-axes locks a username out from one client address
(the admin's form and the API's token login count together), and django-otp's second
factor is enforced when HYOKA_ADMIN_OTP asks for it (config/admin_site.py)."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def _fast_hashers(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)


@pytest.fixture
def manager(db) -> User:
    return User.objects.create_user("manager", password=PASSWORD, is_staff=True)


def login(client: Client, password: str, **extra: str):  # type: ignore[no-untyped-def]
    data = {"username": "manager", "password": password, "next": "/admin/", **extra}
    return client.post(LOGIN, data)


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


# --- django-axes -----------------------------------------------------------------------


def test_failures_lock_the_username_out_from_that_address_with_a_translated_429(manager):
    client = Client()
    assert [login(client, "wrong").status_code for _ in range(2)] == [200, 200]

    locked = login(client, "wrong")
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    page = locked.content.decode()
    assert "ログインの失敗が続きました" in page
    assert "あと15分間ログインできません" in page
    # Even the right password is refused now, and says nothing about being right.
    right = login(client, PASSWORD)
    assert right.status_code == 429
    assert right.content == locked.content
    assert not logged_in(client)


def test_the_lockout_is_per_address_so_the_manager_can_still_log_in_elsewhere(manager):
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    for _ in range(3):
        login(attacker, "wrong")
    assert login(attacker, PASSWORD).status_code == 429

    office = Client(REMOTE_ADDR="192.0.2.20")
    assert login(office, PASSWORD).status_code == 302
    assert logged_in(office)


def test_the_lockout_ends_after_the_cool_off_and_a_success_clears_the_count(manager):
    client = Client()
    for _ in range(3):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))

    assert login(client, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()  # AXES_RESET_ON_SUCCESS


def test_a_spoofed_x_forwarded_for_does_not_escape_the_lockout(manager, settings):
    settings.BEHIND_PROXY, settings.PROXY_COUNT = True, 1
    statuses = []
    for n in range(5):
        client = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
        statuses.append(login(client, "wrong").status_code)
    assert statuses == [200, 200, 429, 429, 429]
    # The address the proxy saw is what was recorded, never the client-written one.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_the_api_token_login_counts_toward_the_same_lockout(manager):
    api = APIClient()
    body = {"username": "manager", "password": "wrong"}
    assert api.post("/api/v1/auth/token/", body, format="json").status_code == 400
    assert login(Client(), "wrong").status_code == 200

    locked = api.post("/api/v1/auth/token/", body, format="json", headers={"Accept-Language": "en"})
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert locked.json() == {
        "error": {
            "code": "locked_out",
            "message": "Too many failed logins: wait 15 minutes, then try again.",
            "fields": {},
        }
    }
    right = api.post(
        "/api/v1/auth/token/", {"username": "manager", "password": PASSWORD}, format="json"
    )
    assert right.status_code == 429
    assert "token" not in right.json()
    assert login(Client(), PASSWORD).status_code == 429


# --- django-otp ------------------------------------------------------------------------


@pytest.fixture
def otp(settings):  # type: ignore[no-untyped-def]
    """Turn the second factor on as settings do for HYOKA_ADMIN_OTP=required|optional."""

    def turn_on(mode: str) -> None:
        settings.HYOKA_ADMIN_OTP = mode
        middleware = list(settings.MIDDLEWARE)
        if "django_otp.middleware.OTPMiddleware" not in middleware:
            at = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
            middleware.insert(at + 1, "django_otp.middleware.OTPMiddleware")
        settings.MIDDLEWARE = middleware

    return turn_on


def code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_off_by_default_the_admin_asks_for_a_password_only(manager, settings):
    assert settings.HYOKA_ADMIN_OTP == "off"
    assert "django_otp.middleware.OTPMiddleware" not in settings.MIDDLEWARE
    client = Client()
    assert 'name="otp_token"' not in client.get(LOGIN).content.decode()
    assert login(client, PASSWORD).status_code == 302


def test_required_a_password_alone_does_not_open_the_admin(manager, otp):
    otp("required")
    device = TOTPDevice.objects.create(user=manager, name="phone")
    client = Client()
    form = client.get(LOGIN).content.decode()
    assert 'name="otp_token"' in form
    assert "認証アプリのコード" in form

    refused = login(client, PASSWORD)
    assert refused.status_code == 200
    assert "認証アプリに表示されている6桁のコードを入力してください。" in refused.content.decode()
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    assert (
        "このコードは正しくありません" in login(client, PASSWORD, otp_token=wrong).content.decode()
    )
    assert not logged_in(client)

    device.refresh_from_db()
    device.throttle_reset()  # django-otp's own back-off after a wrong code
    assert login(client, PASSWORD, otp_token=code(device)).status_code == 302
    assert logged_in(client)


def test_required_a_session_without_a_second_factor_is_sent_to_the_login(manager, otp):
    otp("required")
    TOTPDevice.objects.create(user=manager, name="phone")
    client = Client()
    client.force_login(manager)  # a password login, or a session from before the switch
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_required_a_manager_without_a_device_cannot_log_in(manager, otp):
    otp("required")
    client = Client()
    assert login(client, PASSWORD, otp_token="123456").status_code == 200
    assert not logged_in(client)


def test_optional_only_managers_with_a_device_are_asked_for_a_code(manager, otp):
    otp("optional")
    client = Client()
    assert login(client, PASSWORD).status_code == 302
    assert logged_in(client)

    device = TOTPDevice.objects.create(user=manager, name="phone")
    client = Client()
    assert login(client, PASSWORD).status_code == 200
    assert not logged_in(client)
    assert login(client, PASSWORD, otp_token=code(device)).status_code == 302
    assert logged_in(client)


def test_enrol_totp_gives_a_staff_user_a_device_and_prints_its_link(manager):
    out = io.StringIO()
    call_command("enrol_totp", "manager", "--no-qr", stdout=out)
    device = TOTPDevice.objects.get(user=manager)
    assert device.confirmed
    assert re.search(r"^otpauth://totp/.*secret=[A-Z2-7]+", out.getvalue(), re.M)

    call_command("enrol_totp", "manager", "--replace", stdout=io.StringIO())
    assert TOTPDevice.objects.filter(user=manager).count() == 1
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()


def test_the_admin_has_no_untranslated_pages_for_devices_or_login_attempts(db):
    """django-otp's device pages and django-axes' attempt pages are English only: they are
    left out of the admin (enrol_totp and the axes_* commands do their jobs)."""
    client = Client()
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    index = client.get("/admin/").content.decode()
    assert "/admin/otp_totp/" not in index
    assert "/admin/axes/" not in index
