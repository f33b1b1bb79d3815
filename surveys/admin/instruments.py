"""Instruments (questionnaire versions), their questions and choices: a published version
is frozen; a change is a new draft."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms.models import ModelChoiceIterator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .. import scoping, selectors, services
from ..errors import RuleViolation
from ..models import Choice, Instrument, Question, Response
from ..text import no_control_characters
from .common import EMPTY, MANAGER, ScopedAdminMixin, _changelist_url


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
    new draft version. ``_instrument(obj)`` finds the instrument an object belongs to.
    Comes before ``ScopedAdminMixin``, which takes the optional object of an inline."""

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


class QuestionInline(FrozenInstrumentMixin, ScopedAdminMixin, admin.TabularInline):
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

    def base_queryset(self, request: HttpRequest) -> QuerySet[Question]:
        return (
            super()
            .base_queryset(request)
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
class InstrumentAdmin(FrozenInstrumentMixin, ScopedAdminMixin, admin.ModelAdmin):
    """The questionnaires of the caller's studies; editing, publishing and new versions
    take the manager role in the study."""

    # The version is in the instrument's name ("tokyo-dx-2021 v2"), sorted by it.
    list_display = (
        "instrument_column",
        "study",
        "title_column",
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

    @admin.display(description=_("instrument"), ordering="version")
    def instrument_column(self, obj: Instrument) -> str:
        return str(obj)

    @admin.display(description=_("title"))
    def title_column(self, obj: Instrument) -> str:
        return obj.title

    actions = ("publish", "new_version")
    fieldsets = (
        (None, {"fields": ("study", "version", "status", "published_at", "source")}),
        (_("Title and introduction"), {"fields": ("title_ja", "title_en", "intro_ja", "intro_en")}),
    )

    def _instrument(self, obj: Instrument) -> Instrument:
        return obj

    def base_queryset(self, request: HttpRequest) -> QuerySet[Instrument]:
        # Responses counted over the caller's sites, like every count they see.
        responses = None
        if not scoping.sees_everything(request.user):
            responses = scoping.responses(request.user)
        return selectors.instruments_with_counts(responses=responses)

    def can_new_version(self, request: HttpRequest, instrument: Instrument) -> bool:
        return self.has_add_permission(request) and self.has_role(request, instrument, MANAGER)

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
        return self.get_object(request, unquote(object_id))  # 404 when out of scope

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
        if not self.can_new_version(request, instrument):
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
            context["can_new_version"] = self.can_new_version(request, obj)
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
    """Tags typed as ``online, municipal`` and stored as a JSON list; each tag is text
    checked as any other (``surveys/text.py``)."""

    default_validators = [no_control_characters]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))

    def run_validators(self, value: Any) -> None:
        for tag in value:
            super().run_validators(tag)


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
            "order": forms.NumberInput(attrs={"class": "hyoka-narrow"}),
            "code": forms.TextInput(attrs={"size": 14}),
            "label_ja": forms.TextInput(attrs={"size": 24}),
            "label_en": forms.TextInput(attrs={"size": 24}),
            "score": forms.NumberInput(attrs={"class": "hyoka-narrow"}),
        }


class ChoiceInline(FrozenInstrumentMixin, ScopedAdminMixin, admin.TabularInline):
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
class QuestionAdmin(FrozenInstrumentMixin, ScopedAdminMixin, admin.ModelAdmin):
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

    def base_queryset(self, request: HttpRequest) -> QuerySet[Question]:
        return (
            super()
            .base_queryset(request)
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
