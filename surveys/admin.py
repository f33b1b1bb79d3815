"""The programme managers' admin for the survey domain.

Writes go through ``services`` (import, links, withdrawal, publishing); reads that need
counts come from ``selectors``. Plain invitation tokens exist only in the one response
that shows or downloads them: never in the database, a message, a log or a session.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import F, QuerySet
from django.forms.models import ModelChoiceIterator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from . import selectors, services
from .errors import ImportRejected, RuleViolation
from .models import (
    Answer,
    Choice,
    Instrument,
    Participant,
    Question,
    Response,
    Site,
    Study,
)

admin.site.site_header = _("Hyoka administration")
admin.site.site_title = _("Hyoka")
admin.site.index_title = _("Programme management")

EMPTY = "\u2014"  # an em dash for "nothing here"
RANGE = "\u2013"  # an en dash between two dates
# An import larger than this is almost certainly the wrong file (352 rows are ~10 kB).
IMPORT_MAX_BYTES = 5 * 1024 * 1024


def _rate(numerator: int, denominator: int) -> float | None:
    return 100 * numerator / denominator if denominator else None


def _format_rate(numerator: int, denominator: int) -> str:
    rate = _rate(numerator, denominator)
    if rate is None:
        return EMPTY
    return f"{number_format(rate, 1)}% ({numerator} / {denominator})"


def _period(start: Any, end: Any) -> str:
    return (
        f"{date_format(start, 'SHORT_DATE_FORMAT')} {RANGE} {date_format(end, 'SHORT_DATE_FORMAT')}"
    )


def _changelist_url(model: type[models.Model], **params: object) -> str:
    url = reverse(f"admin:surveys_{model._meta.model_name}_changelist")
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


# --- Filters --------------------------------------------------------------------------


class SiteFilter(admin.SimpleListFilter):
    """Sites labelled with their study (two studies can both have a "Setagaya"), narrowed
    to the study chosen in the study filter."""

    title = _("site")
    parameter_name = "site"
    site_field = "site"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        sites = Site.objects.select_related("study").order_by("study__code", "code")
        study = request.GET.get(f"{self.site_field}__study__id__exact")
        if study and study.isdigit():
            sites = sites.filter(study_id=study)
        return [(str(s.pk), f"{s.study.code} · {s.name}") for s in sites]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{f"{self.site_field}_id": value})
        return queryset


class ResponseSiteFilter(SiteFilter):
    site_field = "participant__site"


class ResponseStatusFilter(admin.SimpleListFilter):
    title = _("response")
    parameter_name = "response"
    NOT_STARTED = "none"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(self.NOT_STARTED, _("Not started")), *Response.Status.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.NOT_STARTED:
            return queryset.filter(response__isnull=True)
        if value in Response.Status.values:
            return queryset.filter(response__status=value)
        return queryset


# --- Studies and sites ----------------------------------------------------------------


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0
    fields = (
        "code",
        "name_ja",
        "name_en",
        "period_start",
        "period_end",
        "survey_opens_at",
        "survey_closes_at",
    )
    show_change_link = True
    formfield_overrides = {
        models.CharField: {"widget": forms.TextInput(attrs={"size": 16})},
        models.SlugField: {"widget": forms.TextInput(attrs={"size": 10})},
    }


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


def response_rate_rows(study: Study) -> tuple[list[RateRow], RateRow]:
    """Per-site rows and the study total, from one aggregate query."""
    rows = []
    for site in selectors.site_response_counts(study):
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
    total = RateRow(
        label=str(_("Study total")),
        code="",
        participants=sum(r.participants for r in rows),
        drafts=sum(r.drafts for r in rows),
        submitted=sum(r.submitted for r in rows),
    )
    return rows, total


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
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
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("code", "name_ja", "name_en", "status", "default_language")}),
        (_("Period"), {"fields": ("period_start", "period_end")}),
        (_("Description"), {"fields": ("description_ja", "description_en")}),
        (_("Record"), {"fields": ("created_at",), "classes": ("collapse",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        return selectors.studies_with_response_counts()

    @admin.display(description=_("period"), ordering="period_start")
    def period(self, obj: Study) -> str:
        return _period(obj.period_start, obj.period_end)

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
            rows, total = response_rate_rows(study)
            extra_context.update(rate_rows=rows, rate_total=total, rate_as_of=timezone.now())
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("code", "name_ja", "name_en", "study", "period", "questionnaire_window")
    list_display_links = ("code", "name_ja")
    list_filter = ("study",)
    list_select_related = ("study",)
    search_fields = ("code", "name_ja", "name_en", "study__code")
    ordering = ("study__code", "code")
    list_per_page = 100
    fieldsets = (
        (None, {"fields": ("study", "code", "name_ja", "name_en")}),
        (_("Programme period"), {"fields": ("period_start", "period_end")}),
        (_("Questionnaire window"), {"fields": ("survey_opens_at", "survey_closes_at")}),
    )

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


# --- Instruments, questions and choices -----------------------------------------------


def _condition_text(question: Question) -> str:
    """``channels ∈ {anytime, night}``: which answer shows the question (choices prefetched)."""
    if question.condition_question is None:
        return EMPTY
    codes = ", ".join(
        c.code for c in sorted(question.condition_choices.all(), key=lambda c: c.order)
    )
    return str(
        _("if %(question)s is any of: %(choices)s")
        % {"question": question.condition_question.code, "choices": codes}
    )


class FrozenInstrumentMixin:
    """Nothing of a published instrument can be added, changed or deleted: a change is a
    new draft version. ``_instrument(obj)`` finds the instrument an object belongs to."""

    def _instrument(self, obj: Any) -> Instrument | None:
        raise NotImplementedError

    def _frozen(self, obj: Any) -> bool:
        instrument = self._instrument(obj) if obj is not None else None
        return instrument is not None and instrument.is_frozen

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._frozen(obj):
            return False
        return super().has_add_permission(request, obj)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class QuestionInline(FrozenInstrumentMixin, admin.TabularInline):
    model = Question
    extra = 0
    fields = (
        "order",
        "code",
        "type",
        "required",
        "text_ja",
        "text_en",
        "condition",
        "choices_summary",
    )
    readonly_fields = ("condition", "choices_summary")
    ordering = ("order",)
    show_change_link = True
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2})}}

    def _instrument(self, obj: Instrument) -> Instrument:
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet[Question]:
        return (
            super()
            .get_queryset(request)
            .select_related("condition_question")
            .prefetch_related("choices", "condition_choices")
        )

    @admin.display(description=_("shown"))
    def condition(self, obj: Question) -> str:
        return _condition_text(obj) if obj.pk else EMPTY

    @admin.display(description=_("choices"))
    def choices_summary(self, obj: Question) -> str:
        if not obj.pk or not obj.has_choices:
            return EMPTY
        return ", ".join(c.code for c in obj.choices.all()) or str(_("none yet"))


@admin.register(Instrument)
class InstrumentAdmin(FrozenInstrumentMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "study",
        "version",
        "title",
        "status",
        "published_at",
        "questions_column",
        "responses_column",
    )
    list_filter = ("study", "status")
    search_fields = ("study__code", "title_ja", "title_en")
    ordering = ("study__code", "-version")
    list_per_page = 50
    inlines = (QuestionInline,)
    actions = ("publish", "new_version")
    fieldsets = (
        (None, {"fields": ("study", "version", "status", "published_at", "source")}),
        (_("Title and introduction"), {"fields": ("title_ja", "title_en", "intro_ja", "intro_en")}),
    )

    def _instrument(self, obj: Instrument) -> Instrument:
        return obj

    def has_add_permission(self, request: HttpRequest) -> bool:  # type: ignore[override]
        return admin.ModelAdmin.has_add_permission(self, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Instrument]:
        return selectors.instruments_with_counts()

    def get_readonly_fields(
        self, request: HttpRequest, obj: Instrument | None = None
    ) -> tuple[str, ...]:
        fields = ("status", "published_at", "source")
        return (*fields, "study", "version") if obj is not None else fields

    @admin.display(description=_("questions"), ordering="questions_total")
    def questions_column(self, obj: Instrument) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _changelist_url(Question, instrument__id__exact=obj.pk),
            obj.questions_total,  # type: ignore[attr-defined]
        )

    @admin.display(description=_("responses"), ordering="responses_total")
    def responses_column(self, obj: Instrument) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _changelist_url(Response, instrument__id__exact=obj.pk),
            obj.responses_total,  # type: ignore[attr-defined]
        )

    # Publishing and new versions: actions on the list, buttons on the page.

    def _publish(self, request: HttpRequest, instrument: Instrument) -> bool:
        try:
            services.instrument_publish(instrument=instrument)
        except RuleViolation as exc:
            self.message_user(request, f"{instrument}: {exc.message}", messages.ERROR)
            return False
        self.message_user(
            request,
            _(
                "%(instrument)s is published: new responses answer this version. "
                "It can no longer change."
            )
            % {"instrument": instrument},
            messages.SUCCESS,
        )
        return True

    def _new_version(self, request: HttpRequest, instrument: Instrument) -> Instrument:
        copy = services.instrument_new_version(instrument=instrument)
        url = reverse("admin:surveys_instrument_change", args=[copy.pk])
        self.message_user(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                _("%(new)s is a new draft copied from %(old)s.") % {"new": copy, "old": instrument},
                url,
                _("Edit it"),
            ),
            messages.SUCCESS,
        )
        return copy

    @admin.action(description=_("Publish the selected drafts"), permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        for instrument in queryset.order_by("study__code", "version"):
            self._publish(request, instrument)

    @admin.action(description=_("Create a new draft version"), permissions=["add"])
    def new_version(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        for instrument in queryset.order_by("study__code", "version"):
            self._new_version(request, instrument)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/publish/",
                view(self.publish_view),
                name="surveys_instrument_publish",
            ),
            path(
                "<path:object_id>/new-version/",
                view(self.new_version_view),
                name="surveys_instrument_new_version",
            ),
            *super().get_urls(),
        ]

    def _confirm(
        self,
        request: HttpRequest,
        instrument: Instrument,
        *,
        title: str,
        text: str,
        button: str,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": instrument,
            "title": title,
            "text": text,
            "button": button,
        }
        return TemplateResponse(request, "admin/surveys/instrument/confirm.html", context)

    def _get_or_404(self, request: HttpRequest, object_id: str) -> Instrument:
        instrument = self.get_object(request, unquote(object_id))
        if instrument is None:
            raise Http404
        return instrument

    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        instrument = self._get_or_404(request, object_id)
        change_url = reverse("admin:surveys_instrument_change", args=[instrument.pk])
        if instrument.is_frozen:
            self.message_user(request, _("This version is already published."), messages.INFO)
            return HttpResponseRedirect(change_url)
        if not self.has_change_permission(request, instrument):
            raise PermissionDenied
        if request.method == "POST":
            self._publish(request, instrument)
            return HttpResponseRedirect(change_url)
        return self._confirm(
            request,
            instrument,
            title=str(_("Publish %(instrument)s?") % {"instrument": instrument}),
            text=str(
                _(
                    "Once published, this version's questions and choices can no longer "
                    "change, and new responses answer it. To change it later, create a new "
                    "draft version."
                )
            ),
            button=str(_("Yes, publish")),
        )

    def new_version_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        instrument = self._get_or_404(request, object_id)
        if not admin.ModelAdmin.has_add_permission(self, request):
            raise PermissionDenied
        if request.method == "POST":
            copy = self._new_version(request, instrument)
            return HttpResponseRedirect(reverse("admin:surveys_instrument_change", args=[copy.pk]))
        return self._confirm(
            request,
            instrument,
            title=str(
                _("Create a new draft version from %(instrument)s?") % {"instrument": instrument}
            ),
            text=str(
                _(
                    "A copy of this version's questions and choices becomes the study's next "
                    "version, as a draft you can edit. Responses keep the version they answered."
                )
            ),
            button=str(_("Yes, create a draft")),
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Instrument | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["can_publish"] = not obj.is_frozen and self.has_change_permission(request, obj)
            context["can_new_version"] = admin.ModelAdmin.has_add_permission(self, request)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ChoicesByQuestion(ModelChoiceIterator):
    """Condition choices grouped under their question's code, so the list reads as
    ``channels: anytime, night, …`` rather than one long flat list."""

    def __iter__(self) -> Iterator[Any]:
        groups: dict[str, list[tuple[Any, str]]] = {}
        for choice in self.queryset:
            groups.setdefault(choice.question.code, []).append(
                (self.choice(choice)[0], f"{choice.code} ({choice.label})")
            )
        yield from groups.items()


class TagsField(forms.CharField):
    """Tags typed as ``online, municipal`` and stored as a JSON list."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


