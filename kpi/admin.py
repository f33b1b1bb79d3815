"""The programme managers' admin for KPIs: segments and their conditions, KPI targets
(with their change history), scoring runs and their results, and "Score now".

Runs and results are evidence: nobody adds, changes or deletes them here. Scoring goes
through ``services.run_request``; the figures come from ``selectors`` and are worded by
``wording``, as in the printed report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from surveys import scoping
from surveys.admin.common import MANAGER, ScopedAdminMixin, by_study, register_scope, scope_of
from surveys.admin.history import HistoryAdmin
from surveys.ids import as_id
from surveys.models import Choice, Study, _pick

from . import definition_services, selectors, services, wording
from .forms import ClauseForm, ClauseFormSet, KPIForm, KPIListForm
from .models import KPI, Clause, Evaluation, EvaluationRun, KPIResult, Segment, StudyResults
from .statistics import Rule, Verdict

EMPTY = "\u2014"  # an em dash for "nothing here"
SCORE_PERMISSION = "kpi.score_study"

# Everything of the KPI app is study-wide: members of any site of the study see it. Per-site
# results are the exception, shown only for the caller's sites (``selectors.visible_results``).
register_scope(Segment, by_study("study_id"))
register_scope(Clause, by_study("segment__study_id"))
register_scope(KPI, by_study("study_id"))
register_scope(EvaluationRun, by_study("study_id"))
register_scope(Evaluation, by_study("study_id"))


def _when(value: Any) -> str:
    if value is None:
        return EMPTY
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def _when_after(earlier: Any, value: Any) -> str:
    """The time alone when it falls on the same day as ``earlier`` (narrow list columns)."""
    if value is None or earlier is None:
        return _when(value)
    local = timezone.localtime(value)
    if local.date() == timezone.localtime(earlier).date():
        return date_format(local, "H:i:s")
    return _when(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return EMPTY
    if value < 60:
        places = 2 if value < 1 else 1
        return gettext("%(seconds)s s") % {"seconds": number_format(value, places)}
    minutes, seconds = divmod(round(value), 60)
    return gettext("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": seconds}


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
class SegmentAdmin(HistoryAdmin):
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
        fields = definition_services.segment_fields(form.cleaned_data)
        definition_services.segment_save(segment=obj, fields=fields, user=request.user)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the conditions (the only inline)
            save_clauses(formset, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        definition_services.segment_delete(segment=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset:
            definition_services.segment_delete(segment=segment, user=request.user)

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
            definition_services.ClauseData(
                question=data.get("question"),
                choices=list(data.get("choices") or []),
                tag=data.get("tag") or "",
                negate=bool(data.get("negate")),
                id=pk,
            )
        )
        if pk is not None and form.has_changed():
            changed.append((form.instance, form.changed_data))
    definition_services.segment_clauses_save(segment=segment, clauses=clauses, user=user)
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
class KPIAdmin(HistoryAdmin):
    form = KPIForm
    list_display = (
        "order",
        "code",
        "name_column",
        "kind_column",
        "base_column",
        "target_column",
        "rule_column",
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
                "fields": ("kind", "numerator", "base", "base_segment", "mean_question"),
                "description": _(
                    "A share counts the respondents in the success segment among the base. "
                    "A ratio divides the success segment by the base segment, among the same "
                    "respondents. A mean averages a scale item's scores over the base."
                ),
            },
        ),
        (
            _("Target and judgement"),
            {"fields": ("comparator", "threshold", "rule", "confidence", "min_n")},
        ),
        (_("Report"), {"fields": ("by_site", "active")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: KPI | None = None) -> tuple[str, ...]:
        # Its segments belong to its study: a KPI stays in its study.
        return ("study",) if obj is not None else ()

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type:
        kwargs.setdefault("form", KPIListForm)
        return super().get_changelist_form(request, **kwargs)

    def base_queryset(self, request: HttpRequest) -> QuerySet[KPI]:
        return super().base_queryset(request).select_related("study", "base_segment")

    def save_model(self, request: HttpRequest, obj: KPI, form: Any, change: bool) -> None:
        fields = definition_services.kpi_fields(form.cleaned_data)
        definition_services.kpi_save(kpi=obj, fields=fields, user=request.user)

    def delete_model(self, request: HttpRequest, obj: KPI) -> None:
        definition_services.kpi_delete(kpi=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[KPI]) -> None:
        for kpi in queryset:
            definition_services.kpi_delete(kpi=kpi, user=request.user)

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
        return str(RULE_SHORT.get(obj.rule, obj.rule))

    @admin.display(description=_("target"))
    def target_column(self, obj: KPI) -> str:
        return _target(obj)

    @admin.display(description=_("active"))
    def active_column(self, obj: KPI) -> str:
        return gettext("yes") if obj.active else gettext("no")


# --- Runs and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    """One line of a run's results table, worded as the report words it."""

    result: KPIResult
    counts: str
    value: str
    interval: str
    interval_label: str
    target: str
    verdict: str
    verdict_class: str
    verdict_note: str
    nonresponse: str
    tipping: str

    @classmethod
    def of(cls, row: KPIResult) -> ResultRow:
        r = wording.Result.of(row)
        counts = wording.counts(r)
        if r.overlap is not None:
            counts += " " + gettext("(both: %(n)d)") % {"n": r.overlap}
        interval = wording.interval(r) if r.value is not None else ""
        note = ""
        if r.verdict == Verdict.INCONCLUSIVE and r.denominator < r.min_n:
            note = gettext("base under the minimum of %(min_n)d") % {"min_n": r.min_n}
        elif r.verdict and r.rule == Rule.BOUND:
            note = gettext("judged on the interval's bound")
        return cls(
            result=row,
            counts=counts,
            value=wording.headline(r),
            interval="" if interval == wording.DASH else interval,
            interval_label=gettext("%(level)s %% interval") % {"level": wording.level_number(r)},
            target=wording.target(r),
            verdict=wording.verdict_text(r),
            verdict_class=wording.verdict_key(r).replace("_", "-"),
            verdict_note=note,
            nonresponse=wording.nonresponse(r),
            tipping=wording.tipping(r),
        )


