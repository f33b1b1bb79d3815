"""The one error shape of the API, mapped in one place.

Every 4xx answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``: ``code`` is
stable (clients branch on it), ``message`` is in the request's language (Accept-Language,
Japanese by default), ``fields`` maps an input (a field name, a dotted path into nested
input such as ``clauses.0.choices``, a question code or a CSV row number) to its messages.

Rule violations of the domain (``surveys.errors.RuleViolation`` and its subclasses in
``kpi.evaluations.errors`` and the API modules) get their status from ``STATUS_BY_CODE``;
Django's and REST framework's own exceptions keep theirs. Anything else is a bug and stays a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from surveys.errors import RuleViolation

# The HTTP status of each rule violation; any code not listed answers 400.
STATUS_BY_CODE: Mapping[str, int] = {
    # surveys
    "already_submitted": status.HTTP_409_CONFLICT,
    "survey_closed": status.HTTP_403_FORBIDDEN,
    "instrument_frozen": status.HTTP_409_CONFLICT,
    # kpi
    "evaluation_frozen": status.HTTP_409_CONFLICT,
    "run_not_succeeded": status.HTTP_409_CONFLICT,
    "specification_locked": status.HTTP_409_CONFLICT,
    # the API's own
    "idempotency_key_reused": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "pdf_not_ready": status.HTTP_409_CONFLICT,
}


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def _messages(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested serializer errors as ``{"a.0.b": [messages]}``; bare messages under
    ``non_field_errors`` (or the prefix)."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            fields.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(detail, list | tuple) and any(isinstance(v, Mapping | list) for v in detail):
        for index, value in enumerate(detail):
            if value:  # a list serializer reports {} for items without errors
                fields.update(flatten(value, f"{prefix}{index}."))
    elif detail not in (None, "", [], {}):
        fields[prefix.rstrip(".") or "non_field_errors"] = _messages(detail)
    return fields


def _rule_violation(exc: RuleViolation) -> Response:
    fields = {str(key): _messages(value) for key, value in exc.errors.items()}
    code = exc.code
    return Response(error_body(code, exc.message, fields), status=STATUS_BY_CODE.get(code, 400))


def _api_exception(exc: exceptions.APIException) -> Response:
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = f"{exc.wait:.0f}"
    code = exc.default_code
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(code, _("Some input is not valid: see the fields."), flatten(exc.detail))
    else:
        detail = exc.detail
        if isinstance(detail, list | dict):
            message, fields = str(exc.default_detail), flatten(detail)
        else:
            message, fields = str(detail), {}
        body = error_body(code, message, fields)
    return Response(body, status=exc.status_code, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST framework's EXCEPTION_HANDLER: every refusal in the one shape."""
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        # Never the model or the reason: a record outside the caller's scope, a wrong id
        # and an invalid invitation token all answer exactly the same.
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        # A body too large, too many fields, a malformed multipart stream.
        exc = exceptions.ParseError()
    elif isinstance(exc, DjangoValidationError):
        fields = (
            {k: _messages(v) for k, v in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {"non_field_errors": _messages(exc.messages)}
        )
        exc = exceptions.ValidationError(fields)

    if isinstance(exc, RuleViolation):
        response = _rule_violation(exc)
    elif isinstance(exc, ProtectedError | RestrictedError):
        response = Response(
            error_body("protected", _("This record is in use and cannot be deleted.")),
            status=status.HTTP_409_CONFLICT,
        )
    elif isinstance(exc, IntegrityError):
        # A concurrent request stored the same record first (the serializers check
        # uniqueness, so only a race gets here).
        response = Response(
            error_body("conflict", _("This record conflicts with one that exists.")),
            status=status.HTTP_409_CONFLICT,
        )
    elif isinstance(exc, exceptions.APIException):
        response = _api_exception(exc)
    else:
        return None
    set_rollback()
    return response
