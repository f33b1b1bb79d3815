"""The only way the report's HTML reaches outside itself: files under ``static/``.

WeasyPrint asks its URL fetcher for every stylesheet, font and image the HTML names. The
report needs two files (its stylesheet and the IPAex Gothic font), both in the project's
``static/`` folder, so the fetcher serves exactly that folder and refuses everything else:

* ``file:`` URLs whose resolved path (symlinks followed, ``..`` collapsed) lies outside
  ``BASE_DIR / "static"``, such as ``file:///etc/passwd`` or a symlink pointing out;
* every other scheme: ``http(s):`` (no network while rendering), ``ftp:``, and ``data:``
  too: the report needs none (its chart is inline SVG), and one rule is easier to audit.

A refusal raises ``ResourceRefused`` (a ``ValueError``); WeasyPrint logs it and renders
without the resource, so a stray ``<img src=...>`` can never read a file or the network.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from weasyprint.urls import URLFetcher, URLFetcherResponse

_TYPES = {".css": "text/css", ".ttf": "font/ttf", ".otf": "font/otf", ".svg": "image/svg+xml"}


class ResourceRefused(ValueError):
    """The report asked for something outside the static folder."""


def static_root() -> Path:
    return (Path(settings.BASE_DIR) / "static").resolve()


def base_url() -> str:
    """The base URL relative links in the report resolve against (the static folder)."""
    return static_root().as_uri() + "/"


def resolve(url: str) -> Path:
    """The file under the static folder that ``url`` names, or ``ResourceRefused``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ResourceRefused(f"only files under the static folder are served, not {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise ResourceRefused(f"no remote file shares: {url!r}")
    root = static_root()
    raw = Path(unquote(parts.path))
    if not raw.is_absolute() or "\x00" in parts.path:
        raise ResourceRefused(f"not an absolute file path: {url!r}")
    # resolve() follows symlinks and collapses "..": what is checked is what would be read.
    path = raw.resolve()
    if not path.is_relative_to(root):
        raise ResourceRefused(f"outside the static folder: {url!r}")
    if not path.is_file():
        raise ResourceRefused(f"no such file in the static folder: {url!r}")
    return path


class StaticFilesFetcher(URLFetcher):
    """WeasyPrint's fetcher, narrowed to the project's static folder (see the module)."""

    def __init__(self) -> None:
        # Errors are logged and the resource skipped, never fatal: a refused URL in
        # participant-supplied text must not stop the report.
        super().__init__(allowed_protocols=["file"], allow_redirects=False, fail_on_errors=False)

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        path = resolve(url)
        content_type = _TYPES.get(path.suffix.lower()) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        return URLFetcherResponse(
            path.as_uri(), path.read_bytes(), headers={"Content-Type": content_type}
        )
