"""Admin for registrations: "Register the KPI specification" (a study the caller signs
for, the password again and a statement, as at sign-off), and each registration read-only
with its hash, the authority's time, what was registered and its deviations. Also the lock
as the definitions' admin shows it (``LockedByRegistration``): a registered KPI or segment
is read-only, with the reason above it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kpi.definitions.frozen import kpi_def
from kpi.definitions.models import KPI
from kpi.definitions.services import KPIFields
from kpi.scoring.admin import definition_preview
from surveys import scoping
from surveys.admin.common import ScopedAdminMixin, by_study, register_scope
from surveys.admin.history import HistoryAdmin
from surveys.errors import RuleViolation, add_to_form
from surveys.ids import as_id
from surveys.models import Membership, Study
from surveys.text import no_control_characters

from . import lock, services
from .errors import SpecificationLocked
from .models import Deviation, Registration
from .selectors import registration_for

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
            message = str(SpecificationLocked.default_message)
            if isinstance(obj, KPI) and services.may_register(
                request.user, obj.study, permission=services.DEVIATE
            ):
                url = reverse("admin:kpi_registration_deviate", args=[obj.pk])
                link = gettext("Record a deviation")
                messages.warning(request, format_html('{} <a href="{}">{}</a>', message, url, link))
            else:
                messages.warning(request, message)
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


class DeviateForm(forms.Form):
    """A registered KPI's target and judgement as they are to become, and why."""

    comparator = forms.ChoiceField(label=_("target comparator"), required=False)
    threshold = forms.DecimalField(
        label=_("target"), max_digits=9, decimal_places=4, required=False
    )
    rule = forms.ChoiceField(label=_("judged on"))
    confidence = forms.DecimalField(
        label=_("confidence level"),
        max_digits=4,
        decimal_places=3,
        min_value=Decimal("0.5"),
        max_value=Decimal("0.999"),
    )
    min_n = forms.IntegerField(label=_("minimum base size"), min_value=0, max_value=2**31 - 1)
    active = forms.BooleanField(label=_("active"), required=False)
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[no_control_characters],
    )
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("A deviation is an act of its own: confirm it with your password."),
    )

    CHANGEABLE = ("comparator", "threshold", "rule", "confidence", "min_n", "active")

    def __init__(self, *args: Any, kpi: KPI, **kwargs: Any) -> None:
        kwargs["initial"] = {f: getattr(kpi, f) for f in self.CHANGEABLE}
        super().__init__(*args, **kwargs)
        self.fields["comparator"].choices = KPI._meta.get_field("comparator").choices  # type: ignore[attr-defined]
        self.fields["comparator"].choices = [("", "—"), *self.fields["comparator"].choices]  # type: ignore[attr-defined]
        self.fields["rule"].choices = KPI._meta.get_field("rule").choices  # type: ignore[attr-defined]


class DeviationInline(ScopedAdminMixin, admin.TabularInline):
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
        "authority_time",
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

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path(
                "deviate/<path:kpi_id>/",
                wrap(self.deviate_view),
                name="kpi_registration_deviate",
            ),
            *super().get_urls(),
        ]

    def deviate_view(self, request: HttpRequest, kpi_id: str) -> HttpResponse:
        """Record a deviation from a registered KPI: its new target or judgement, the
        reason and the password again (``services.kpi_deviate``)."""
        if not request.user.has_perm(services.DEVIATE):
            raise PermissionDenied
        kpi_pk = as_id(kpi_id)
        studies = scoping.studies(request.user)
        kpis = KPI.objects.filter(study__in=studies).select_related("study")
        kpi = kpis.filter(pk=kpi_pk).first() if kpi_pk is not None else None
        registration = registration_for(kpi.study) if kpi is not None else None
        if kpi is None or registration is None:
            raise Http404(gettext("No registered KPI of yours has this id."))
        if not services.may_register(request.user, kpi.study, permission=services.DEVIATE):
            raise PermissionDenied
        form = DeviateForm(request.POST or None, kpi=kpi)
        previewing = request.method == "POST" and "_preview" in request.POST
        if previewing:
            # A preview records nothing: it asks for neither the reason nor the password.
            form.fields["reason"].required = form.fields["password"].required = False
        figures: dict[str, Any] = {}
        if previewing and form.is_valid():
            figures = deviation_preview(request, kpi, form)
        elif request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            fields = {f: data[f] for f in DeviateForm.CHANGEABLE if f in form.changed_data}
            try:
                services.kpi_deviate(
                    kpi=kpi,
                    fields=cast(KPIFields, fields),
                    user=request.user,  # type: ignore[arg-type]
                    password=data["password"],
                    reason=data["reason"],
                )
            except RuleViolation as exc:
                add_to_form(form, exc)
            else:
                messages.success(request, gettext("The deviation is recorded and applied."))
                return HttpResponseRedirect(
                    reverse("admin:kpi_registration_change", args=[registration.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Record a deviation from the registration"),
            "form": form,
            "kpi": kpi,
            "registration": registration,
            **figures,
        }
        return TemplateResponse(request, "admin/kpi/registration/deviate.html", context)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("timestamped at (time-stamping authority)"))
    def authority_time(self, obj: Registration) -> str:
        # To the microsecond and in UTC as well, as the token has it: what an auditor
        # compares with the fieldwork's first opening.
        local = date_format(timezone.localtime(obj.timestamped_at), "DATETIME_FORMAT")
        return format_html("{} <code>{}</code>", local, obj.timestamped_at.isoformat())

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


def deviation_preview(request: HttpRequest, kpi: KPI, form: DeviateForm) -> dict[str, Any]:
    """The KPI's figures now as registered and as the deviation would make them, side by
    side, before anything is recorded (the same scoring as the KPI form's Preview)."""
    changed = KPI.objects.get(pk=kpi.pk)
    for name in DeviateForm.CHANGEABLE:
        if name in form.changed_data:
            setattr(changed, name, form.cleaned_data[name])
    return {
        "registered_preview": definition_preview(request, kpi_def(kpi), kpi.study),
        "deviated_preview": definition_preview(request, kpi_def(changed), kpi.study),
    }
