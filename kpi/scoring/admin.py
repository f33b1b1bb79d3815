"""The programme managers' admin for scoring: runs and their results, results by study
and "Score now".

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
    Http404,
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

from kpi.definitions.frozen import KPIDef
from surveys.admin.common import MANAGER, ScopedAdminMixin, by_study, register_scope
from surveys.models import Study

from . import crosstab_views, disclosure, selectors, services, wording
from .disclosure import SECONDARY_MARK
from .models import EvaluationRun, KPIResult, StudyResults
from .preview import kpi_preview
from .statistics import Rule, Verdict

EMPTY = "\u2014"  # an em dash for "nothing here"
SCORE_PERMISSION = "kpi.score_study"

# Everything of the KPI app is study-wide: members of any site of the study see it. Per-site
# results are the exception, shown only for the caller's sites (``selectors.visible_results``).
register_scope(EvaluationRun, by_study("study_id"))


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

    withheld: bool = False

    @classmethod
    def of(cls, row: KPIResult, cells: disclosure.ResultCells | None = None) -> ResultRow:
        r = wording.Result.of(row)
        if cells is not None and not cells.figures:
            return cls.withheld_row(row, r, cells)
        counts = wording.counts_with_overlap(r)
        interval = wording.interval(r) if r.value is not None else ""
        note = ""
        if r.verdict == Verdict.INCONCLUSIVE and r.denominator < r.min_n:
            note = gettext("base under the minimum of %(min_n)d") % {"min_n": r.min_n}
        elif r.verdict and r.rule == Rule.BOUND:
            note = gettext("judged on the interval's bound")
        # A withheld number invited takes the non-response figures with it (each gives it
        # back); the value, interval and verdict do not depend on it.
        invited_shown = cells is None or cells.invited
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
            nonresponse=wording.nonresponse(r) if invited_shown else "",
            tipping=wording.tipping(r) if invited_shown else "",
        )

    @classmethod
    def withheld_row(
        cls, row: KPIResult, r: wording.Result, cells: disclosure.ResultCells
    ) -> ResultRow:
        """A site's result with a withheld count: the counts marked, no value, interval,
        verdict or non-response range (each gives the count back)."""
        counts = disclosure.counts_text(r.kind, r.numerator, r.denominator, cells)
        if r.overlap is not None:
            both = str(r.overlap) if cells.overlap else SECONDARY_MARK
            counts += " " + gettext("(both: %(n)s)") % {"n": both}
        return cls(
            result=row,
            counts=counts,
            value="",
            interval="",
            interval_label="",
            target=wording.target(r),
            verdict=disclosure.withheld_text(cells),
            verdict_class="inconclusive",
            verdict_note="",
            nonresponse="",
            tipping="",
            withheld=True,
        )


@dataclass(frozen=True)
class SectionView:
    """A scope of the results table: the whole study, or one site."""

    title: str
    code: str
    section: selectors.ResultSection
    rows: list[ResultRow]

    def _count(self, verdict: str) -> int:
        """The verdicts as the rows show them: a withheld result with a target counts as
        inconclusive (its own verdict would say what the row withholds)."""
        return sum(
            1
            for row in self.rows
            if (
                (Verdict.INCONCLUSIVE if row.result.verdict else "")
                if row.withheld
                else row.result.verdict
            )
            == verdict
        )

    @property
    def met(self) -> int:
        return self._count(Verdict.MET)

    @property
    def not_met(self) -> int:
        return self._count(Verdict.NOT_MET)

    @property
    def inconclusive(self) -> int:
        return self._count(Verdict.INCONCLUSIVE)

    @property
    def without_target(self) -> int:
        return self._count("")


def section_views(
    sections: list[selectors.ResultSection],
    protection: disclosure.KPIProtection | None = None,
) -> list[SectionView]:
    """The sections' rows; a site's with its withheld counts marked (``protection``, made
    from every result of the run); the whole study's always exact."""
    return [
        SectionView(
            title=s.site.name if s.site else gettext("Whole study"),
            code=s.site.code if s.site else "",
            section=s,
            rows=[
                ResultRow.of(r, protection.cells(r) if protection and s.site else None)
                for r in s.results
            ],
        )
        for s in sections
    ]


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Read-only: a run is made by "Score now" (or automatically), never by hand. The runs
    of the caller's studies; the results of the whole study and of the caller's sites."""

    # Fits 1280 px in either language: who asked under how it was asked; when it started
    # is on the run's page (the created time and the duration say the rest).
    list_display = (
        "run_column",
        "study_column",
        "status_column",
        "trigger_column",
        "created_column",
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

    @admin.display(description=_("trigger"), ordering="trigger")
    def trigger_column(self, obj: EvaluationRun) -> str:
        if obj.requested_by is None:
            return obj.get_trigger_display()
        return format_html(
            '{}<span class="hyoka-second-line">{}</span>',
            obj.get_trigger_display(),
            str(obj.requested_by),
        )

    @admin.display(description=_("created"), ordering="created_at")
    def created_column(self, obj: EvaluationRun) -> str:
        return _when(obj.created_at)

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
            protection = selectors.run_protection(run)
            sections = section_views(
                selectors.run_result_sections(
                    run, results=selectors.visible_results(request.user, run.results.all())
                ),
                protection,
            )
            extra_context.update(
                run=run,
                sections=sections,
                small_cells_legend=(
                    disclosure.legend_text(
                        protection.k, blanked=bool(protection.protection.blanked)
                    )
                    if any(row.withheld for view in sections for row in view.rows)
                    else ""
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
            path(
                "<path:object_id>/crosstab/",
                self.admin_site.admin_view(self.crosstab_view),
                name="kpi_studyresults_crosstab",
            ),
            *super().get_urls(),
        ]

    def crosstab_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Frequencies and cross-tabs of the study's closed questions, over the caller's
        sites (``crosstab_views``)."""
        study = self.get_object(request, unquote(object_id))
        if study is None:
            raise Http404  # outside the caller's scope, or no such study
        if not self.has_view_permission(request, study):
            raise PermissionDenied
        return crosstab_views.crosstab_page(self, request, study)

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
                crosstab_url=reverse("admin:kpi_studyresults_crosstab", args=[study.pk]),
                **registration_links(request, study),
            )
        return super().change_view(request, object_id, form_url, extra_context)


