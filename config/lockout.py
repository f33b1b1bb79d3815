"""What a client locked out by django-axes is told (``AXES_LOCKOUT_CALLABLE``).

The admin gets a translated page, the API its one error shape; both answer 429 with
``Retry-After`` (the cool-off). Neither says whether the password was right.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext

from config.api.exceptions import error_body


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    response: HttpResponse
    if request.path.startswith("/api/"):
        message = ngettext(
            "Too many failed logins: wait %(minutes)d minute, then try again.",
            "Too many failed logins: wait %(minutes)d minutes, then try again.",
            minutes or 0,
        ) % {"minutes": minutes or 0}
        response = JsonResponse(error_body("locked_out", message), status=429)
    else:
        context = {**admin.site.each_context(request), "minutes": minutes}
        response = render(request, "admin/locked_out.html", context, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    response["Cache-Control"] = "no-store"
    return response
