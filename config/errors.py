"""The 500 handler (``handler500`` in config/urls.py): an unreachable database is a 503.
The 400 handler (``handler400``): a request Django could not read answers the API's JSON
error under /api/, the participants' page elsewhere.

Django sends every exception a view *or a middleware* raises to ``handler500``, with the
exception still active; looking at it here covers every page and API endpoint, and every
place that touches the database (a session, the participant lookup, a submission's
transaction), without a try/except in each. A database that cannot be reached is an
outage, not a bug: participants are asked to come back shortly (503, Retry-After), API
clients get the API's JSON error shape. Nothing was stored: the request's transaction, if
it had begun, dies with its connection. A Redis cache that does not answer is the same.
"""

from __future__ import annotations

import sys

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from config.api.exceptions import error_body
from surveys import views as survey_views

# The errors Django raises when it cannot connect to the database or loses the connection,
# and redis-py's when a Redis cache (CACHE_URL: the API's throttling) does not answer.
UNREACHABLE = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def server_error(request: HttpRequest) -> HttpResponse:
    unavailable = isinstance(sys.exception(), UNREACHABLE)
    if request.path.startswith("/api/"):
        return _api_error(request, unavailable=unavailable)
    if unavailable:
        return survey_views.service_unavailable(request)
    return survey_views.server_error(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request that cannot be read: too large, too many fields, a broken body, text that
    is not UTF-8 (``config/encoding.py``)."""
    if request.path.startswith("/api/"):
        translation.activate(translation.get_language_from_request(request))
        body = error_body("parse_error", _("The request could not be read."))
        return JsonResponse(body, status=400)
    return survey_views.bad_request(request, exception)


def _api_error(request: HttpRequest, *, unavailable: bool) -> JsonResponse:
    # The API speaks the request's Accept-Language, as its other errors do.
    translation.activate(translation.get_language_from_request(request))
    if unavailable:
        body = error_body(
            "service_unavailable",
            _("The service is briefly unavailable. Please try again shortly."),
        )
        response = JsonResponse(body, status=503)
        response["Retry-After"] = str(survey_views.RETRY_AFTER)
    else:
        response = JsonResponse(
            error_body("server_error", _("A server error occurred.")), status=500
        )
    add_never_cache_headers(response)
    return response
