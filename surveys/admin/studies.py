"""Studies and their sites, with the response-rate table on a study's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .. import copying, scoping, selectors
from ..errors import RuleViolation, add_to_form
from ..models import RETENTION_MONTHS_MAX, Participant, Response, Site, Study
from .common import (
    EMPTY,
    RANGE,
    ScopedAdminMixin,
    _changelist_url,
    _format_rate,
    _period,
    _rate,
)
from .exports import StudyExportsMixin
from .memberships import MembershipInline


def own_sites(request: HttpRequest) -> QuerySet[Site] | None:
    """The caller's sites, or ``None`` for a superuser (every site: counts need no filter)."""
    return None if scoping.sees_everything(request.user) else scoping.sites(request.user)


class SiteInline(ScopedAdminMixin, admin.TabularInline):
    """The study's sites the caller is a member of. Read-only but for superusers: a site's
    own page checks the role on that site, which an inline (asked about the study) cannot."""

    model = Site
    extra = 0
    # The questionnaire window is set on the site's own page (its change link): with its
    # date-and-time widgets the table would not fit a 1280 px screen.
    fields = ("code", "name_ja", "name_en", "period_start", "period_end")
    show_change_link = True
    formfield_overrides = {
        models.CharField: {"widget": forms.TextInput(attrs={"size": 16})},
        models.SlugField: {"widget": forms.TextInput(attrs={"size": 10})},
    }

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.sees_everything(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.sees_everything(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.sees_everything(request.user)


@dataclass(frozen=True)
class RateRow:
    """One line of the response-rate table."""

    label: str
    code: str
    participants: int
    drafts: int
    submitted: int
    participants_url: str = ""
    drafts_url: str = ""
    submitted_url: str = ""

    @property
    def rate(self) -> float | None:
        return _rate(self.submitted, self.participants)


def response_rate_rows(study: Study, request: HttpRequest) -> tuple[list[RateRow], RateRow]:
    """Rows of the caller's sites of the study and their total, from one aggregate query.
    The total is the study's only when the caller sees every site of it."""
    rows = []
    for site in scoping.sites(request.user, selectors.site_response_counts(study)):
        rows.append(
            RateRow(
                label=site.name,
                code=site.code,
                participants=site.participants_total,  # type: ignore[attr-defined]
                drafts=site.drafts,  # type: ignore[attr-defined]
                submitted=site.submitted,  # type: ignore[attr-defined]
                participants_url=_changelist_url(
                    Participant, site=site.pk, status__exact=Participant.Status.ACTIVE
                ),
                drafts_url=_changelist_url(
                    Response, site=site.pk, status__exact=Response.Status.DRAFT
                ),
                submitted_url=_changelist_url(
                    Response, site=site.pk, status__exact=Response.Status.SUBMITTED
                ),
            )
        )
    whole = scoping.sees_everything(request.user) or len(rows) == study.sites.count()
    total = RateRow(
        label=str(_("Study total") if whole else _("Total of your sites")),
        code="",
        participants=sum(r.participants for r in rows),
        drafts=sum(r.drafts for r in rows),
        submitted=sum(r.submitted for r in rows),
    )
    return rows, total


class CopyStudyForm(forms.Form):
    """What a copy of a study needs of its own: a code, a name and a period."""

    code = forms.SlugField(label=_("Code of the new study"), max_length=64)
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200, required=False)
    period_start = forms.DateField(label=_("Period start"), widget=AdminDateWidget)
    period_end = forms.DateField(label=_("Period end"), widget=AdminDateWidget)


@admin.register(Study)
class StudyAdmin(StudyExportsMixin, ScopedAdminMixin, admin.ModelAdmin):
    """Studies the caller is a member of. Their counts are over the caller's sites only:
    a study-wide count beside one's own would give away the other sites' counts."""

    list_display = (
        "code",
        "name_ja",
        "status",
        "period",
        "sites_column",
        "participants_column",
        "submitted_column",
        "response_rate",
    )
    list_display_links = ("code", "name_ja")
    list_filter = ("status",)
    search_fields = ("code", "name_ja", "name_en")
    ordering = ("-period_start", "code")
    list_per_page = 50
    inlines = (SiteInline,)
    readonly_fields = ("created_at", "personal_data_expiry")
    fieldsets = (
        (None, {"fields": ("code", "name_ja", "name_en", "status", "default_language")}),
        (_("Period"), {"fields": ("period_start", "period_end")}),
        (_("Evaluation report"), {"fields": ("issuing_body_ja", "issuing_body_en")}),
        (_("Personal data"), {"fields": ("retention_months", "personal_data_expiry")}),
        (_("Published tables"), {"fields": ("small_cell_threshold",)}),
        (_("Description"), {"fields": ("description_ja", "description_en")}),
        (_("Record"), {"fields": ("created_at",), "classes": ("collapse",)}),
    )

    def base_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        return selectors.studies_with_response_counts(sites=own_sites(request))

    def object_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        # The study's page counts per site (``response_rate_rows``), not the list's totals.
        return Study.objects.all()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A new study has no sites, so no member: only a superuser would ever see it.
        return scoping.sees_everything(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a study deletes every site's set-up with it.
        return scoping.sees_everything(request.user)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        if not scoping.sees_everything(request.user):
            extra_context.setdefault(
                "subtitle", _("Sites, participants and responses are counted over your sites.")
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("period"), ordering="period_start")
    def period(self, obj: Study) -> str:
        return _period(obj.period_start, obj.period_end)

    @admin.display(description=_("personal data erased from"))
    def personal_data_expiry(self, obj: Study) -> str:
        # While a form is being corrected the value may be anything (the model's
        # validators run after it was set): no date for one out of range.
        if obj.pk is None or not 1 <= (obj.retention_months or 0) <= RETENTION_MONTHS_MAX:
            return EMPTY
        day = date_format(obj.personal_data_expires_on, "SHORT_DATE_FORMAT")
        if obj.status != Study.Status.CLOSED:
            return str(_("%(day)s, once the study is closed") % {"day": day})
        return day

    @admin.display(description=_("sites"), ordering="sites_total")
    def sites_column(self, obj: Study) -> int:
        return obj.sites_total  # type: ignore[attr-defined]

    @admin.display(description=_("participants"), ordering="participants_total")
    def participants_column(self, obj: Study) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _changelist_url(Participant, site__study__id__exact=obj.pk),
            obj.participants_total,  # type: ignore[attr-defined]
        )

    @admin.display(
        description=pgettext_lazy("count of responses", "submitted"), ordering="submitted"
    )
    def submitted_column(self, obj: Study) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _changelist_url(
                Response,
                participant__site__study__id__exact=obj.pk,
                status__exact=Response.Status.SUBMITTED,
            ),
            obj.submitted,  # type: ignore[attr-defined]
        )

    @admin.display(description=_("response rate"))
    def response_rate(self, obj: Study) -> str:
        return _format_rate(obj.submitted, obj.participants_total)  # type: ignore[attr-defined]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        study = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if study is not None:
            rows, total = response_rate_rows(study, request)
            extra_context.update(rate_rows=rows, rate_total=total, rate_as_of=timezone.now())
            if copying.may_copy(request.user, study):
                extra_context["copy_url"] = reverse("admin:surveys_study_copy", args=[study.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    # "Copy to a new study": a form on its own page (surveys.copying does the copy).

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/copy/",
                self.admin_site.admin_view(self.copy_view),
                name="surveys_study_copy",
            ),
            *super().get_urls(),
        ]

    def copy_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        study = self.get_object(request, unquote(object_id))  # 404 outside the scope
        if not self.has_view_permission(request, study):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": study,
            "title": _("Copy “%(study)s” to a new study") % {"study": study.name},
        }
        if not copying.may_copy(request.user, study):
            context["refusal"] = _(
                "Only a manager of every site of this study can copy it: the copy carries "
                "every site's set-up. Ask a manager of all its sites, or an administrator."
            )
            return TemplateResponse(request, "admin/surveys/study/copy.html", context, status=403)
        form = CopyStudyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                copy = copying.study_copy(source=study, user=request.user, **form.cleaned_data)
            except RuleViolation as exc:
                add_to_form(form, exc)
            else:
                # The admin's own record of the new study (its "History" page); the
                # copied memberships, segments and KPIs record "study copied".
                self.log_addition(request, copy, [{"added": {}}])
                messages.success(
                    request,
                    _(
                        "“%(copy)s” was made from “%(study)s”: its sites, a draft of its "
                        "questionnaire, its segments and KPIs. Review the questionnaire and "
                        "publish it, then import the participants."
                    )
                    % {"copy": copy.name, "study": study.name},
                )
                return HttpResponseRedirect(reverse("admin:surveys_study_change", args=[copy.pk]))
        context.update(form=form, media=self.media + form.media)
        return TemplateResponse(request, "admin/surveys/study/copy.html", context)


