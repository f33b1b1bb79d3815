"""Text in a request is UTF-8, or the request is refused.

Django decodes query strings and form bodies leniently: a byte that is not UTF-8 (``%FF``,
a raw 0xFF) becomes U+FFFD and the request goes on with text nobody typed. This middleware
answers 400 instead (``config.errors.bad_request``: the API's JSON error under /api/, the
participants' page elsewhere, in the caller's language), before any view or form sees it.
JSON bodies are checked by the API's parser (``surveys/api/parsers.py``). Multipart bodies
are not read here (they carry uploads, streamed to disk): their few text fields are ids
and choices, which a U+FFFD makes invalid anyway, and an uploaded CSV file that is not
UTF-8 is refused by the import.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.http import HttpRequest, HttpResponse

from config import errors

FORM = "application/x-www-form-urlencoded"


def _is_utf8(encoded: bytes) -> bool:
    """Whether ``encoded`` (a query string or form body) is UTF-8 once percent-decoded."""
    try:
        unquote_to_bytes(encoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Utf8RequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = get_bytes_from_wsgi(request.META, "QUERY_STRING", "")
        # ``request.body`` is bounded by DATA_UPLOAD_MAX_MEMORY_SIZE (400 beyond).
        if not _is_utf8(query) or (
            request.method == "POST" and request.content_type == FORM and not _is_utf8(request.body)
        ):
            return errors.bad_request(request)
        return self.get_response(request)
