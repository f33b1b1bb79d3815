"""``/healthz``: what is up and what is down, for a load balancer's probe and a monitor.

200 when this instance can serve (the database and the cache answer), 503 otherwise. The
broker is reported but not required: without it participants still submit and the
backstop scores their answers later (kpi.scoring.schedule.score_unscored), so a broker outage must
not take every web instance out of a load balancer; monitors read ``checks.broker``.

Cheap (a ``SELECT 1``, one broker connection, one cache round trip, each bounded by the
settings' timeouts), never cached, without authentication, and it names only the
components and their state: no address, version or error text.
"""

from __future__ import annotations

import logging
import uuid

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

UP, DOWN, EMBEDDED = "up", "down", "embedded"


# Seconds each check may take: a probe is answered within a few seconds even when a
# component is frozen (accepts connections but never answers).
TIMEOUT = 1.0


def database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _down("database", exc)
    return UP


def broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return EMBEDDED  # tasks run in-process: there is no broker to be down
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith(("redis://", "rediss://")):
            # One PING on a connection of its own: kombu's connect retries with pauses.
            client = redis.Redis.from_url(
                url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT, retry=None
            )
            with client:
                client.ping()
        else:
            from config.celery import app

            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT)
    except Exception as exc:
        return _down("broker", exc)
    return UP


def cache_state() -> str:
    key = f"healthz:{uuid.uuid4().hex}"
    try:
        cache.set(key, 1, timeout=10)
        ok = cache.get(key) == 1
        cache.delete(key)
    except Exception as exc:
        return _down("cache", exc)
    return UP if ok else DOWN


def _down(component: str, exc: Exception) -> str:
    # The reason goes to the log, never into the answer (it may name hosts).
    logger.warning("healthz: the %s does not answer: %s: %s", component, type(exc).__name__, exc)
    return DOWN


# What this instance cannot serve without.
REQUIRED = ("database", "cache")


@never_cache
@require_safe  # GET, and HEAD for probes that only look at the status
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": database(), "broker": broker(), "cache": cache_state()}
    healthy = all(checks[name] == UP for name in REQUIRED)
    degraded = any(state == DOWN for state in checks.values())
    status = "ok" if not degraded else "degraded" if healthy else "unavailable"
    return JsonResponse({"status": status, "checks": checks}, status=200 if healthy else 503)