@dataclass(frozen=True)
class SectionView:
    """A scope of the results table: the whole study, or one site."""

    title: str
    code: str
    section: selectors.ResultSection
    rows: list[ResultRow]


def section_views(sections: list[selectors.ResultSection]) -> list[SectionView]:
    return [
        SectionView(
            title=s.site.name if s.site else gettext("Whole study"),
            code=s.site.code if s.site else "",
            section=s,
            rows=[ResultRow.of(r) for r in s.results],
        )
        for s in sections
    ]


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Read-only: a run is made by "Score now" (or automatically), never by hand. The runs
    of the caller's studies; the results of the whole study and of the caller's sites."""

    list_display = (
        "run_column",
        "study_column",
        "status_column",
        "trigger",
        "requested_by",
        "created_column",
        "started_column",
        "cutoff_column",
        "duration_column",
        "responses_counted",
    )
    list_display_links = ("run_column",)
    list_filter = ("study", "status", "trigger")
    list_select_related = ("study", "requested_by")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def base_queryset(self, request: HttpRequest) -> QuerySet[EvaluationRun]:
        return super().base_queryset(request).select_related("study", "requested_by")

    def get_fieldsets(self, request: HttpRequest, obj: EvaluationRun | None = None) -> list:
        fieldsets: list = [
            (
                None,
                {
                    "fields": (
                        ("study", "status_column"),
                        ("trigger", "requested_by"),
                        ("created_at", "started_at"),
                        ("finished_at", "duration_column"),
                        ("cutoff", "responses_counted"),
                        "attempts",
                    )
                },
            ),
        ]
        if obj is not None and obj.status == EvaluationRun.Status.FAILED:
            fieldsets.append((_("What went wrong"), {"fields": ("error",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (
            "study",
            "status_column",
            "trigger",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "duration_column",
            "cutoff",
            "attempts",
            "responses_counted",
            "error",
        )

    @admin.display(description=_("run"), ordering="pk")
    def run_column(self, obj: EvaluationRun) -> str:
        return f"#{obj.pk}"

    @admin.display(description=_("study"), ordering="study__code")
    def study_column(self, obj: EvaluationRun) -> str:
        return format_html(
            '<span class="hyoka-nowrap" title="{}">{}</span>', obj.study.name, obj.study.code
        )

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, obj: EvaluationRun) -> str:
        return format_html(
            '<span class="hyoka-status hyoka-status--{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("created"), ordering="created_at")
    def created_column(self, obj: EvaluationRun) -> str:
        return _when(obj.created_at)

    @admin.display(description=_("started"), ordering="started_at")
    def started_column(self, obj: EvaluationRun) -> str:
        return _when_after(obj.created_at, obj.started_at)

    @admin.display(description=_("data cut-off"), ordering="cutoff")
    def cutoff_column(self, obj: EvaluationRun) -> str:
        return _when_after(obj.created_at, obj.cutoff)

    @admin.display(description=_("duration"))
    def duration_column(self, obj: EvaluationRun) -> str:
        return _seconds(obj.duration)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        run = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if run is not None and self.has_view_permission(request, run):
            extra_context.update(
                run=run,
                sections=section_views(
                    selectors.run_result_sections(
                        run, results=selectors.visible_results(request.user, run.results.all())
                    )
                ),
                refresh=not run.is_finished,
                now=timezone.now(),
                results_by_study_url=reverse("admin:kpi_studyresults_change", args=[run.study_id]),
            )
        return super().change_view(request, object_id, form_url, extra_context)


# --- Results by study and "Score now" -----------------------------------------------------


@admin.register(StudyResults)
class StudyResultsAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """The caller's studies with their latest scoring (whole-study verdicts). "Score now"
    takes the permission and the manager role in the study."""

    list_display = (
        "name_column",
        "latest_run_column",
        "cutoff_column",
        "responses_column",
        "verdicts_column",
        "newest_run_column",
    )
    list_display_links = ("name_column",)
    search_fields = ("code", "name_ja", "name_en")
    ordering = ("-period_start", "code")
    actions = ("score_now",)
    fields = ("code", "name_ja", "name_en", "status", "period_start", "period_end")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_score_permission(self, request: HttpRequest, obj: Study | None = None) -> bool:
        """The permission, and the manager role in the study (with no study, in some)."""
        return request.user.has_perm(SCORE_PERMISSION) and self.has_role(request, obj, MANAGER)

    def base_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        return selectors.studies_with_latest_run(super().base_queryset(request))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {"title": gettext("Results by study"), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("study"), ordering="name_ja")
    def name_column(self, obj: Study) -> str:
        return format_html(
            '{}<br><span class="hyoka-quiet">{} · {}</span>',
            obj.name,
            obj.code,
            obj.get_status_display(),
        )

    @admin.display(description=_("latest scoring"), ordering="latest_run_finished")
    def latest_run_column(self, obj: Study) -> str:
        run_id = obj.latest_run_id  # type: ignore[attr-defined]
        if run_id is None:
            return gettext("not scored yet")
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:kpi_evaluationrun_change", args=[run_id]),
            _when(obj.latest_run_finished),  # type: ignore[attr-defined]
        )

    @admin.display(description=_("data cut-off"), ordering="latest_run_cutoff")
    def cutoff_column(self, obj: Study) -> str:
        return _when(obj.latest_run_cutoff)  # type: ignore[attr-defined]

    @admin.display(description=_("responses counted"), ordering="latest_run_responses")
    def responses_column(self, obj: Study) -> Any:
        value = obj.latest_run_responses  # type: ignore[attr-defined]
        return EMPTY if value is None else value

    @admin.display(description=_("KPIs for the whole study"), ordering="-kpis_not_met")
    def verdicts_column(self, obj: Study) -> str:
        if obj.latest_run_id is None:  # type: ignore[attr-defined]
            return EMPTY
        return format_html(
            '<span class="hyoka-count hyoka-count--met">{}</span> · '
            '<span class="hyoka-count hyoka-count--not_met">{}</span> · '
            '<span class="hyoka-count hyoka-count--inconclusive">{}</span>',
            gettext("%(n)d met") % {"n": obj.kpis_met},  # type: ignore[attr-defined]
            gettext("%(n)d not met") % {"n": obj.kpis_not_met},  # type: ignore[attr-defined]
            gettext("%(n)d inconclusive") % {"n": obj.kpis_inconclusive},  # type: ignore[attr-defined]
        )

    @admin.display(description=_("scoring under way or failed"))
    def newest_run_column(self, obj: Study) -> str:
        """The newest run, when it is not the latest succeeded one (still queued or
        running, or failed): what a manager waits for or must look at."""
        run_id = obj.newest_run_id  # type: ignore[attr-defined]
        if run_id is None or run_id == obj.latest_run_id:  # type: ignore[attr-defined]
            return EMPTY
        status = obj.newest_run_status  # type: ignore[attr-defined]
        return format_html(
            '<a href="{}"><span class="hyoka-status hyoka-status--{}">#{} {}</span></a>',
            reverse("admin:kpi_evaluationrun_change", args=[run_id]),
            status,
            run_id,
            EvaluationRun.Status(status).label,
        )

    # "Score now": an action on the list, a button on the study's page.

    def _score(self, request: HttpRequest, studies: list[Study]) -> HttpResponseRedirect:
        runs = [
            services.run_request(
                study=study, trigger=EvaluationRun.Trigger.MANUAL, user=request.user
            )
            for study in studies
        ]
        for study, run in zip(studies, runs, strict=True):
            self.message_user(
                request,
                gettext("Scoring of “%(study)s” requested: run #%(run)s.")
                % {"study": study.name, "run": run.pk},
                messages.SUCCESS,
            )
        if len(runs) == 1:
            return HttpResponseRedirect(
                reverse("admin:kpi_evaluationrun_change", args=[runs[0].pk])
            )
        ids = ",".join(str(study.pk) for study in studies)
        return HttpResponseRedirect(
            reverse("admin:kpi_evaluationrun_changelist") + f"?study__id__in={ids}"
        )

    @admin.action(description=_("Score now"), permissions=["score"])
    def score_now(self, request: HttpRequest, queryset: QuerySet[Study]) -> HttpResponseRedirect:
        return self._score(request, list(queryset.order_by("code")))

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/score/",
                self.admin_site.admin_view(self.score_view),
                name="kpi_studyresults_score",
            ),
            *super().get_urls(),
        ]

    def score_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(SCORE_PERMISSION):
            raise PermissionDenied  # the same answer for every study: it tells nothing
        study = self.get_object(request, unquote(object_id))  # 404 outside the scope
        if not self.has_score_permission(request, study):
            raise PermissionDenied
        return self._score(request, [study])

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        study = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if study is not None and self.has_view_permission(request, study):
            extra_context.update(
                can_score=self.has_score_permission(request, study),
                recent_runs=selectors.recent_runs(study),
                runs_url=reverse("admin:kpi_evaluationrun_changelist")
                + f"?study__id__exact={study.pk}",
                kpis_url=reverse("admin:kpi_kpi_changelist") + f"?study__id__exact={study.pk}",
            )
        return super().change_view(request, object_id, form_url, extra_context)


from . import admin_evaluations  # noqa: E402,F401  (registers the evaluation admin)
