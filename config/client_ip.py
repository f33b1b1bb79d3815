"""The client's address, as every rate limit and lockout counts it.

Without a proxy (``BEHIND_PROXY`` false, the embedded default) it is ``REMOTE_ADDR``: the
peer of the TCP connection, which a client cannot choose. Behind ``PROXY_COUNT`` trusted
proxies that each append the address they saw to ``X-Forwarded-For``, it is the address
the outermost trusted proxy appended: the ``PROXY_COUNT``-th entry from the right. The
entries to its left were written by the client and may be anything, so the left-most one
is never used. A header with fewer entries than there are proxies did not come through
all of them (or a client sent it directly): ``REMOTE_ADDR`` is used instead.

The API's throttles (``config/api/throttling.py``), the invitation-token limit
(``surveys/token_attempts.py``, through ``RATELIMIT_IP_META_KEY``) and django-axes
(``AXES_CLIENT_IP_CALLABLE``) all call this one function.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR") or ""
    if settings.BEHIND_PROXY and settings.PROXY_COUNT > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= settings.PROXY_COUNT:
            address = _valid(hops[-settings.PROXY_COUNT])
            if address is not None:
                return address
    # The test client and some servers give no or odd REMOTE_ADDR: count them together
    # rather than fail.
    return _valid(remote) or "0.0.0.0"  # noqa: S104 (an address to count, not to bind)
