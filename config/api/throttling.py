"""REST framework's throttles, counting per client address as the rest of Hyoka does.

REST framework's own ``get_ident`` uses the whole ``X-Forwarded-For`` header when
``NUM_PROXIES`` is unset: a client could then pick a new identity for every request and
never be throttled. These classes key on ``config.client_ip.client_ip`` instead.
"""

from __future__ import annotations

from typing import Any

from rest_framework import throttling

from config.client_ip import client_ip


class _ClientIP:
    def get_ident(self, request: Any) -> str:
        return client_ip(request._request if hasattr(request, "_request") else request)


class AnonRateThrottle(_ClientIP, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_ClientIP, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(_ClientIP, throttling.ScopedRateThrottle):
    pass
