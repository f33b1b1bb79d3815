"""The API's JSON parser: REST framework's, with limits checked before parsing.

A body larger than ``HYOKA_JSON_MAX_BYTES`` answers 413 without being read past the limit
(REST framework reads the request stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
does not apply to it). A body nested deeper than ``HYOKA_JSON_MAX_DEPTH`` answers 400
before the decoder sees it: Python's decoder recurses per level and a few hundred
thousand brackets would exhaust the stack (a RecursionError, which is not a parse error).
After parsing, a string holding a lone surrogate (``"\\ud800"``, valid JSON but not
text: no database or encoder takes it) and a number too large to be finite (``1e999``)
answer 400 too. The limits apply to every JSON endpoint, the unauthenticated token login
and invitation endpoints included.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, parsers
from rest_framework.utils import json

# A JSON string (escapes included), and the brackets that open and close a level.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "request_too_large"
    default_detail = gettext_lazy("The request body is too large.")


def nesting_depth(raw: bytes, stop_after: int) -> int:
    """How deeply arrays and objects nest in ``raw`` (brackets inside strings do not
    count); stops counting once past ``stop_after``."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    break
        else:
            depth -= 1
    return deepest


def _unreadable(value: Any) -> bool:
    """Whether parsed JSON holds a string that is not text or a number that is not finite."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_unreadable(k) or _unreadable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unreadable(v) for v in value)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = settings.HYOKA_JSON_MAX_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdecimal() and int(declared) > limit:
            raise RequestTooLarge()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge()
        if nesting_depth(raw, settings.HYOKA_JSON_MAX_DEPTH) > settings.HYOKA_JSON_MAX_DEPTH:
            raise exceptions.ParseError(
                _("The JSON is nested more than %(depth)d levels deep.")
                % {"depth": settings.HYOKA_JSON_MAX_DEPTH}
            )
        try:
            # REST framework's json refuses NaN and Infinity (STRICT_JSON).
            data = json.loads(raw.decode(parsers.get_encoding(parser_context)))
        except ValueError as exc:  # not in its encoding, not JSON, NaN, a 5,000-digit integer
            raise exceptions.ParseError(
                _("The body is not valid JSON (%(error)s).") % {"error": exc}
            ) from None
        if _unreadable(data):
            raise exceptions.ParseError(
                _("The JSON holds a string that is not valid text or a number out of range.")
            )
        return data