@admin.register(Site)
class SiteAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """The caller's sites, with their members below. A manager of a site edits its
    periods and window; adding and deleting sites is for superusers (a new site has no
    members yet, so nobody else would see it)."""

    list_display = ("code", "name_ja", "name_en", "study", "period", "questionnaire_window")
    list_display_links = ("code", "name_ja")
    list_filter = ("study",)
    list_select_related = ("study",)
    search_fields = ("code", "name_ja", "name_en", "study__code")
    ordering = ("study__code", "code")
    list_per_page = 100
    inlines = (MembershipInline,)
    fieldsets = (
        (None, {"fields": ("study", "code", "name_ja", "name_en")}),
        (_("Programme period"), {"fields": ("period_start", "period_end")}),
        (_("Questionnaire window"), {"fields": ("survey_opens_at", "survey_closes_at")}),
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.sees_everything(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scoping.sees_everything(request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Site | None = None) -> tuple[str, ...]:
        # A site does not move between studies once it exists: its participants would.
        return ("study",) if obj is not None else ()

    @admin.display(description=_("programme period"), ordering="period_start")
    def period(self, obj: Site) -> str:
        return _period(obj.period_start, obj.period_end)

    @admin.display(description=_("questionnaire window"), ordering="survey_opens_at")
    def questionnaire_window(self, obj: Site) -> str:
        if obj.survey_opens_at is None:
            return str(_("Not open yet"))
        opens = date_format(timezone.localtime(obj.survey_opens_at), "SHORT_DATETIME_FORMAT")
        if obj.survey_closes_at is None:
            return str(_("From %(opens)s, no end set") % {"opens": opens})
        closes = date_format(timezone.localtime(obj.survey_closes_at), "SHORT_DATETIME_FORMAT")
        return f"{opens} {RANGE} {closes}"
