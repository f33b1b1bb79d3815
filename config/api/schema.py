"""OpenAPI 3 (drf-spectacular): every operation documents the error shape for the refusals
any request can meet, so clients and schemathesis know what a 4xx looks like."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable: clients branch on it.")
    message = serializers.CharField(help_text="In the request's language (ja by default).")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input: a field, a dotted path into nested input, a question "
        "code or a CSV row number.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERRORS = {
    "400": "Invalid input (code `invalid`, `parse_error` or a rule's code)",
    "401": "Not authenticated (`not_authenticated`, `authentication_failed`)",
    "403": "Not permitted (`permission_denied`)",
    "404": "Not found, or outside the caller's scope (`not_found`)",
    "405": "Method not allowed (`method_not_allowed`)",
    "406": "Not acceptable (`not_acceptable`)",
    "415": "Unsupported media type (`unsupported_media_type`)",
    "429": "Throttled (`throttled`); see Retry-After",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        public = not getattr(self.view, "authentication_classes", None)
        errors = dict(ERRORS)
        if self.method == "DELETE":
            errors["409"] = "In use by another record (`protected`)"
        if self.method in {"POST", "PUT", "PATCH"}:
            errors["413"] = "Request body too large (`request_too_large`)"
        for code, description in errors.items():
            if code == "401" and public:
                continue
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    ErrorSerializer, code, ["application/json"], direction
                )
                responses[code]["description"] = description
        return responses

    def get_override_parameters(self) -> list[Any]:
        params = list(super().get_override_parameters())
        params.append(
            OpenApiParameter(
                "Accept-Language",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="`ja` (default) or `en`: the language of messages and labels.",
                enum=["ja", "en"],
                required=False,
            )
        )
        return params


__all__ = ["AutoSchema", "ErrorSerializer"]
