"""The only files a letter may read while rendering: its two fonts.

WeasyPrint asks its URL fetcher for every resource the HTML and the stylesheet name. A
letter needs exactly two, both shipped under ``static/fonts``; everything else (another
file, ``http(s):``, ``data:``) is refused, so text in a letter (a name, an address) can
never make the renderer read a file or the network. Narrower than the evaluation report's
fetcher (which serves the whole static folder) and free of the kpi package, which the
letters do not otherwise need.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from weasyprint.urls import URLFetcher, URLFetcherResponse

FONTS = {"ipaexg.ttf", "DejaVuSansMono.ttf"}


class ResourceRefused(ValueError):
    """The letter asked for something other than its fonts."""


def fonts_folder() -> Path:
    return (Path(settings.BASE_DIR) / "static" / "fonts").resolve()


def base_url() -> str:
    """What ``url("fonts/...")`` in the stylesheet resolves against: the static folder."""
    return fonts_folder().parent.as_uri() + "/"


class FontsFetcher(URLFetcher):
    """Serves the two fonts, refuses everything else (logged by WeasyPrint, not fatal)."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols=["file"], allow_redirects=False, fail_on_errors=False)
        self.allowed = {(fonts_folder() / name).as_uri(): fonts_folder() / name for name in FONTS}

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        path = self.allowed.get(url)
        if path is None:
            raise ResourceRefused(f"a letter reads only its fonts, not {url!r}")
        return URLFetcherResponse(url, path.read_bytes(), headers={"Content-Type": "font/ttf"})
