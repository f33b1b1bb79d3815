"""The client's address, as every rate limit and lockout counts it.

``REMOTE_ADDR`` is the peer of the TCP connection: a client cannot choose it. A proxy in
front of Hyoka appends the address it saw to ``X-Forwarded-For``, but anyone who reaches
gunicorn directly can send that header too. So the header is believed only when the peer
is one of ``TRUSTED_PROXIES`` (addresses or networks the operator names), and then read
from the right, past the entries that are themselves trusted proxies: the first untrusted
address is the client (the usual right-to-left rule, as nginx's ``real_ip_recursive``).
The entries to its left were written by the client and are never used. An entry that is
not an address was written by no proxy: the walk stops at the last proxy that wrote one.

The API's throttles (``config/api/throttling.py``), the invitation-token limit
(``surveys/token_attempts.py``, through ``RATELIMIT_IP_META_KEY``) and django-axes
(``AXES_CLIENT_IP_CALLABLE``) all call this one function.

``TrustedProxyMiddleware``, first in ``MIDDLEWARE``, drops the forwarding headers of a
request whose peer is not a trusted proxy, before anything reads them: Django's
``SECURE_PROXY_SSL_HEADER`` would otherwise let any client claim it came over TLS.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a proxy may tell the application; only a trusted proxy may tell it.
FORWARDING_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_FORWARDED",
)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES``' entries as networks (a plain address is a network of one).
    Raises ``ValueError`` naming the first entry that is neither, or that has bits set
    below its prefix (``10.0.0.1/8``: a typo for an address or for a network?)."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=True))
        except ValueError:
            raise ValueError(value.strip()) from None
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def _address(text: str | None) -> Address | None:
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    # A server listening on IPv6 sees IPv4 peers as ::ffff:a.b.c.d: one client, one form.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    peer = _address(request.META.get("REMOTE_ADDR"))
    if peer is None:
        # The test client and some servers give no or odd REMOTE_ADDR: count them together
        # rather than fail.
        return "0.0.0.0"  # noqa: S104 (an address to count, not to bind)
    address = peer
    if _trusted(peer):
        for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            written = _address(hop)
            if written is None:
                break
            address = written
            if not _trusted(address):
                break
    return str(address)


class TrustedProxyMiddleware:
    """Forget the forwarding headers of a request that did not come from a trusted proxy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        if any(name in meta for name in FORWARDING_HEADERS):
            peer = _address(meta.get("REMOTE_ADDR"))
            if peer is None or not _trusted(peer):
                for name in FORWARDING_HEADERS:
                    meta.pop(name, None)
        return self.get_response(request)
