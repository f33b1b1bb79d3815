"""Who django-axes locks out (``AXES_HANDLER``), and what they are told
(``AXES_LOCKOUT_CALLABLE``).

django-axes locks a username out from one address (``AXES_LOCKOUT_PARAMETERS``), with one
limit for every combination of its parameters. Password spraying tries one or two
passwords on many usernames from one address, never reaching that limit for any of them:
``LoginAttempts`` also locks the address itself once the failures from it, across all
usernames, reach ``HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT`` within the cool-off. It counts
django-axes' own records, so ``manage.py axes_reset_ip`` lifts it.

The admin gets a translated page, the API its one error shape; both answer 429 with
``Retry-After`` (the cool-off). Neither says whether the password was right.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import ngettext

from config.api.exceptions import error_body


class LoginAttempts(AxesDatabaseHandler):
    def get_failures(self, request: Any, credentials: dict | None = None) -> int:
        """The failures of this username from this address; or, when the address is over
        its own limit, at least the limit: django-axes then refuses (``is_locked``) and
        answers with the lockout (``user_login_failed``) as it does for a username."""
        failures = super().get_failures(request, credentials)
        since = timezone.now() - settings.AXES_COOLOFF_TIME
        from_address = AccessAttempt.objects.filter(
            ip_address=request.axes_ip_address, attempt_time__gte=since
        ).aggregate(total=Sum("failures_since_start"))["total"]
        if (from_address or 0) >= settings.HYOKA_LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(failures, get_failure_limit(request, credentials))
        return failures


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
    return response
