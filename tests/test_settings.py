"""Settings from the environment: production refuses to start without its secrets, the
embedded mode needs nothing, and a complete production environment passes Django's
deployment checks.

Each case runs ``manage.py`` in a subprocess with an environment built from scratch, so
nothing from the developer's shell or from the test run's own settings leaks in.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

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
}
REQUIRED = [name for name in PRODUCTION if name not in {"HYOKA_ENV", "CACHE_URL"}]


def manage(*args: str, **variables: str | None) -> subprocess.CompletedProcess[str]:
    """``manage.py *args`` with only PATH, HOME and ``variables`` (None: left out)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "SYSTEMROOT") if k in os.environ}
    env.update({k: v for k, v in variables.items() if v is not None})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
        ("PROXY_COUNT", "-1"),
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