def registration_links(request: HttpRequest, study: Study) -> dict[str, str]:
    """The study's registration, or the page that registers it for a signer."""
    from kpi.registration.selectors import registration_for
    from kpi.registration.services import may_register

    registration = registration_for(study)
    if registration is not None:
        return {
            "registration_url": reverse("admin:kpi_registration_change", args=[registration.pk])
        }
    if may_register(request.user, study):
        return {"register_url": reverse("admin:kpi_registration_add") + f"?study={study.pk}"}
    return {}


def definition_preview(request: HttpRequest, definition: KPIDef, study: Study) -> dict[str, Any]:
    """``definition`` scored now over the caller's sites of ``study``, as the preview
    table (``admin/kpi/kpi/_preview_table.html``) shows it: the KPI form's Preview and the
    deviation page's registered and deviated figures."""
    preview = kpi_preview(definition=definition, study=study, user=request.user)
    if preview is None:
        return {"empty": True}
    # Small cells as on the run page: the sites' rows protected, the total exact. Over the
    # caller's own sites only, nothing is withheld: they read those answers in full (the
    # record-level export), and the total would be their one site's row.
    rows = [result for _site, result in preview.by_site]
    k = study.small_cell_threshold if preview.whole_study else 1
    protection = disclosure.protect_results([preview.overall, *rows], k)
    by_site = [
        (site, ResultRow.of(result, protection.cells(result))) for site, result in preview.by_site
    ]
    withheld = any(row.withheld for _site, row in by_site)
    return {
        "overall": ResultRow.of(preview.overall),
        "by_site": by_site,
        "small_cells_legend": (
            disclosure.legend_text(protection.k, blanked=bool(protection.protection.blanked))
            if withheld
            else ""
        ),
        "whole_study": preview.whole_study,
        "sites_counted": preview.sites_counted,
        "sites_in_study": preview.sites_in_study,
        "when": timezone.localtime(),
    }
