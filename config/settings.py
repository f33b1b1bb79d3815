"""Settings, read from the environment (one module for every mode).

Two modes share this file and every code path:

* ``embedded`` (the default): a SQLite file in the project folder, no broker; Celery
  tasks run in-process (``task_always_eager``), so the same task code runs without a
  worker. This is what ``make demo`` and a laptop use.
* ``production`` (``HYOKA_ENV=production``): PostgreSQL from ``DATABASE_URL``, Redis from
  ``CELERY_BROKER_URL``, secure cookies and HSTS. Every secret must come from the
  environment; a missing one stops the process at start with ``ImproperlyConfigured``.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.client_ip import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is a convenience for development; production uses real variables.
env_file = BASE_DIR / ".env"
if env_file.is_file():
    env.read_env(str(env_file))

HYOKA_ENV = env.str("HYOKA_ENV", default="embedded")
if HYOKA_ENV not in {"embedded", "production"}:
    raise ImproperlyConfigured(f"HYOKA_ENV must be 'embedded' or 'production', not {HYOKA_ENV!r}.")
PRODUCTION = HYOKA_ENV == "production"


def _required(name: str) -> str:
    """A setting production cannot start without: fail loudly, naming the variable."""
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. In production (HYOKA_ENV=production) it must come from "
            f"the environment; see the configuration table in README.md."
        )
    return value


# --- Core -----------------------------------------------------------------------------
if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters.")
    # Debug pages show settings, SQL and local variables to whoever makes an error happen.
    if env.bool("DEBUG", default=False):
        raise ImproperlyConfigured(
            "DEBUG=true is refused in production (HYOKA_ENV=production): its error pages "
            "show settings, queries and data to anyone. Leave DEBUG unset or false."
        )
    DEBUG = False
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is not set (comma-separated host names).")
else:
    # Embedded mode only: a fixed, clearly-marked development key.
    SECRET_KEY = env.str(
        "SECRET_KEY", default="embedded-mode-insecure-key-do-not-use-in-production-0123456789"
    )
    DEBUG = env.bool("DEBUG", default=True)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The base of participant links printed by exports and the demo (no trailing slash).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# The key participant links are derived from (surveys/links.py): a link is an HMAC of a
# per-participant random nonce under this key, so a copy of the database alone gives no
# link. HYOKA_LINK_OLD_KEYS (comma-separated) are earlier keys: links made under them
# render the same after a rotation. See "The link key" in README.md.
LINK_KEY_MIN_LENGTH = 32
if PRODUCTION:
    HYOKA_LINK_KEY = _required("HYOKA_LINK_KEY")
else:
    # Embedded mode only: a fixed, clearly-marked development key.
    HYOKA_LINK_KEY = env.str(
        "HYOKA_LINK_KEY", default="embedded-mode-insecure-link-key-do-not-use-in-production"
    )
HYOKA_LINK_OLD_KEYS = [k.strip() for k in env.list("HYOKA_LINK_OLD_KEYS", default=[]) if k.strip()]
for _name, _key in [("HYOKA_LINK_KEY", HYOKA_LINK_KEY)] + [
    ("HYOKA_LINK_OLD_KEYS", k) for k in HYOKA_LINK_OLD_KEYS
]:
    if PRODUCTION and (len(_key) < LINK_KEY_MIN_LENGTH or len(set(_key)) < 10):
        raise ImproperlyConfigured(
            f"{_name}: a link key must be at least {LINK_KEY_MIN_LENGTH} random characters "
            "(for example the output of: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')."
        )
    if "," in _key:
        raise ImproperlyConfigured(f"{_name}: a link key cannot contain a comma.")
del _name, _key

INSTALLED_APPS = [
    # The admin, with its login form and permission chosen by HYOKA_ADMIN_OTP.
    "config.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "surveys",
    "kpi",
    "fieldwork",
    "workspace",  # the dashboard: reads the three apps above, read by none
]

MIDDLEWARE = [
    # First: a client that is not a trusted proxy cannot forward anything (TRUSTED_PROXIES).
    "config.client_ip.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.security.CSPMiddleware",  # django-csp's, with the policy built once
    "config.security.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: every response but a static file says no-store (config/security.py).
    "config.security.NoStoreMiddleware",
    "config.encoding.Utf8RequestMiddleware",  # 400 for text that is not UTF-8
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Only when the admin asks for a second factor (HYOKA_ADMIN_OTP, below).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by django-axes into the lockout page (config/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
if PRODUCTION:
    _required("DATABASE_URL")
# An empty DATABASE_URL means "not set" (the embedded SQLite file), as for the broker.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'hyoka.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock at BEGIN, so two concurrent writers queue
    # behind the busy timeout instead of failing with "database is locked" mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The same backend with a health check that reads the socket instead of sending
        # SELECT 1 before every request (config/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    # A database host that does not answer (a failover, a network cut) fails a request
    # after this many seconds with a 503 page (config/errors.py) instead of holding it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
    # The participant's hot path prepares its few statements
    # (surveys/submission/statements.py); Django's own queries bind on the client and are
    # never prepared, so the threshold only unlocks those explicit ones. A pooler in
    # transaction mode that cannot carry prepared statements (PgBouncer before 1.21) needs
    # DATABASE_PREPARED_STATEMENTS=false.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str(
        "TEST_DATABASE_NAME", default="test_hyoka"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes counts failed logins (the admin's, and the API's token login) and locks a
# username out from one client address after HYOKA_LOGIN_FAILURE_LIMIT failures, for
# HYOKA_LOGIN_COOLOFF_MINUTES; and, against password spraying, the address itself after
# HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT failures across all usernames within the cool-off
# (config/lockout.py). Its backend comes first; it only refuses, never accepts.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("HYOKA_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("HYOKA_LOGIN_COOLOFF_MINUTES", default=15))
# Username and address together: a guesser is stopped, and cannot lock a manager out from
# everywhere by failing on purpose from somewhere else.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Higher than the per-username limit: an office behind one address has many managers.
HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT = env.int("HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
if HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT must be 1 or more.")
AXES_HANDLER = "config.lockout.LoginAttempts"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
AXES_VERBOSE = False  # no banner at start; lockouts are still logged
# Its admin pages are English only; `manage.py axes_list_attempts` and `axes_reset_username`
# do the same job for whoever runs the server.
AXES_ENABLE_ADMIN = False

# A second factor (TOTP, django-otp) for the admin: "off", "optional" (asked of the
# managers who enrolled a device) or "required" (no admin page without one), the production
# default: enrol every manager first (`manage.py enrol_totp`, docs/security.md). Embedded
# mode (the demo, a laptop) defaults to "off".
HYOKA_ADMIN_OTP = env.str("HYOKA_ADMIN_OTP", default="required" if PRODUCTION else "off")
if HYOKA_ADMIN_OTP not in {"off", "optional", "required"}:
    raise ImproperlyConfigured(
        f"HYOKA_ADMIN_OTP must be 'off', 'optional' or 'required', not {HYOKA_ADMIN_OTP!r}."
    )
if HYOKA_ADMIN_OTP == "off":
    # Not even a lazy object per request: participants' requests stay as they were.
    MIDDLEWARE.remove("django_otp.middleware.OTPMiddleware")
OTP_TOTP_ISSUER = "Hyoka"

# --- Languages ------------------------------------------------------------------------
# Japanese first: participants are Japanese residents; English is the one alternative.
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Tokyo")
USE_I18N = True
USE_TZ = True

# --- Cache ----------------------------------------------------------------------------
# API throttling counts requests here: in production point it at Redis (CACHE_URL=
# redis://host:6379/1) so that the limits hold across gunicorn workers and machines.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"].endswith(".RedisCache"):
    # A Redis that is down or frozen fails a cache call in seconds, never holds a request.
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": 2, "socket_timeout": 2}
    )

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# The report's font (6 MB) is only read by WeasyPrint from disk: compressing it would
# make every collectstatic slow for nothing.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [
    "jpg",
    "jpeg",
    "png",
    "gif",
    "webp",
    "zip",
    "gz",
    "tgz",
    "bz2",
    "tbz",
    "xz",
    "br",
    "swf",
    "flv",
    "woff",
    "woff2",
    "ttf",
]

# --- Celery ---------------------------------------------------------------------------
# Without a broker the tasks run eagerly in-process: the same task code, no worker.
CELERY_BROKER_URL = (
    _required("CELERY_BROKER_URL") if PRODUCTION else env.str("CELERY_BROKER_URL", default="")
)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = (
        "memory://localhost/"  # never used by eager tasks; keeps kombu from guessing
    )
# Eager tasks report failures in their result, as a worker would, so that retries of
# transient errors behave the same in embedded mode.
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task whose worker died unacknowledged is redelivered after this many seconds. It must
# exceed the longest task (CELERY_TASK_TIME_LIMIT), or a slow run would be sent twice.
visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=900)
# A participant's submission publishes a scoring task: a broker that is down, or frozen
# (accepting connections but never answering), must not hold the request. Without these,
# kombu waits forever on a frozen Redis; with them a publish gives up within ~3 s (frozen)
# or ~0.5 s (refused).
# Enqueueing failures are swallowed (config/celery.py) and the backstop catches up.
broker_timeout = env.float("CELERY_BROKER_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_TIMEOUT = broker_timeout
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": visibility_timeout,
    "socket_connect_timeout": broker_timeout,
    # Above the 1 s BRPOP timeout of consuming workers, so that an idle queue is no error.
    "socket_timeout": max(broker_timeout, 2.0) + 1.0,
    # Kombu looks for unacknowledged tasks past their visibility timeout when a worker
    # starts, then only every `interval x throttle` seconds (10 x 10 by default): scan every
    # tenth of the timeout instead (at most once a minute, one cheap sorted-set query), so
    # that a task whose worker was killed comes back soon after its timeout.
    "unacked_restore_interval": min(max(visibility_timeout // 10, 1), 60),
    "unacked_restore_throttle": 1,
    # The scan takes a lock in Redis, kept 5 minutes by default: a worker killed while it
    # held it (SIGKILL, a lost machine) kept every other worker from redelivering anything
    # for that long. A scan takes milliseconds; the lock now lapses within 30 s at most.
    "unacked_mutex_expire": min(max(visibility_timeout // 10, 5), 30),
}
CELERY_TIMEZONE = TIME_ZONE
# The schedule `celery beat` runs (production): nightly scoring of open studies, a
# backstop that catches submissions made while the broker was unreachable, the daily
# purge of personal data whose retention period has ended and the sweep of export files
# (docs/security.md).
CELERY_BEAT_SCHEDULE = {
    "purge-expired-personal-data-daily": {
        "task": "surveys.purge_expired_personal_data",
        "schedule": crontab(hour=3, minute=30),
    },
    # Deletes export files past HYOKA_EXPORT_FILE_DAYS and fails exports left "being
    # written" by a dead worker (surveys/exports/expiry.py).
    "sweep-response-exports": {
        "task": "surveys.sweep_exports",
        "schedule": crontab(minute="*/15"),
    },
    "score-open-studies-nightly": {
        "task": "kpi.score_open_studies",
        "schedule": crontab(hour=2, minute=0),
    },
    "score-unscored-submissions": {
        "task": "kpi.score_unscored",
        "schedule": float(env.int("HYOKA_BACKSTOP_INTERVAL", default=300)),
    },
    # Sends e-mail that fell due (retries after a transient error) and takes back rows a
    # killed worker left in "sending" (fieldwork/services.py).
    "send-due-email-deliveries": {
        "task": "fieldwork.send_email_deliveries",
        "schedule": float(env.int("HYOKA_DELIVERY_SWEEP_INTERVAL", default=60)),
    },
    # The same for LINE (fieldwork/line/sending.py); with LINE off it fails due LINE
    # deliveries with that reason (the next channel's turn).
    "send-due-line-deliveries": {
        "task": "fieldwork.send_line_deliveries",
        "schedule": float(env.int("HYOKA_DELIVERY_SWEEP_INTERVAL", default=60)),
    },
    # Campaigns (fieldwork/campaigns/scheduling.py): what is due becomes deliveries, a
    # failed one is handed to the next channel. Safe to run twice at once.
    "schedule-campaigns": {
        "task": "fieldwork.schedule_campaigns",
        "schedule": float(env.int("HYOKA_CAMPAIGN_INTERVAL", default=60)),
    },
}
# The backstop re-sends a queued run once it is this many seconds old (never delivered).
HYOKA_BACKSTOP_STUCK_AFTER = env.int("HYOKA_BACKSTOP_STUCK_AFTER", default=180)
# Response exports (surveys/exports/expiry.py): a stored file is deleted this many days
# after it was written (the record of the export stays, "expired"); an export still
# "being written" this many seconds after it started lost its worker (or its client) and
# is marked failed. Longer than a redelivered task may take to claim it and run.
HYOKA_EXPORT_FILE_DAYS = env.int("HYOKA_EXPORT_FILE_DAYS", default=7)
if HYOKA_EXPORT_FILE_DAYS < 1:
    raise ImproperlyConfigured("HYOKA_EXPORT_FILE_DAYS must be 1 or more.")
HYOKA_EXPORT_STUCK_AFTER = env.int(
    "HYOKA_EXPORT_STUCK_AFTER",
    default=max(3600, visibility_timeout + CELERY_TASK_TIME_LIMIT + 300),
)
if HYOKA_EXPORT_STUCK_AFTER - visibility_timeout <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "HYOKA_EXPORT_STUCK_AFTER must exceed CELERY_VISIBILITY_TIMEOUT + "
        "CELERY_TASK_TIME_LIMIT: an export whose worker died is sent again and written "
        "within that time."
    )

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# A manager's admin session lasts a working day in production, counted from the login, and
# ends with the browser; embedded mode keeps Django's two weeks.
SESSION_COOKIE_AGE = 3600 * env.int("HYOKA_SESSION_HOURS", default=8 if PRODUCTION else 24 * 14)
if SESSION_COOKIE_AGE <= 0:
    raise ImproperlyConfigured("HYOKA_SESSION_HOURS must be 1 or more.")
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=PRODUCTION)
CSRF_COOKIE_HTTPONLY = False  # forms read it from the rendered token, not from JS
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# The proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses or
# networks, IPv4 or IPv6, comma-separated (config/client_ip.py). Anyone else's forwarding
# headers are dropped before anything reads them. None in embedded mode (no proxy); in
# production, loopback only, for a proxy on the same machine as gunicorn (which listens on
# 127.0.0.1, as the README's command does). An empty value trusts no proxy at all.
for retired in ("BEHIND_PROXY", "PROXY_COUNT"):
    if retired in os.environ:
        raise ImproperlyConfigured(
            f"{retired} is no longer read: name the proxies whose X-Forwarded-For may be "
            f"believed in TRUSTED_PROXIES instead (see the configuration table in README.md)."
        )
_proxies = env.str("TRUSTED_PROXIES", default="127.0.0.1,::1" if PRODUCTION else "")
try:
    TRUSTED_PROXIES = [
        str(network) for network in parse_networks(v for v in _proxies.split(",") if v.strip())
    ]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXIES: {exc} is not an address or a network (such as 10.0.0.7, "
        f"10.0.0.0/24 or 2001:db8::/64)."
    ) from None
if TRUSTED_PROXIES:
    # Whether the request came over TLS, as the proxy says (only a trusted one can).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Features no page of Hyoka uses, refused to every page (config/security.py).
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
# No inline script or style anywhere; the API docs' own relaxations are in config/urls.py.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# Failed invitation-token lookups per client address (surveys/token_attempts.py), counted
# in the cache with django-ratelimit: "10/m" is ten a minute.
HYOKA_TOKEN_FAILURE_RATE = env.str("HYOKA_TOKEN_FAILURE_RATE", default="10/m")
if not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", HYOKA_TOKEN_FAILURE_RATE):
    raise ImproperlyConfigured(
        "HYOKA_TOKEN_FAILURE_RATE must be a count per period, such as 10/m or 100/h."
    )
# Draft saves per invitation link (surveys/draft_saves.py). The questionnaire's autosave
# sends at most one save 1.5 s after the participant's last change, one at a time: under
# 40 a minute even for someone who changes an answer every 1.5 s without end.
HYOKA_DRAFT_SAVE_RATE = env.str("HYOKA_DRAFT_SAVE_RATE", default="60/m")
if not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", HYOKA_DRAFT_SAVE_RATE):
    raise ImproperlyConfigured(
        "HYOKA_DRAFT_SAVE_RATE must be a count per period, such as 60/m or 600/h."
    )
# A participant's draft saves are recorded in the history at the first save, then only a
# save that comes this many seconds after the one before it (surveys/submission/records.py).
HYOKA_DRAFT_HISTORY_INTERVAL = env.int("HYOKA_DRAFT_HISTORY_INTERVAL", default=600)
if HYOKA_DRAFT_HISTORY_INTERVAL < 0:
    raise ImproperlyConfigured("HYOKA_DRAFT_HISTORY_INTERVAL is a number of seconds, 0 or more.")
RATELIMIT_IP_META_KEY = "config.client_ip.client_ip"
RATELIMIT_FAIL_OPEN = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers and monitors probe over plain http inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# --- REST framework -------------------------------------------------------------------
# The API under /api/v1/ (config/api/): hashed tokens (knox) for machines, sessions with
# CSRF for the browser; model permissions plus site scope; one JSON error shape.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that an unauthenticated request answers 401 with WWW-Authenticate.
        "config.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["surveys.api.permissions.ModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "surveys.api.parsers.JSONParser",  # with limits on size and depth
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        # REST framework's own, keyed on config/client_ip.py rather than X-Forwarded-For.
        "config.api.throttling.AnonRateThrottle",
        "config.api.throttling.UserRateThrottle",
        "config.api.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="600/minute"),
        "user": env.str("API_THROTTLE_USER", default="1200/minute"),
        # Obtaining a token with a password: slows down password guessing.
        "login": env.str("API_THROTTLE_LOGIN", default="10/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Hyoka API",
    "DESCRIPTION": (
        "Submit questionnaire answers with a participant's invitation token; manage "
        "participants; read and export responses; define KPIs; score; sign off "
        "evaluations. See docs/api.md."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc are served from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ResponseStatusEnum": "surveys.models.Response.Status",
        "ParticipantStatusEnum": "surveys.models.Participant.Status",
        "InstrumentStatusEnum": "surveys.models.Instrument.Status",
        "StudyStatusEnum": "surveys.models.Study.Status",
        "RunStatusEnum": "kpi.models.EvaluationRun.Status",
        "EvaluationStatusEnum": "kpi.models.Evaluation.Status",
        "LanguageEnum": "surveys.models.Language",
    },
}

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Invitation tokens are credentials: no log line shows one (config/logfilters.py).
    "filters": {"redact_tokens": {"()": "config.logfilters.RedactTokens"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint narrates every rendering step at INFO; fontTools its subsetting.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- Evaluation PDFs ------------------------------------------------------------------
# The programme's signing certificate (PKCS#12) and the certificates verification trusts.
if PRODUCTION:
    HYOKA_SIGNING_P12 = _required("HYOKA_SIGNING_P12")
    HYOKA_SIGNING_PASSPHRASE = _required("HYOKA_SIGNING_PASSPHRASE")
else:
    HYOKA_SIGNING_P12 = env.str(
        "HYOKA_SIGNING_P12", default=str(BASE_DIR / "var" / "signing" / "development.p12")
    )
    HYOKA_SIGNING_PASSPHRASE = env.str("HYOKA_SIGNING_PASSPHRASE", default="hyoka-development")
HYOKA_SIGNING_TRUST_ROOTS = env.list("HYOKA_SIGNING_TRUST_ROOTS", default=[])
# The RFC 3161 time-stamping authority that dates registrations and signed evaluations
# (kpi/evidence/timestamps.py), and the certificates its tokens are checked against. In the
# embedded mode it may be empty: the demo then starts a development authority on 127.0.0.1.
HYOKA_TSA_URL = _required("HYOKA_TSA_URL") if PRODUCTION else env.str("HYOKA_TSA_URL", default="")
HYOKA_TSA_TIMEOUT = env.int("HYOKA_TSA_TIMEOUT", default=10)
# Production names the authority's root too: the signed evidence embeds the validation
# data of its timestamps (B-LT), and that needs the chain up to a trusted root.
HYOKA_TSA_TRUST_ROOTS = (
    _required("HYOKA_TSA_TRUST_ROOTS").split(",")
    if PRODUCTION
    else env.list("HYOKA_TSA_TRUST_ROOTS", default=[])
)

# --- Hyoka ----------------------------------------------------------------------------
# Longest free-text answer accepted, in characters.
HYOKA_TEXT_ANSWER_MAX = env.int("HYOKA_TEXT_ANSWER_MAX", default=2000)
# The largest JSON body the API reads (bytes; 413 beyond) and how deeply it may nest (400
# beyond), both checked before parsing (surveys/api/parsers.py). A whole questionnaire's
# answers take a few kilobytes and three levels; form and multipart bodies are bounded by
# Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) instead.
HYOKA_JSON_MAX_BYTES = env.int("HYOKA_JSON_MAX_BYTES", default=1024 * 1024)
HYOKA_JSON_MAX_DEPTH = env.int("HYOKA_JSON_MAX_DEPTH", default=20)
if HYOKA_JSON_MAX_BYTES < 1 or HYOKA_JSON_MAX_DEPTH < 1:
    raise ImproperlyConfigured("HYOKA_JSON_MAX_BYTES and HYOKA_JSON_MAX_DEPTH must be 1 or more.")
# A CSRF failure (an expired page, cookies refused) gets a translated page asking to reload.
CSRF_FAILURE_VIEW = "surveys.views.csrf_failure"

# --- Fieldwork: contacts and deliveries -----------------------------------------------
# Contact details are encrypted at rest with these Fernet keys (fieldwork/crypto.py):
# comma-separated, the first encrypts, all decrypt; rotate by putting a new key first and
# running `manage.py reencrypt_contacts`. Make a key with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
# Embedded mode only: a fixed, clearly-marked development key (base64 of
# "embedded-mode-insecure-dev-key!!").
if PRODUCTION:
    _contact_keys = _required("HYOKA_CONTACT_KEYS")
else:
    _contact_keys = env.str(
        "HYOKA_CONTACT_KEYS", default="ZW1iZWRkZWQtbW9kZS1pbnNlY3VyZS1kZXYta2V5ISE="
    )
HYOKA_CONTACT_KEYS = [key.strip() for key in _contact_keys.split(",") if key.strip()]
if not HYOKA_CONTACT_KEYS:
    raise ImproperlyConfigured("HYOKA_CONTACT_KEYS holds no key.")
for _number, _key in enumerate(HYOKA_CONTACT_KEYS, start=1):
    try:
        if len(base64.urlsafe_b64decode(_key.encode("ascii"))) != 32:
            raise ValueError
    except (ValueError, UnicodeEncodeError):
        raise ImproperlyConfigured(
            f"HYOKA_CONTACT_KEYS: key {_number} is not a Fernet key (32 bytes, url-safe "
            f"base64, 44 characters); make one with Fernet.generate_key()."
        ) from None

# E-mail: SMTP in production from EMAIL_URL (django-environ: smtp+tls://user:password@host:587
# or smtps://...:465); embedded mode writes each message to a file under var/mail/ unless
# EMAIL_URL says otherwise (consolemail:// prints them).
_email_url = _required("EMAIL_URL") if PRODUCTION else env.str("EMAIL_URL", default="")
if _email_url:
    _email = env.email_url_config(_email_url)
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
    EMAIL_PORT = int(_email.get("EMAIL_PORT") or 25)
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
    if _email.get("EMAIL_FILE_PATH"):
        EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(BASE_DIR / "var" / "mail")
# Seconds an SMTP connection may block; a timeout is a transient error (retried).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# The provider's limit, in messages per second (0: no limit).
HYOKA_EMAIL_RATE_PER_SECOND = env.float("HYOKA_EMAIL_RATE_PER_SECOND", default=10.0)
# Deliveries claimed and sent per batch (one SMTP connection each).
HYOKA_EMAIL_BATCH_SIZE = env.int("HYOKA_EMAIL_BATCH_SIZE", default=200)
# Attempts per message before a transient error becomes a failure.
HYOKA_DELIVERY_MAX_ATTEMPTS = env.int("HYOKA_DELIVERY_MAX_ATTEMPTS", default=5)
# A delivery "sending" for longer than this (seconds) was claimed by a worker that died:
# it is queued again. Longer than a task may run, or a live worker's message is resent.
HYOKA_DELIVERY_SENDING_TIMEOUT = env.int(
    "HYOKA_DELIVERY_SENDING_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 300
)
if HYOKA_EMAIL_RATE_PER_SECOND < 0 or HYOKA_EMAIL_BATCH_SIZE < 1:
    raise ImproperlyConfigured(
        "HYOKA_EMAIL_RATE_PER_SECOND must be 0 or more and HYOKA_EMAIL_BATCH_SIZE 1 or more."
    )
if HYOKA_DELIVERY_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("HYOKA_DELIVERY_MAX_ATTEMPTS must be 1 or more.")
if HYOKA_DELIVERY_SENDING_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "HYOKA_DELIVERY_SENDING_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT: a message still "
        "being sent by a live worker would be sent again."
    )
# At most this many letters from the admin's "Print letters (PDF)" actions (a download
# rendered while the manager waits); more: ``manage.py letters``.
HYOKA_LETTERS_ADMIN_MAX = env.int("HYOKA_LETTERS_ADMIN_MAX", default=500)
if HYOKA_LETTERS_ADMIN_MAX < 1:
    raise ImproperlyConfigured("HYOKA_LETTERS_ADMIN_MAX must be 1 or more.")
# The right-hand side of every Message-ID (fieldwork/channels/email.py).
HYOKA_MESSAGE_ID_DOMAIN = env.str(
    "HYOKA_MESSAGE_ID_DOMAIN", default=SITE_URL.split("://", 1)[-1].split("/")[0].split(":")[0]
)

# --- LINE (fieldwork/line/) -----------------------------------------------------------
# The official account's Messaging API channel (README, "The LINE channel"). LINE is
# optional: without a secret and a token the channel is off, messages fall through to the
# next channel and the webhook answers 503. Set both or neither.
LINE_CHANNEL_SECRET = env.str("LINE_CHANNEL_SECRET", default="")
LINE_CHANNEL_ACCESS_TOKEN = env.str("LINE_CHANNEL_ACCESS_TOKEN", default="")
if bool(LINE_CHANNEL_SECRET) != bool(LINE_CHANNEL_ACCESS_TOKEN):
    raise ImproperlyConfigured(
        "Set both LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN (the LINE channel is on) "
        "or neither (it is off); only one of them is set."
    )
LINE_ENABLED = bool(LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN)
# Where the Messaging API is; the tests point it at a stand-in on 127.0.0.1.
LINE_API_HOST = env.str("LINE_API_HOST", default="https://api.line.me").rstrip("/")
if not re.fullmatch(r"https?://[^/\s]+", LINE_API_HOST):
    raise ImproperlyConfigured(
        f"LINE_API_HOST must be a scheme and a host, such as https://api.line.me, "
        f"not {LINE_API_HOST!r}."
    )
# Seconds to wait for the Messaging API (connecting, then reading) before the push counts
# as a transient failure (retried with the same X-Line-Retry-Key).
LINE_API_TIMEOUT = env.float("LINE_API_TIMEOUT", default=10.0)
if LINE_API_TIMEOUT <= 0:
    raise ImproperlyConfigured("LINE_API_TIMEOUT is a number of seconds, more than 0.")
# The key the one-time LINE link codes printed on letters are derived from
# (fieldwork/line/codes.py). Changing it voids every code not yet used.
if PRODUCTION and LINE_ENABLED:
    HYOKA_LINE_CODE_KEY = _required("HYOKA_LINE_CODE_KEY")
else:
    # Embedded mode only: a fixed, clearly-marked development key.
    HYOKA_LINE_CODE_KEY = env.str(
        "HYOKA_LINE_CODE_KEY", default="embedded-mode-insecure-line-code-key-do-not-use"
    )
if len(HYOKA_LINE_CODE_KEY) < 32:
    raise ImproperlyConfigured("HYOKA_LINE_CODE_KEY must be at least 32 random characters.")
# The official account's LINE ID as residents add it ("@123abcde", shown as typed on
# letters and in invitations with the participant's link code: fieldwork/letters). Without
# it no LINE paragraph is printed; with LINE on in production it is required.
if PRODUCTION and LINE_ENABLED:
    LINE_OFFICIAL_ACCOUNT_ID = _required("LINE_OFFICIAL_ACCOUNT_ID").strip()
else:
    LINE_OFFICIAL_ACCOUNT_ID = env.str("LINE_OFFICIAL_ACCOUNT_ID", default="").strip()
if LINE_OFFICIAL_ACCOUNT_ID and not re.fullmatch(
    r"@[0-9A-Za-z._-]{1,40}", LINE_OFFICIAL_ACCOUNT_ID
):
    raise ImproperlyConfigured(
        "LINE_OFFICIAL_ACCOUNT_ID is the official account's LINE ID with its @, such as "
        f"@123abcde, not {LINE_OFFICIAL_ACCOUNT_ID!r}."
    )
# Wrong link codes sent by one LINE user, counted in the cache: past this rate their codes
# are not even looked at for a while (as HYOKA_TOKEN_FAILURE_RATE slows invalid links).
HYOKA_LINE_CODE_FAILURE_RATE = env.str("HYOKA_LINE_CODE_FAILURE_RATE", default="10/h")
if not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", HYOKA_LINE_CODE_FAILURE_RATE):
    raise ImproperlyConfigured(
        "HYOKA_LINE_CODE_FAILURE_RATE must be a count per period, such as 5/h or 20/d."
    )
# A webhook event older than this (seconds) is ignored; the ids of the events handled are
# remembered (in the cache) for twice as long, so a replayed event changes nothing.
HYOKA_LINE_EVENT_MAX_AGE = env.int("HYOKA_LINE_EVENT_MAX_AGE", default=24 * 3600)
if HYOKA_LINE_EVENT_MAX_AGE < 60:
    raise ImproperlyConfigured("HYOKA_LINE_EVENT_MAX_AGE is a number of seconds, 60 or more.")
