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
from knox.models import AuthToken
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
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    statuses = []
    for n in range(5):
        client = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
        statuses.append(login(client, "wrong").status_code)
    assert statuses == [200, 200, 429, 429, 429]
    # The address the proxy saw is what was recorded, never the client-written one.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_a_client_around_the_proxy_cannot_pick_its_address(manager, settings):
    """Proxies are configured, but this peer reaches the server directly: whatever its
    X-Forwarded-For says, it is counted at its own address."""
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "2001:db8:1::/48"]
    statuses = []
    for n in range(4):
        forged = f"198.51.100.{n}, 10.0.0.{n + 1}"
        client = Client(REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR=forged)
        statuses.append(login(client, "wrong").status_code)
    assert statuses == [200, 200, 429, 429]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.66"}


def test_behind_trusted_proxies_each_client_has_its_own_lockout(manager, settings):
    """A CDN (IPv6) in front of a load balancer: each client is the address the CDN saw."""
    settings.TRUSTED_PROXIES = ["10.0.0.5", "2001:db8:1::/48"]

    def through_proxies(client_address: str) -> Client:
        return Client(
            REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=f"{client_address}, 2001:db8:1::7"
        )

    for _ in range(3):
        login(through_proxies("2001:db8:bad::1"), "wrong")
    assert login(through_proxies("2001:db8:bad::1"), PASSWORD).status_code == 429
    office = through_proxies("203.0.113.20")
    assert login(office, PASSWORD).status_code == 302
    assert logged_in(office)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"2001:db8:bad::1"}


# --- Password spraying: one address, many usernames ------------------------------------


@pytest.fixture
def spraying(settings):  # type: ignore[no-untyped-def]
    settings.HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT = 5  # per username: 3 (the module's fixture)


def spray(client: Client, usernames: range) -> list[int]:
    """One wrong password for each of many usernames: never 3 failures for any one."""
    body = {"password": "Summer2024!", "next": "/admin/"}
    return [client.post(LOGIN, {**body, "username": f"user{n}"}).status_code for n in usernames]


def test_spraying_many_usernames_from_one_address_locks_the_address_out(manager, spraying):
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    assert spray(attacker, range(4)) == [200, 200, 200, 200]
    locked = spray(attacker, range(4, 5))
    assert locked == [429]

    # Every username is refused from there now, the manager's right password too, with the
    # same translated page as a username's lockout.
    right = login(attacker, PASSWORD)
    assert right.status_code == 429
    assert "ログインの失敗が続きました" in right.content.decode()
    assert right["Retry-After"] == str(15 * 60)
    # Elsewhere the manager logs in as ever.
    office = Client(REMOTE_ADDR="192.0.2.20")
    assert login(office, PASSWORD).status_code == 302


def test_the_api_token_login_counts_toward_the_address_limit_and_answers_json(manager, spraying):
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    assert spray(attacker, range(3)) == [200, 200, 200]
    api = APIClient(REMOTE_ADDR="198.51.100.9")
    statuses = [
        api.post("/api/v1/auth/token/", {"username": f"api{n}", "password": "x"}).status_code
        for n in range(2)
    ]
    assert statuses == [400, 429]
    right = api.post(
        "/api/v1/auth/token/",
        {"username": "manager", "password": PASSWORD},
        headers={"Accept-Language": "en"},
    )
    assert right.status_code == 429
    assert right.json()["error"]["code"] == "locked_out"
    assert right.json()["error"]["message"] == (
        "Too many failed logins: wait 15 minutes, then try again."
    )


def test_a_forged_x_forwarded_for_does_not_spread_the_spraying_over_addresses(
    manager, spraying, settings
):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    statuses = []
    for n in range(6):
        client = Client(REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        statuses += spray(client, range(n, n + 1))
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_the_address_lockout_ends_with_the_cool_off(manager, spraying):
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    spray(attacker, range(5))
    assert login(attacker, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))

    assert login(attacker, PASSWORD).status_code == 302


def test_the_api_login_throttle_ignores_a_forged_x_forwarded_for(db, settings):
    """10 token requests a minute per address (API_THROTTLE_LOGIN): a client reaching the
    server directly does not escape it by forging the header; clients behind the trusted
    proxy are each counted apart."""
    settings.TRUSTED_PROXIES = ["10.0.0.5"]

    def attempt(n: int, peer: str) -> int:
        api = APIClient(REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        body = {"username": f"nobody{n}", "password": "x"}
        return api.post("/api/v1/auth/token/", body).status_code

    assert [attempt(n, "10.0.0.5") for n in range(11)] == [400] * 11
    assert [attempt(n, "192.0.2.66") for n in range(11)] == [400] * 10 + [429]


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


# --- Sessions: they end with the password and with the account --------------------------


def test_a_new_password_ends_the_managers_other_sessions(manager):
    elsewhere = Client(REMOTE_ADDR="192.0.2.30")
    assert login(elsewhere, PASSWORD).status_code == 302
    here = Client()
    assert login(here, PASSWORD).status_code == 302
    new = "a different horse battery staple"
    changed = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert changed.status_code == 302

    assert logged_in(here)  # Django keeps the session that changed it
    assert not logged_in(elsewhere)  # and ends every other one (session auth hash)


def test_deactivating_a_manager_ends_their_sessions(manager):
    client = Client()
    assert login(client, PASSWORD).status_code == 302
    manager.is_active = False
    manager.save()
    assert not logged_in(client)


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


# --- the second factor at the API's token login ------------------------------------------


def token_login(password: str = PASSWORD, username: str = "manager", **extra: str):  # type: ignore[no-untyped-def]
    return APIClient().post(
        "/api/v1/auth/token/",
        {"username": username, "password": password, **extra},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_required_a_password_alone_mints_no_api_token_for_a_manager(manager, otp):
    otp("required")
    device = TOTPDevice.objects.create(user=manager, name="phone")

    refused = token_login()
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "second_factor_required"
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    assert token_login(otp_token=wrong).status_code == 400
    assert not AuthToken.objects.filter(user=manager).exists()

    device.refresh_from_db()
    device.throttle_reset()  # django-otp's own back-off after a wrong code
    issued = token_login(otp_token=code(device))
    assert issued.status_code == 201
    assert AuthToken.objects.filter(user=manager).count() == 1


def test_required_a_manager_without_a_device_gets_no_token_but_a_service_account_does(manager, otp):
    otp("required")
    assert token_login().json()["error"]["code"] == "second_factor_required"
    User.objects.create_user("exporter", password=PASSWORD)  # no admin access
    assert token_login(username="exporter").status_code == 201


def test_optional_and_off_ask_the_api_login_what_they_ask_the_admin(manager, otp, settings):
    device = TOTPDevice.objects.create(user=manager, name="phone")
    assert settings.HYOKA_ADMIN_OTP == "off"
    assert token_login().status_code == 201
    otp("optional")
    assert token_login().status_code == 400
    assert token_login(otp_token=code(device)).status_code == 201
    device.delete()
    assert token_login().status_code == 201
