"""RFC 3161 timestamps from the time-stamping authority the operator names.

``HYOKA_TSA_URL`` is the authority's HTTP address. Production requires it; in the embedded
mode it may be empty, and then the demo starts the development authority of
``kpi/evidence/tsa.py`` on 127.0.0.1 for as long as it runs (``local_authority``), so that
nothing leaves the machine and a fresh checkout still produces timestamped evidence.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asn1crypto import cms
from django.conf import settings
from django.test.utils import override_settings
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper


class TimestampingNotConfigured(RuntimeError):
    pass


#: How long one client of the authority is reused (seconds). pyHanko sizes a signature's
#: space from a sample token its client asks the authority for once: a client made per
#: signature asked for one every time, one request in three. After this long a new
#: client asks again, so that a change of the authority's certificates is picked up.
CLIENT_LIFETIME = 600.0

_client: tuple[tuple[str, float], float, TimeStamper] | None = None  # (settings, made, client)
_client_lock = threading.Lock()


def timestamper() -> TimeStamper:
    """The client of the configured authority (pyHanko's, over HTTP), reused for
    ``CLIENT_LIFETIME`` seconds while the settings name the same authority."""
    global _client
    url = settings.HYOKA_TSA_URL
    if not url:
        raise TimestampingNotConfigured(
            "No time-stamping authority: set HYOKA_TSA_URL (the demo starts a development "
            "one on 127.0.0.1)."
        )
    configured = (url, settings.HYOKA_TSA_TIMEOUT)
    now = time.monotonic()
    with _client_lock:
        if _client is None or _client[0] != configured or now - _client[1] > CLIENT_LIFETIME:
            _client = (configured, now, HTTPTimeStamper(url, timeout=settings.HYOKA_TSA_TIMEOUT))
        return _client[2]


def forget_client() -> None:
    """Make the next ``timestamper()`` a new client (for tests, which start an authority of
    their own on a port an earlier one may have had)."""
    global _client
    with _client_lock:
        _client = None


def stamp(digest: bytes, algorithm: str = "sha256") -> cms.ContentInfo:
    """A timestamp token over ``digest`` from the configured authority (RFC 3161); raises
    ``pyhanko.sign.timestamps.TimestampRequestError`` when it cannot be had."""
    return asyncio.run(timestamper().async_timestamp(digest, algorithm))


@contextmanager
def local_authority() -> Iterator[str]:
    """Use the configured authority, or, when none is, a development authority on
    127.0.0.1 for the duration (its certificate under ``var/tsa``): yields the URL."""
    if settings.HYOKA_TSA_URL:
        yield settings.HYOKA_TSA_URL
        return
    from kpi.evidence.tsa import development_authority_files, serve

    (files,) = development_authority_files()
    # Trusted for the duration too, so that the signature's validation data can be
    # gathered (kpi.evaluations.signing.sign_pdf) for the development authority.
    trusted = [*settings.HYOKA_TSA_TRUST_ROOTS, str(files.certificate)]
    with (
        serve(files) as url,
        override_settings(HYOKA_TSA_URL=url, HYOKA_TSA_TRUST_ROOTS=trusted),
    ):
        yield url


def trusted_authorities() -> list[Path]:
    """The certificates of the authorities a verifier should trust: the configured ones,
    or in embedded mode without one the development authority (once made)."""
    from kpi.evidence.tsa import development_directory

    paths = [Path(p) for p in settings.HYOKA_TSA_TRUST_ROOTS]
    development = development_directory() / "tsa.pem"
    if not settings.PRODUCTION and not settings.HYOKA_TSA_URL and development.is_file():
        paths.append(development)
    return paths
