"""The programme managers' admin for definitions: segments and their conditions, and KPI
targets (with their change history). Every write goes through ``services``, as the API's
and the loader's do.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kpi.registration.admin import LockedByRegistration
from kpi.scoring import wording
from kpi.scoring.admin import definition_preview
from kpi.scoring.statistics import Rule, confidence_percent
from kpi.scoring.wording import NBSP
from surveys import scoping
from surveys.admin.common import (
    EMPTY,
    MANAGER,
    ScopedAdminMixin,
    by_study,
    register_scope,
    scope_of,
)
from surveys.admin.history import HistoryAdmin
from surveys.ids import as_id
from surveys.models import Choice, _pick

from . import selectors, services
from .forms import ClauseForm, ClauseFormSet, KPIForm, KPIListForm
from .frozen import SegmentDef, kpi_def
from .models import KPI, Clause, Segment

# Study-wide, as everything of the KPI app: members of any site of the study see them.
register_scope(Segment, by_study("study_id"))
register_scope(Clause, by_study("segment__study_id"))
register_scope(KPI, by_study("study_id"))


def _target(obj: KPI) -> str:
    """ "at least 70 %": the same words as the results and the report."""
    return (
        wording.target_words(kind=obj.kind, comparator=obj.comparator, threshold=obj.threshold)
        or EMPTY
    )


# --- Segments and their conditions -------------------------------------------------------


class ClauseInline(ScopedAdminMixin, admin.StackedInline):
    model = Clause
    form = ClauseForm
    formset = ClauseFormSet
    fields = ("question", "choices", "tag", "negate")
    extra = 1
    verbose_name = _("condition")
    verbose_name_plural = _("conditions (a respondent is in the segment if all of them hold)")

    def base_queryset(self, request: HttpRequest) -> QuerySet[Clause]:
        return (
            super()
            .base_queryset(request)
            .select_related("question__instrument__study")
            .prefetch_related("choices")
        )

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        """The forms offer only the caller's studies' questions (``ScopedAdminMixin``); the
        tags suggested beside them (every study's, while the segment has none) likewise."""
        formset = super().get_formset(request, obj, **kwargs)
        user = request.user
        if scoping.sees_everything(user):
            return formset
        original = formset.__init__

        def __init__(self: ClauseFormSet, *args: Any, **kw: Any) -> None:
            original(self, *args, **kw)
            if self.instance.study_id is None:
                scope = scope_of(Choice)
                assert scope is not None
                mine = scope.rows(user, self.options.choices, at_least=MANAGER)
                tags = mine.values_list("tags", flat=True)
                self.options.tags = sorted({tag for some in tags for tag in some})

        formset.__init__ = __init__
        return formset


def clause_text(clause: Clause) -> str:
    """``channels: did not choose #municipal`` (question and choices loaded)."""
    what = [c.code for c in clause.choices.all()]
    if clause.tag:
        what.append(f"#{clause.tag}")
    verb = gettext("did not choose") if clause.negate else gettext("chose")
    return f"{clause.question.code}: {verb} {', '.join(what)}"


@admin.register(Segment)
class SegmentAdmin(LockedByRegistration, HistoryAdmin):
    list_display = ("name_column", "code", "study", "conditions_column", "kpis_column")
    list_display_links = ("name_column", "code")
    list_filter = ("study",)
    search_fields = ("code", "name_ja", "name_en")
    ordering = ("study__code", "code")
    fields = ("study", "code", "name_ja", "name_en")
    inlines = (ClauseInline,)
    history_list_display = ("name_column",)
    object_history_template = "admin/kpi/segment/object_history.html"

    def base_queryset(self, request: HttpRequest) -> QuerySet[Segment]:
        return selectors.segments_with_clauses(super().base_queryset(request))

    def get_readonly_fields(
        self, request: HttpRequest, obj: Segment | None = None
    ) -> tuple[str, ...]:
        # Its conditions name the study's questions: a segment stays in its study.
        return ("study",) if obj is not None else ()

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Segment, inline: Any, prefix: str
    ) -> dict[str, Any]:
        # "Add segment" opened with ?study=<id> offers that study's questions at once (a
        # study the caller manages).
        if obj.pk is None and obj.study_id is None and request.method == "GET":
            study = as_id(request.GET.get("study"))
            mine = scoping.studies(request.user, at_least=MANAGER)
            if study is not None and mine.filter(pk=study).exists():
                obj.study_id = study
        return super().get_formset_kwargs(request, obj, inline, prefix)

    # Writes go through the services, as the API's and the loader's do.

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        fields = services.segment_fields(form.cleaned_data)
        services.segment_save(segment=obj, fields=fields, user=request.user)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the conditions (the only inline)
            save_clauses(formset, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        services.segment_delete(segment=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset:
            services.segment_delete(segment=segment, user=request.user)

    @admin.display(description=_("name"), ordering="name_ja")
    def name_column(self, obj: Segment) -> str:
        return _pick(obj, "name")  # also for historical versions, which have no properties

    @admin.display(description=_("conditions"))
    def conditions_column(self, obj: Segment) -> str:
        clauses = [clause_text(c) for c in obj.clauses.all()]
        return gettext(" and ").join(clauses) if clauses else gettext("none yet")

    @admin.display(description=_("used by KPIs"), ordering="kpis_using")
    def kpis_column(self, obj: Segment) -> str:
        used = obj.kpis_using  # type: ignore[attr-defined]
        if not used:
            return "0"
        url = reverse("admin:kpi_kpi_changelist") + f"?study__id__exact={obj.study_id}"
        return format_html('<a href="{}">{}</a>', url, used)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        pk = unquote(object_id)
        self.history_in_scope(request, pk)  # before reading the clauses' history by it
        records = (
            Clause.history.filter(segment_id=pk)  # type: ignore[attr-defined]
            .select_related("history_user", "question")
            .prefetch_related("historicalclause_choices_set__choice")
            .order_by("-history_date", "-history_id")
        )
        context = {**(extra_context or {}), "clause_changes": clause_changes(list(records))}
        return super().history_view(request, object_id, context)


def save_clauses(formset: ClauseFormSet, *, user: Any) -> None:
    """The conditions as the inline forms left them, written by the service; then what
    the admin's change message reads (``new_objects`` …), as ``formset.save()`` would."""
    segment = formset.instance
    before = set(segment.clauses.values_list("pk", flat=True))
    clauses, changed, deleted = [], [], []
    for form in formset.forms:
        pk = form.instance.pk
        if formset.can_delete and formset._should_delete_form(form):  # type: ignore[attr-defined]
            if pk is not None:
                deleted.append(form.instance)
            continue
        if pk is None and not form.has_changed():
            continue  # an empty extra form
        data = form.cleaned_data
        clauses.append(
            services.ClauseData(
                question=data.get("question"),
                choices=list(data.get("choices") or []),
                tag=data.get("tag") or "",
                negate=bool(data.get("negate")),
                id=pk,
            )
        )
        if pk is not None and form.has_changed():
            changed.append((form.instance, form.changed_data))
    services.segment_clauses_save(segment=segment, clauses=clauses, user=user)
    formset.new_objects = list(segment.clauses.exclude(pk__in=before))
    formset.changed_objects = changed
    formset.deleted_objects = deleted


def clause_changes(records: list[Any]) -> list[dict[str, Any]]:
    """The conditions' history, newest first, each entry the whole condition as it then
    read. Saving a condition records it twice (the row, then its ticked choices): the
    earlier of two records of one condition by one user within seconds is folded into
    the later."""
    entries: list[dict[str, Any]] = []
    for record in records:
        # The ticked choices as recorded with this version (``record.choices`` would query).
        rows = record.historicalclause_choices_set.all()
        choices = [row.choice.code for row in rows if row.choice is not None]
        what = [*choices, *([f"#{record.tag}"] if record.tag else [])]
        verb = gettext("did not choose") if record.negate else gettext("chose")
        question = record.question.code if record.question is not None else EMPTY
        text = f"{question}: {verb} {', '.join(what)}"
        previous = entries[-1] if entries else None
        if (
            previous is not None
            and previous["clause_id"] == record.id
            and previous["user_id"] == record.history_user_id
            and (previous["when"] - record.history_date).total_seconds() < 5
        ):
            if record.history_type == "+":
                previous["action"] = gettext("added")
            continue
        entries.append(
            {
                "clause_id": record.id,
                "user_id": record.history_user_id,
                "user": record.history_user,
                "when": record.history_date,
                "action": {"+": gettext("added"), "-": gettext("deleted")}.get(
                    record.history_type, gettext("changed")
                ),
                "text": text,
            }
        )
    return entries


# --- KPIs ---------------------------------------------------------------------------------


# Short words for the list's narrow columns (the form shows the full labels).
KIND_SHORT: dict[str, Any] = {
    KPI.Kind.SHARE: _("share"),
    KPI.Kind.RATIO: _("ratio"),
    KPI.Kind.MEAN: _("mean"),
}
BASE_SHORT: dict[str, Any] = {
    KPI.Base.INVITED: _("all invited"),
    KPI.Base.RESPONDENTS: _("all respondents"),
    KPI.Base.SEGMENT: _("a segment"),
}
RULE_SHORT: dict[str, Any] = {Rule.POINT: _("point estimate"), Rule.BOUND: _("interval bound")}


@admin.register(KPI)
class KPIAdmin(LockedByRegistration, HistoryAdmin):
    form = KPIForm
    list_display = (
        "order",
        "code",
        "name_column",
        "kind_column",
        "base_column",
        "target_rule_column",
        "min_n",
        "by_site",
        "active",
    )
    list_display_links = ("code", "name_column")
    list_editable = ("order",)
    list_filter = ("study", "kind", "active")
    list_select_related = ("study", "base_segment")
    search_fields = ("code", "name_ja", "name_en")
    ordering = ("study__code", "order", "code")
    radio_fields = {"kind": admin.VERTICAL, "base": admin.VERTICAL, "rule": admin.VERTICAL}
    history_list_display = ("target_column", "active_column")
    fieldsets = (
        (
            _("What it is"),
            {
                "fields": (
                    "study",
                    "code",
                    ("name_ja", "name_en"),
                    ("base_description_ja", "base_description_en"),
                    ("group", "order"),
                )
            },
        ),
        (
            _("What it counts"),
            {
                "fields": (
                    "kind",
                    "success_question",
                    "success_choices",
                    "numerator",
                    "base",
                    "base_segment",
                    "mean_question",
                ),
                "description": _(
                    "A share is the part of the base that counts as a success: pick the "
                    "question and tick the answers that count. The base is who it is a share "
                    "of, usually all respondents. A ratio divides one group by another among "
                    "the same respondents. A mean averages a scale item's scores over the base."
                ),
            },
        ),
        (
            _("Target and judgement"),
            {"fields": ("comparator", "threshold", "rule", "confidence", "min_n")},
        ),
        (_("Report"), {"fields": ("by_site", "active")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: KPI | None = None) -> Any:
        """Read only (a viewer), the page shows the segment and the figures in words and
        percent, not the form's fields."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        shown = {"confidence": "confidence_column", "threshold": "target_column"}
        hidden = {"success_question", "success_choices", "comparator"}
        return [
            (
                name,
                {
                    **options,
                    "fields": tuple(shown.get(f, f) for f in options["fields"] if f not in hidden),
                },
            )
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: KPI | None = None) -> tuple[str, ...]:
        # Its segments belong to its study: a KPI stays in its study. The figures in words
        # replace their fields when the page is read only (``get_fieldsets``).
        words = ("confidence_column", "target_column")
        return ("study", *words) if obj is not None else words

    def get_form(
        self, request: HttpRequest, obj: KPI | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # The class is made for this request: "Preview" shows the figures, saves nothing.
        form.previewing = request.method == "POST" and "_preview" in request.POST
        return form

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: KPI | None = None,
    ) -> Any:
        form = context["adminform"].form
        if getattr(form, "preview_ready", False):
            context["preview"] = preview_context(request, form)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type:
        kwargs.setdefault("form", KPIListForm)
        return super().get_changelist_form(request, **kwargs)

    def base_queryset(self, request: HttpRequest) -> QuerySet[KPI]:
        return super().base_queryset(request).select_related("study", "base_segment")

    def save_model(self, request: HttpRequest, obj: KPI, form: Any, change: bool) -> None:
        fields = services.kpi_fields(form.cleaned_data)
        success = getattr(form, "success", None)  # not on the list's form (display order)
        if success is not None:
            fields.pop("numerator", None)  # the segment of the ticked answers
        services.kpi_save(kpi=obj, fields=fields, success=success, user=request.user)

    def delete_model(self, request: HttpRequest, obj: KPI) -> None:
        services.kpi_delete(kpi=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[KPI]) -> None:
        for kpi in queryset:
            services.kpi_delete(kpi=kpi, user=request.user)

    @admin.display(description=_("name"), ordering="name_ja")
    def name_column(self, obj: KPI) -> str:
        return obj.name

    @admin.display(description=_("kind"), ordering="kind")
    def kind_column(self, obj: KPI) -> str:
        return str(KIND_SHORT.get(obj.kind, obj.kind))

    @admin.display(description=_("base"), ordering="base")
    def base_column(self, obj: KPI) -> str:
        if obj.base == KPI.Base.SEGMENT and obj.base_segment is not None:
            return gettext("segment: %(segment)s") % {"segment": obj.base_segment.name}
        return str(BASE_SHORT.get(obj.base, obj.base))

    @admin.display(description=_("judged on"), ordering="rule")
    def rule_column(self, obj: KPI) -> str:
        """ "interval bound (95 %)": the confidence level in percent, as everywhere."""
        rule = str(RULE_SHORT.get(obj.rule, obj.rule))
        if obj.rule != Rule.BOUND:
            return rule
        return f"{rule} ({confidence_percent(obj.confidence)}{NBSP}%)"

    @admin.display(description=_("confidence level"))
    def confidence_column(self, obj: KPI) -> str:
        return f"{confidence_percent(obj.confidence)}{NBSP}%"

    @admin.display(description=_("target"))
    def target_column(self, obj: KPI) -> str:
        return _target(obj)

    @admin.display(description=_("target"), ordering="threshold")
    def target_rule_column(self, obj: KPI) -> str:
        """The list's target with what it is judged on under it (one column fewer: the
        list fits 1280 px in English too)."""
        target = _target(obj)
        if obj.threshold is None:
            return target
        return format_html(
            '{}<span class="hyoka-second-line">{}</span>', target, self.rule_column(obj)
        )

    @admin.display(description=_("active"))
    def active_column(self, obj: KPI) -> str:
        return gettext("yes") if obj.active else gettext("no")


def preview_context(request: HttpRequest, form: KPIForm) -> dict[str, Any]:
    """The figures of the KPI as the form holds it, scored now over the caller's sites of
    its study by the engine of the runs (``kpi.scoring.preview``), worded as a run's."""
    kpi = form.instance
    numerator = (
        SegmentDef(code="", clauses=form.success.clauses) if form.success is not None else None
    )
    definition = kpi_def(kpi, numerator=numerator) if numerator else kpi_def(kpi)
    return definition_preview(request, definition, kpi.study)