class ChoiceForm(forms.ModelForm):
    tags = TagsField(
        label=_("tags"),
        required=False,
        widget=forms.TextInput(attrs={"size": 16}),
        help_text=_("Comma-separated groups that KPIs count by, such as online or municipal."),
    )

    class Meta:
        model = Choice
        fields = ("order", "code", "label_ja", "label_en", "score", "tags", "exclusive")
        widgets = {
            "order": forms.NumberInput(attrs={"style": "width: 4em"}),
            "code": forms.TextInput(attrs={"size": 14}),
            "label_ja": forms.TextInput(attrs={"size": 24}),
            "label_en": forms.TextInput(attrs={"size": 24}),
            "score": forms.NumberInput(attrs={"style": "width: 4em"}),
        }


class ChoiceInline(FrozenInstrumentMixin, admin.TabularInline):
    model = Choice
    form = ChoiceForm
    extra = 0
    ordering = ("order",)

    def _instrument(self, obj: Question) -> Instrument:
        return obj.instrument


class QuestionForm(forms.ModelForm):
    class Meta:
        model = Question
        fields = (
            "instrument",
            "order",
            "code",
            "type",
            "required",
            "text_ja",
            "text_en",
            "help_ja",
            "help_en",
            "max_length",
            "min_value",
            "max_value",
            "condition_question",
            "condition_choices",
        )
        widgets = {
            "text_ja": forms.Textarea(attrs={"rows": 3}),
            "text_en": forms.Textarea(attrs={"rows": 3}),
            "help_ja": forms.Textarea(attrs={"rows": 2}),
            "help_en": forms.Textarea(attrs={"rows": 2}),
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        instrument = data.get("instrument") or getattr(self.instance, "instrument", None)
        source = data.get("condition_question")
        chosen = data.get("condition_choices")
        if instrument is not None and instrument.is_frozen:
            raise ValidationError(_("This version is published and cannot change."))
        if source is not None:
            if instrument is not None and source.instrument_id != instrument.pk:
                self.add_error(
                    "condition_question", _("Choose a question of the same questionnaire.")
                )
            elif data.get("order") is not None and source.order >= data["order"]:
                self.add_error(
                    "condition_question", _("The condition must be on an earlier question.")
                )
            if not chosen:
                self.add_error(
                    "condition_choices", _("Choose the answers that show this question.")
                )
            elif any(c.question_id != source.pk for c in chosen):
                self.add_error(
                    "condition_choices", _("Choose only answers of the condition's question.")
                )
        elif chosen:
            self.add_error("condition_question", _("Choose the question these answers belong to."))
        return data


@admin.register(Question)
class QuestionAdmin(FrozenInstrumentMixin, admin.ModelAdmin):
    form = QuestionForm
    list_display = ("code", "instrument", "order", "type", "required", "condition", "choices_count")
    list_display_links = ("code",)
    list_filter = ("instrument__study", "instrument", "type", "required")
    list_select_related = ("instrument__study", "condition_question")
    search_fields = ("code", "text_ja", "text_en")
    ordering = ("instrument__study__code", "-instrument__version", "order")
    list_per_page = 100
    inlines = (ChoiceInline,)
    fieldsets = (
        (None, {"fields": ("instrument", "order", "code", "type", "required")}),
        (_("Text"), {"fields": ("text_ja", "text_en", "help_ja", "help_en")}),
        (_("Limits (free text and numbers)"), {"fields": ("max_length", "min_value", "max_value")}),
        (
            _("Condition"),
            {
                "fields": ("condition_question", "condition_choices"),
                "description": _(
                    "Leave empty to always show the question. Otherwise it is shown only "
                    "when the earlier question was answered with one of these choices."
                ),
            },
        ),
    )

    def _instrument(self, obj: Question) -> Instrument:
        return obj.instrument

    def has_add_permission(self, request: HttpRequest) -> bool:  # type: ignore[override]
        return admin.ModelAdmin.has_add_permission(self, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Question]:
        return (
            super()
            .get_queryset(request)
            .select_related("instrument__study", "condition_question")
            .prefetch_related("condition_choices")
            .annotate(choices_total=models.Count("choices"))
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Question | None = None
    ) -> tuple[str, ...]:
        return ("instrument",) if obj is not None else ()

    def get_form(
        self, request: HttpRequest, obj: Question | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        fields = form.base_fields
        if "instrument" in fields:
            fields["instrument"].queryset = Instrument.objects.filter(  # type: ignore[attr-defined]
                status=Instrument.Status.DRAFT
            ).select_related("study")
        # A condition names an earlier question of the same draft (checked again in clean).
        earlier = Question.objects.filter(instrument__status=Instrument.Status.DRAFT)
        if obj is not None:
            earlier = earlier.filter(instrument=obj.instrument_id, order__lt=obj.order)
        if "condition_question" in fields:
            field = fields["condition_question"]
            field.queryset = earlier  # type: ignore[attr-defined]
            for can in ("add", "change", "delete", "view"):
                setattr(field.widget, f"can_{can}_related", False)
        if "condition_choices" in fields:
            field = fields["condition_choices"]
            field.widget = forms.CheckboxSelectMultiple()
            field.help_text = ""
            field.iterator = ChoicesByQuestion  # type: ignore[attr-defined]
            field.queryset = (  # type: ignore[attr-defined]  # also gives the widget its choices
                Choice.objects.filter(question__in=earlier)
                .select_related("question")
                .order_by("question__order", "order")
            )
        return form

    @admin.display(description=_("shown"))
    def condition(self, obj: Question) -> str:
        return _condition_text(obj)

    @admin.display(description=_("choices"), ordering="choices_total")
    def choices_count(self, obj: Question) -> int | str:
        return obj.choices_total if obj.has_choices else EMPTY  # type: ignore[attr-defined]


# --- Participants ---------------------------------------------------------------------


def invitations_csv(invitations: Iterable[services.Invitation]) -> str:
    """``reference,site,link`` with a byte-order mark, so that Excel opens it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["reference", "site", "link"])
    for invitation in invitations:
        participant = invitation.participant
        writer.writerow([participant.reference, participant.site.code, invitation.url])
    return "\ufeff" + out.getvalue()


def _csv_filename(prefix: str, study_codes: Iterable[str]) -> str:
    codes = "-".join(sorted(set(study_codes))) or "participants"
    return f"{prefix}-{codes}-{timezone.localtime():%Y%m%d-%H%M}.csv"


class ParticipantForm(forms.ModelForm):
    class Meta:
        model = Participant
        fields = ("site", "reference", "invited_at", "reminded_at")

    def clean_reference(self) -> str:
        reference = self.cleaned_data["reference"].strip()
        if "@" in reference:
            raise ValidationError(_("The reference looks like an e-mail address; use a pseudonym."))
        return reference


class ImportForm(forms.Form):
    study = forms.ModelChoiceField(
        label=_("Study"), queryset=Study.objects.order_by("-period_start", "code")
    )
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns reference,site (the site by its code), UTF-8 with or without BOM: "
            "in Excel, save as “CSV UTF-8 (comma delimited)”."
        ),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise ValidationError(
                _("The file is larger than %(max)d MB; is it the right file?")
                % {"max": IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        return upload


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    form = ParticipantForm
    list_display = (
        "reference",
        "site_column",
        "study_column",
        "status",
        "response_column",
        "invited_at",
        "reminded_at",
        "token_issued_at",
    )
    list_filter = ("site__study", SiteFilter, "status", ResponseStatusFilter)
    search_fields = ("reference",)
    ordering = ("site__study__code", "site__code", "reference")
    list_per_page = 100
    actions = ("export_links", "withdraw")
    readonly_fields = ("status", "response_link", "token_issued_at", "created_at")
    fieldsets = (
        (None, {"fields": ("site", "reference", "status", "response_link")}),
        (_("Invitation"), {"fields": ("invited_at", "reminded_at", "token_issued_at")}),
        (_("Record"), {"fields": ("created_at",), "classes": ("collapse",)}),
    )

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        # The study column only tells studies apart; with one study it is noise.
        if not Study.objects.all()[1:2].exists():
            return tuple(c for c in self.list_display if c != "study_column")
        return tuple(self.list_display)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Participant]:
        return (
            super()
            .get_queryset(request)
            .select_related("site__study")
            .annotate(response_status=F("response__status"), response_pk=F("response__pk"))
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Participant | None = None
    ) -> tuple[str, ...]:
        # Participants are created by import; a participant never changes site.
        return (*self.readonly_fields, "site") if obj is not None else self.readonly_fields

    @admin.display(description=_("site"), ordering="site__code")
    def site_column(self, obj: Participant) -> str:
        return obj.site.name

    @admin.display(description=_("study"), ordering="site__study__code")
    def study_column(self, obj: Participant) -> str:
        return obj.site.study.code

    @admin.display(description=_("response"), ordering="response_status")
    def response_column(self, obj: Participant) -> str:
        status = obj.response_status  # type: ignore[attr-defined]
        if status is None:
            return str(_("Not started"))
        return str(Response.Status(status).label)

    @admin.display(description=_("response"))
    def response_link(self, obj: Participant) -> str:
        if obj.response_pk is None:  # type: ignore[attr-defined]
            return str(_("Not started"))
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:surveys_response_change", args=[obj.response_pk]),  # type: ignore[attr-defined]
            Response.Status(obj.response_status).label,  # type: ignore[attr-defined]
        )

    # Creating participants is importing them: a single one is a one-line CSV, and the
    # link is shown once either way.

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:surveys_participant_import"))

    def get_urls(self) -> list:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="surveys_participant_import",
            ),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, **extra}

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        rejected: ImportRejected | None = None
        if request.method == "POST":
            form = ImportForm(request.POST, request.FILES)
            if form.is_valid():
                study = form.cleaned_data["study"]
                try:
                    invitations = services.participants_import_csv(
                        study=study, data=form.cleaned_data["file"].read()
                    )
                except ImportRejected as exc:
                    rejected = exc
                else:
                    return self._import_done(request, study, invitations)
        else:
            studies = list(ImportForm.base_fields["study"].queryset[:2])  # type: ignore[attr-defined]
            form = ImportForm(initial={"study": studies[0]} if len(studies) == 1 else None)
        row_errors = sorted(
            (rejected.errors if rejected else {}).items(),
            key=lambda item: int(item[0]) if str(item[0]).isdigit() else 0,
        )
        sites = Site.objects.select_related("study").order_by("study__code", "code")
        template = "\ufeffreference,site\r\n"
        context = self._context(
            request,
            title=_("Import participants"),
            form=form,
            rejected=rejected,
            row_errors=row_errors,
            sites=sites,
            template_csv=_data_uri(template),
        )
        return TemplateResponse(request, "admin/surveys/participant/import.html", context)

    def _import_done(
        self, request: HttpRequest, study: Study, invitations: list[services.Invitation]
    ) -> HttpResponse:
        text = invitations_csv(invitations)
        context = self._context(
            request,
            title=_("Participants imported"),
            study=study,
            invitations=invitations,
            csv_text=text.lstrip("\ufeff"),
            csv_uri=_data_uri(text),
            csv_filename=_csv_filename("invitation-links", [study.code]),
        )
        response = TemplateResponse(request, "admin/surveys/participant/import_done.html", context)
        # The page holds the only copy of the links: no cache may keep it.
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    # Actions

    def _confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet[Participant],
        *,
        action: str,
        title: str,
        warning: str,
        button: str,
        participants: list[Participant],
        skipped: int,
        skipped_text: str,
    ) -> TemplateResponse:
        select_across = request.POST.get("select_across") == "1"
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        context = self._context(
            request,
            title=title,
            warning=warning,
            button=button,
            action=action,
            select_across=select_across,
            # With "select all", the action runs again on the filtered list (the form posts
            # to this same URL); otherwise on exactly the ticked participants.
            selected=selected[:1] if select_across else selected,
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            participants=participants[:50],
            more=max(0, len(participants) - 50),
            count=len(participants),
            skipped=skipped,
            skipped_text=skipped_text,
        )
        return TemplateResponse(request, "admin/surveys/participant/confirm_action.html", context)

    @admin.action(
        description=_("Export invitation links (issues new links)"), permissions=["change"]
    )
    def export_links(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        active = list(
            queryset.filter(status=Participant.Status.ACTIVE).order_by(
                "site__study__code", "site__code", "reference"
            )
        )
        skipped = queryset.count() - len(active)
        if request.POST.get("confirmed") != "yes":
            return self._confirmation(
                request,
                queryset,
                action="export_links",
                title=str(_("Export invitation links")),
                warning=str(
                    _(
                        "Links are stored only in a form that cannot be turned back into a "
                        "link, so exporting issues NEW links. The participants' current links "
                        "stop working at once: send them the new ones."
                    )
                ),
                button=str(_("Yes, issue new links and download")),
                participants=active,
                skipped=skipped,
                skipped_text=str(_("Withdrawn participants get no link and are left out.")),
            )
        if not active:
            self.message_user(request, _("No active participants were selected."), messages.WARNING)
            return None
        invitations = services.participant_reissue_links(participants=active)
        response = HttpResponse(
            invitations_csv(invitations), content_type="text/csv; charset=utf-8"
        )
        filename = _csv_filename("invitation-links", (p.site.study.code for p in active))
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    @admin.action(description=_("Withdraw the selected participants"), permissions=["change"])
    def withdraw(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        active = list(queryset.filter(status=Participant.Status.ACTIVE))
        skipped = queryset.count() - len(active)
        if request.POST.get("confirmed") != "yes":
            return self._confirmation(
                request,
                queryset,
                action="withdraw",
                title=str(_("Withdraw participants")),
                warning=str(
                    _(
                        "Withdrawn participants leave the study: their links stop working and "
                        "they no longer count in the response rate. Answers they already gave "
                        "are kept."
                    )
                ),
                button=str(_("Yes, withdraw them")),
                participants=active,
                skipped=skipped,
                skipped_text=str(_("Already withdrawn participants are left as they are.")),
            )
        for participant in active:
            services.participant_withdraw(participant=participant)
        self.message_user(
            request,
            ngettext(
                "%(count)d participant withdrawn.", "%(count)d participants withdrawn.", len(active)
            )
            % {"count": len(active)},
            messages.SUCCESS,
        )
        return None


def _data_uri(text: str) -> str:
    """A ``data:`` URI of a UTF-8 CSV: the download lives in the page, not on the server."""
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"data:text/csv;charset=utf-8;base64,{payload}"


# --- Responses ------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerRow:
    code: str
    text: str
    values: list[tuple[str, str]]  # (label, code) pairs; code empty for text and numbers


def answer_rows_for(response: Response) -> list[AnswerRow]:
    """Every question of the response's instrument in order, with what was answered (two
    queries). Unanswered and hidden questions get an empty list."""
    answers: dict[int, list[Answer]] = {}
    for answer in response.answers.select_related("choice").order_by("choice__order"):
        answers.setdefault(answer.question_id, []).append(answer)
    rows = []
    for question in response.instrument.questions.order_by("order"):
        values = []
        for answer in answers.get(question.pk, []):
            if answer.choice is not None:
                values.append((answer.choice.label, answer.choice.code))
            elif answer.text_value is not None:
                values.append((answer.text_value, ""))
            elif answer.number_value is not None:
                values.append((number_format(answer.number_value.normalize()), ""))
        rows.append(AnswerRow(code=question.code, text=question.text, values=values))
    return rows


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    """Responses are evidence: managers read them, nobody edits or deletes them here."""

    list_display = (
        "participant_column",
        "site_column",
        "status",
        "language",
        "source",
        "instrument_column",
        "started_at",
        "submitted_at",
    )
    list_filter = (
        "participant__site__study",
        ResponseSiteFilter,
        "status",
        "source",
        "language",
        "instrument",
    )
    list_select_related = ("participant__site__study", "instrument__study")
    search_fields = ("participant__reference",)
    date_hierarchy = "submitted_at"
    # Newest submissions first, then drafts (no submission time) on every database.
    ordering = (F("submitted_at").desc(nulls_last=True), "-started_at")  # type: ignore[assignment]
    list_per_page = 100
    fields = (
        "participant",
        "site_column",
        "instrument",
        "status",
        "language",
        "source",
        "started_at",
        "updated_at",
        "submitted_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Response | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Response | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Response]:
        return (
            super().get_queryset(request).select_related("participant__site__study", "instrument")
        )

    @admin.display(description=_("participant"), ordering="participant__reference")
    def participant_column(self, obj: Response) -> str:
        return obj.participant.reference

    @admin.display(description=_("site"), ordering="participant__site__code")
    def site_column(self, obj: Response) -> str:
        return obj.participant.site.name

    @admin.display(description=_("version"), ordering="instrument__version")
    def instrument_column(self, obj: Response) -> str:
        return f"v{obj.instrument.version}"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if response is not None and self.has_view_permission(request, response):
            extra_context["answer_rows"] = answer_rows_for(response)
        return super().change_view(request, object_id, form_url, extra_context)
