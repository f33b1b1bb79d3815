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


# The embedded mode's fixed link key (config/settings.py): public, in the source.
DEVELOPMENT_LINK_KEY = "embedded-mode-insecure-link-key-do-not-use-in-production"


@checks.register(checks.Tags.security, deploy=True)
def check_link_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Participants' links are derived from HYOKA_LINK_KEY (surveys/links.py): whoever
    holds the key and a copy of the database holds every link. The development key is
    in the source; a short one can be guessed from a stored hash."""
    problems: list[checks.CheckMessage] = []
    named = [("HYOKA_LINK_KEY", settings.HYOKA_LINK_KEY)]
    named += [("HYOKA_LINK_OLD_KEYS", k) for k in settings.HYOKA_LINK_OLD_KEYS]
    for name, key in named:
        if key == DEVELOPMENT_LINK_KEY:
            why = "is the embedded mode's development key, which is public"
        elif len(key) < settings.LINK_KEY_MIN_LENGTH or len(set(key)) < 10:
            why = f"is shorter than {settings.LINK_KEY_MIN_LENGTH} random characters"
        else:
            continue
        problems.append(
            checks.Error(
                f"{name} {why}: anyone with it and a copy of the database has every "
                "participant's link.",
                hint="Set HYOKA_LINK_KEY to a new random key, e.g. python -c 'import secrets; "
                'print(secrets.token_urlsafe(32))\'; see "The link key" in README.md.',
                id="hyoka.E001",
            )
        )
    return problems
