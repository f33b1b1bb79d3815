"""Admin for registrations: "Register the KPI specification" (a study the caller signs
for, the password again and a statement, as at sign-off), and each registration read-only
with its hash, the authority's time, what was registered and its deviations. Also the lock
as the definitions' admin shows it (``LockedByRegistration``): a registered KPI or segment
is read-only, with the reason above it."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from surveys import scoping
from surveys.admin.common import by_study, register_scope
from surveys.admin.history import HistoryAdmin
from surveys.errors import RuleViolation, add_to_form
from surveys.models import Membership, Study
from surveys.text import no_control_characters

from . import lock, services
from .errors import SpecificationLocked
from .models import Deviation, Registration

register_scope(Registration, by_study("study_id"))
register_scope(Deviation, by_study("registration__study_id"))


class LockedByRegistration:
    """For the admins of registered things (KPIs, segments): read-only once their study's
    specification is registered, with the reason shown; the services refuse too."""

    def _locked(self, obj: Any) -> bool:
        return obj is not None and obj.pk is not None and lock.is_registered(obj.study_id)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._locked(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._locked(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type:
        # The list's editable columns (a KPI's display order): a locked row's change is a
        # form error on its row, not a refusal from the service (a 500).
        form = super().get_changelist_form(request, **kwargs)  # type: ignore[misc]

        class LockedRows(form):  # type: ignore[valid-type,misc]
            def clean(self) -> Any:
                data = super().clean()
                instance = self.instance
                if instance.pk and self.has_changed() and lock.is_registered(instance.study_id):
                    raise ValidationError(SpecificationLocked.default_message)
                return data

        return LockedRows

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        obj = getattr(response, "context_data", {}).get("original")
        if self._locked(obj) and request.method == "GET":
            messages.warning(request, str(SpecificationLocked.default_message))
        return response


class RegisterForm(forms.Form):
    study = forms.ModelChoiceField(label=_("Study"), queryset=Study.objects.none())
    statement = forms.CharField(
        label=_("Statement"),
        widget=forms.Textarea(attrs={"rows": 4}),
        validators=[no_control_characters],
        help_text=_("Kept with the registration, beside your name and the authority's time."),
    )
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Registering is an act of its own: confirm it with your password."),
    )


def default_statement() -> str:
    return gettext(
        "I register these KPIs, their bases, targets and decision rules before the "
        "questionnaire opens; any later change will be recorded as a deviation."
    )


class DeviationInline(admin.TabularInline):
    model = Deviation
    extra = 0
    can_delete = False
    fields = ("what", "old_value", "new_value", "reason", "made_by", "made_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Registration)
class RegistrationAdmin(HistoryAdmin):
    list_display = ("study", "timestamped_at", "sha256", "registered_by")
    list_select_related = ("study", "registered_by")
    readonly_fields = (
        "study",
        "instrument",
        "sha256",
        "timestamped_at",
        "registered_at",
        "registered_by",
        "statement",
        "specification",
    )
    fields = readonly_fields
    inlines = (DeviationInline,)
    allow_revert = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # append-only: a later change is a deviation

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("registered specification (canonical JSON)"))
    def specification(self, obj: Registration) -> str:
        pretty = json.dumps(json.loads(bytes(obj.canonical_json)), indent=2, ensure_ascii=False)
        return format_html('<pre class="hyoka-spec">{}</pre>', pretty)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not request.user.has_perm(services.REGISTER):
            raise PermissionDenied
        studies = scoping.studies(request.user, at_least=Membership.Role.SIGNER).filter(
            registration__isnull=True
        )
        form = RegisterForm(
            request.POST or None,
            initial={"study": request.GET.get("study"), "statement": default_statement()},
        )
        form.fields["study"].queryset = studies  # type: ignore[attr-defined]
        if request.method == "POST" and form.is_valid():
            try:
                registration = services.register(
                    study=form.cleaned_data["study"],
                    user=request.user,  # type: ignore[arg-type]
                    password=form.cleaned_data["password"],
                    statement=form.cleaned_data["statement"],
                )
            except RuleViolation as exc:
                add_to_form(form, exc)
            else:
                messages.success(
                    request, gettext("The KPI specification is registered and timestamped.")
                )
                return HttpResponseRedirect(
                    reverse("admin:kpi_registration_change", args=[registration.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Register the KPI specification"),
            "form": form,
        }
        return TemplateResponse(request, "admin/kpi/registration/register.html", context)
