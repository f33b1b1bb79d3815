"""The admin site, with the second factor HYOKA_ADMIN_OTP asks for (django-otp, TOTP).

* ``off`` (the default): Django's admin as it is.
* ``optional``: a manager who has enrolled a device must give its code at login; the
  others log in with their password alone.
* ``required``: django-otp's ``OTPAdminSite`` rule: no admin page without a code (a
  manager without a device cannot log in until one is enrolled for them).

The setting is read on each request, so that tests (and a restart with another value)
need nothing else; ``OTPMiddleware`` is installed by settings whenever it is not ``off``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user, match_token, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.models import Device

OFF, OPTIONAL, REQUIRED = "off", "optional", "required"


class OTPLoginForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form, in Hyoka's words (translated), choosing the device
    itself when the manager has only one (so one code field is all they see)."""

    otp_error_messages = {
        **OTPAdminAuthenticationForm.otp_error_messages,
        "token_required": _("Enter the 6-digit code from your authenticator app."),
        "invalid_token": _("This code is not valid. Enter the code your app shows now."),
        "device_required": _("Choose the device that shows your code."),
        "verification_not_allowed": _("Codes cannot be checked at the moment: try later."),
        "n_failed_attempts": _("Too many wrong codes: wait a little, then try again."),
        "not_interactive": _("This device shows its codes by itself: enter the code."),
    }

    def _chosen_device(self, user: Any) -> Device | None:
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user))
            if len(devices) == 1:
                device = Device.from_persistent_id(devices[0].persistent_id, for_verify=True)
        return device


class OptionalOTPLoginForm(OTPLoginForm):
    """A code only from the managers who have a device."""

    def clean_otp(self, user: Any) -> None:
        if user is not None and not user_has_device(user):
            return
        super().clean_otp(user)


class AdminSite(admin.AdminSite):
    # The first screen is the manager's dashboard (workspace/), the list of models under it.
    index_template = "admin/workspace/index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Imported here: the dashboard reads every app's models and admin, loaded only
        # once this site (the admin app's default site) has been made.
        from workspace.views import dashboard_context

        context = {"title": gettext("Dashboard"), **dashboard_context(request)}
        return super().index(request, {**context, **(extra_context or {})})

    @property
    def login_form(self) -> type | None:  # type: ignore[override]
        mode = settings.HYOKA_ADMIN_OTP
        if mode == REQUIRED:
            return OTPLoginForm
        if mode == OPTIONAL:
            return OptionalOTPLoginForm
        return None

    @property
    def login_template(self) -> str | None:  # type: ignore[override]
        return None if settings.HYOKA_ADMIN_OTP == OFF else "admin/login_otp.html"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        mode = settings.HYOKA_ADMIN_OTP
        if mode == OFF:
            return True
        user: Any = request.user
        if user.is_verified():
            return True
        return mode == OPTIONAL and not user_has_device(user)


def second_factor_refusal(user: Any, code: str | None) -> str | None:
    """Why a login with a correct password still fails for want of a second factor (the
    API's token login asks this; the admin's forms above do the same), or None.

    The same rule as the admin's: ``optional`` asks a code of whoever has a device;
    ``required`` asks one of every staff user (a manager: a password alone must not mint a
    token either), while an account without admin access (a service account of another
    system) logs in with its password alone, as docs/security.md says."""
    mode = settings.HYOKA_ADMIN_OTP
    if mode == OFF:
        return None
    has_device = user_has_device(user)
    if not has_device:
        if mode == REQUIRED and user.is_staff:
            return str(_("A second factor is required, and no device is enrolled for you."))
        return None
    if not code:
        return str(OTPLoginForm.otp_error_messages["token_required"])
    if match_token(user, code) is None:
        return str(OTPLoginForm.otp_error_messages["invalid_token"])
    return None
