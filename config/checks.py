"""Deployment checks of the attack protections (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

# Caches whose counters every worker process shares (and that increment atomically).
SHARED_CACHES = {
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
    "django_redis.cache.RedisCache",
}


@checks.register(checks.Tags.security, deploy=True)
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The invitation-token limit and the API throttles count in the cache: a cache of
    each process's own would let every gunicorn worker grant the full limit again."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in SHARED_CACHES:
        return []
    return [
        checks.Warning(
            f"The cache ({backend}) is not shared by the worker processes, so rate limits "
            "count per process.",
            hint="Set CACHE_URL to Redis, e.g. redis://host:6379/1.",
            id="hyoka.W001",
        )
    ]
