"""Settings from the environment: production refuses to start without its secrets, the
embedded mode needs nothing, and a complete production environment passes Django's
deployment checks.

Each case runs ``manage.py`` in a process of its own with an environment built from
scratch, so nothing from the developer's shell or from the test run's own settings leaks
in. The processes are forked from one interpreter that has imported the heavy third-party
libraries once (tests/forkserver.py): Django, the settings and Hyoka's code are imported
afresh in each.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.forkserver import ForkServer

BASE_DIR = Path(__file__).resolve().parent.parent
# A developer's .env fills variables that are absent (never ones that are set), so where
# one exists a "missing" variable is passed as empty, which settings treat as not set.
HAS_DOT_ENV = (BASE_DIR / ".env").is_file()
ABSENT = "" if HAS_DOT_ENV else None
# The embedded mode is what an absent variable means: a .env would decide it instead.
without_dot_env = pytest.mark.skipif(HAS_DOT_ENV, reason="a local .env file sets variables")

PRODUCTION = {
    "HYOKA_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": "hyoka.example.jp",
    "DATABASE_URL": "postgres://hyoka:secret@db.example.jp:5432/hyoka",
    "CELERY_BROKER_URL": "redis://broker.example.jp:6379/0",
    "CACHE_URL": "redis://cache.example.jp:6379/1",
    "HYOKA_SIGNING_P12": "/etc/hyoka/signing.p12",
    "HYOKA_SIGNING_PASSPHRASE": secrets.token_urlsafe(24),
    "HYOKA_TSA_URL": "https://tsa.example.jp/",
    "HYOKA_TSA_TRUST_ROOTS": "/etc/hyoka/tsa-root.pem",
    "HYOKA_LINK_KEY": secrets.token_urlsafe(32),
    "HYOKA_CONTACT_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "EMAIL_URL": "smtp+tls://hyoka:secret@smtp.example.jp:587",
}
REQUIRED = [name for name in PRODUCTION if name not in {"HYOKA_ENV", "CACHE_URL"}]


_server: ForkServer | None = None


def _clean_environment() -> dict[str, str]:
    return {k: os.environ[k] for k in ("PATH", "HOME", "SYSTEMROOT") if k in os.environ}


@pytest.fixture(scope="module", autouse=True)
def _one_forking_interpreter() -> Iterator[None]:
    yield
    global _server
    if _server is not None:
        _server.close()
        _server = None


def manage(*args: str, **variables: str | None) -> subprocess.CompletedProcess[str]:
    """``manage.py *args`` with only PATH, HOME and ``variables`` (None: left out)."""
    global _server
    env = _clean_environment()
    if _server is None:
        _server = ForkServer(env)
    env.update({k: v for k, v in variables.items() if v is not None})
    return _server.run(list(args), env, timeout=60)


@pytest.mark.parametrize("variable", REQUIRED)
def test_production_refuses_to_start_without_a_required_variable(variable):
    result = manage("check", **{**PRODUCTION, variable: ABSENT})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured:"), result.stderr
    assert variable in last_line


def test_production_refuses_a_short_secret_key():
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": "too-short"})

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be at least 50" in result.stderr


@pytest.mark.parametrize("variable", ["HYOKA_LINK_KEY", "HYOKA_LINK_OLD_KEYS"])
def test_production_refuses_a_weak_link_key(variable):
    result = manage("check", **{**PRODUCTION, variable: "short-link-key"})

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}: a link key must be at least 32" in result.stderr


@without_dot_env
def test_the_deployment_checks_refuse_the_development_link_key():
    result = manage("check", "--deploy")

    assert "hyoka.E001" in result.stderr
    assert "HYOKA_LINK_KEY is the embedded mode's development key" in result.stderr


def test_an_unknown_mode_is_refused():
    result = manage("check", HYOKA_ENV="staging")

    assert result.returncode != 0
    assert "ImproperlyConfigured: HYOKA_ENV must be" in result.stderr


@without_dot_env
def test_the_embedded_mode_needs_nothing_and_uses_sqlite_and_in_process_tasks():
    show = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
        "'name': str(s.DATABASES['default']['NAME']), 'broker': s.CELERY_BROKER_URL, "
        "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'debug': s.DEBUG}))"
    )
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        show,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["name"] == str(BASE_DIR / "hyoka.sqlite3")
    assert seen["eager"] is True  # tasks run in-process: no broker is contacted
    assert not seen["broker"].startswith(("redis:", "amqp:")), seen["broker"]
    assert seen["debug"] is True


@without_dot_env
def test_the_embedded_mode_passes_the_system_checks():
    result = manage("check")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_complete_production_environment_passes_the_deployment_checks():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr


def test_production_warns_when_rate_limits_would_count_per_process():
    result = manage("check", "--deploy", **{**PRODUCTION, "CACHE_URL": ABSENT})

    assert "hyoka.W001" in result.stderr


def test_production_refuses_unknown_attack_settings():
    for name, value in [
        ("HYOKA_ADMIN_OTP", "sometimes"),
        ("HYOKA_TOKEN_FAILURE_RATE", "ten a minute"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT", "0"),
        ("HYOKA_SESSION_HOURS", "0"),
        ("HYOKA_EXPORT_FILE_DAYS", "0"),
        ("HYOKA_EXPORT_STUCK_AFTER", "600"),  # a live worker's export would be failed
    ]:
        result = manage("check", **{**PRODUCTION, name: value})
        assert result.returncode != 0
        assert f"ImproperlyConfigured: {name}" in result.stderr, result.stderr


@pytest.mark.parametrize("otp", ["optional", "required"])
def test_production_with_the_second_factor_passes_the_deployment_checks(otp):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "HYOKA_ADMIN_OTP": otp}
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    "value",
    [
        "proxy.example.jp",  # a name: resolved by no one, trusted by no one
        "10.0.0.1/8",  # host bits below the prefix: an address or a network?
        "2001:db8::/129",
        "10.0.0.5;10.0.0.6",
        "10.0.0.5, 300.0.0.1",
    ],
)
def test_a_bad_trusted_proxies_value_stops_the_start(value):
    result = manage("check", **{**PRODUCTION, "TRUSTED_PROXIES": value})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: TRUSTED_PROXIES:")
    assert "is not an address or a network" in last_line


@pytest.mark.parametrize("retired", ["BEHIND_PROXY", "PROXY_COUNT"])
def test_the_retired_proxy_settings_stop_the_start_and_name_their_replacement(retired):
    result = manage("check", **{**PRODUCTION, retired: "1"})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"ImproperlyConfigured: {retired} is no longer read" in last_line
    assert "TRUSTED_PROXIES" in last_line


@pytest.mark.parametrize("debug", ["true", "1", "on"])
def test_production_refuses_debug(debug):
    result = manage("check", **{**PRODUCTION, "DEBUG": debug})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: DEBUG=true")


SHOW_SECURITY = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'proxies': s.TRUSTED_PROXIES, "
    "'ssl_header': getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
    "'first_middleware': s.MIDDLEWARE[0], 'otp': s.HYOKA_ADMIN_OTP, "
    "'otp_middleware': 'django_otp.middleware.OTPMiddleware' in s.MIDDLEWARE, "
    "'session_age': s.SESSION_COOKIE_AGE, 'browser_close': s.SESSION_EXPIRE_AT_BROWSER_CLOSE, "
    "'address_limit': s.HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT}))"
)


def security_settings(**variables: str | None) -> dict:
    result = manage("shell", "--no-imports", "-c", SHOW_SECURITY, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_defaults_a_security_officer_accepts():
    seen = security_settings(**PRODUCTION)

    assert seen == {
        "debug": False,
        # A proxy on the same machine; nobody else may forward.
        "proxies": ["127.0.0.1/32", "::1/128"],
        "ssl_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "first_middleware": "config.client_ip.TrustedProxyMiddleware",
        "otp": "required",
        "otp_middleware": True,
        "session_age": 8 * 3600,
        "browser_close": True,
        "address_limit": 20,
    }


def test_production_takes_the_proxies_the_operator_names():
    proxies = " 10.0.0.5 , 192.0.2.0/24,2001:db8:1::/48"
    seen = security_settings(**{**PRODUCTION, "TRUSTED_PROXIES": proxies})
    assert seen["proxies"] == ["10.0.0.5/32", "192.0.2.0/24", "2001:db8:1::/48"]
    assert seen["ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]

    # gunicorn terminating TLS itself, no proxy: nobody may forward, not even loopback.
    alone = security_settings(**{**PRODUCTION, "TRUSTED_PROXIES": ""})
    assert alone["proxies"] == []
    assert alone["ssl_header"] is None


@without_dot_env
def test_the_embedded_mode_trusts_no_proxy_and_keeps_the_demo_as_it_was():
    seen = security_settings()

    assert seen["proxies"] == []
    assert seen["ssl_header"] is None
    assert seen["otp"] == "off"
    assert seen["otp_middleware"] is False
    assert seen["session_age"] == 14 * 24 * 3600  # Django's own default
    assert seen["browser_close"] is False


def test_a_contact_key_that_is_not_a_fernet_key_is_refused():
    result = manage("check", **{**PRODUCTION, "HYOKA_CONTACT_KEYS": "not-a-key"})

    assert result.returncode != 0
    assert "ImproperlyConfigured: HYOKA_CONTACT_KEYS: key 1 is not a Fernet key" in result.stderr


@pytest.mark.parametrize("missing", ["LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"])
def test_the_line_channel_needs_both_its_secret_and_its_token(missing):
    line = {"LINE_CHANNEL_SECRET": "s" * 32, "LINE_CHANNEL_ACCESS_TOKEN": "t" * 40}
    result = manage("check", **{**line, missing: ABSENT})

    assert result.returncode != 0
    assert "Set both LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN" in result.stderr


def test_production_with_line_on_requires_the_link_code_key():
    line = {"LINE_CHANNEL_SECRET": "s" * 32, "LINE_CHANNEL_ACCESS_TOKEN": "t" * 40}
    result = manage("check", **{**PRODUCTION, **line})

    assert result.returncode != 0
    assert "ImproperlyConfigured: HYOKA_LINE_CODE_KEY is not set" in result.stderr
    key = {"HYOKA_LINE_CODE_KEY": secrets.token_urlsafe(32)}
    without_account = manage("check", **{**PRODUCTION, **line, **key})
    assert without_account.returncode != 0
    assert "ImproperlyConfigured: LINE_OFFICIAL_ACCOUNT_ID is not set" in without_account.stderr
    account = {"LINE_OFFICIAL_ACCOUNT_ID": "@123abcde"}
    assert manage("check", "--deploy", **{**PRODUCTION, **line, **key, **account}).returncode == 0


def test_an_official_account_id_without_its_at_sign_is_refused():
    result = manage("check", LINE_OFFICIAL_ACCOUNT_ID="123abcde")

    assert result.returncode != 0
    assert "LINE_OFFICIAL_ACCOUNT_ID is the official account's LINE ID" in result.stderr
