"""The fieldwork watch in the admin: per study, the caller's sites day by day, the
cumulative response rate as a chart, what another reminder could still change about the
latest scoring's verdicts, and the delivery log as CSV.

Built like the KPI app's "results by study" (``kpi/scoring/admin.py``): a proxy of the
study with its own page. A member of any site of the study (a viewer too) opens it and
sees their own sites only; the total is "your sites" unless they see every site (a
study-wide figure beside one's own would give away the other sites'). A user without the
permission gets 403 for every study; a study outside their scope is a 404.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from kpi.definitions.models import KPI
from kpi.scoring import selectors as scoring
from kpi.scoring import wording
from kpi.scoring.admin import StudyResultsAdmin
from kpi.scoring.models import StudyResults
from surveys import csvfiles, scoping
from surveys.admin.common import ScopedAdminMixin
from surveys.admin.studies import StudyAdmin
from surveys.models import Site, Study

from . import chart, watch
from .models import StudyFieldwork

DELIVERY_LOG_COLUMNS = [
    "participant",
    "site",
    "channel",
    "kind",
    "status",
    "attempts",
    "last_error",
    "queued_at",
    "due_at",
    "sent_at",
    "finished_at",
]


@dataclass(frozen=True)
class OutlookLine:
    """One KPI of the latest scoring that non-response could flip, in words."""

    scope: str
    name: str
    value: str
    target: str
    verdict: str
    verdict_class: str
    settle: str
    settled: bool


def outlook_lines(user: Any, study: Study) -> list[OutlookLine]:
    lines = []
    for outlook in scoring.fieldwork_outlook(user, study):
        row = outlook.result
        r = wording.Result.of(row)
        if outlook.to_settle == 0:
            settle = gettext("Settled: non-response can no longer change this verdict.")
        else:
            settle = ngettext(
                "%(n)s more response would settle it: after that, whatever the others "
                "would have answered, the verdict stays.",
                "%(n)s more responses would settle it: after that, whatever the others "
                "would have answered, the verdict stays.",
                outlook.to_settle,
            ) % {"n": wording.integer(outlook.to_settle)}
        lines.append(
            OutlookLine(
                scope=row.site.name if row.site else gettext("Whole study"),
                name=row.name,
                value=wording.headline(r),
                target=wording.target(r),
                verdict=wording.verdict_text(r),
                verdict_class=wording.verdict_key(r).replace("_", "-"),
                settle=settle,
                settled=outlook.to_settle == 0,
            )
        )
    return lines


def chart_note(days: list[dt.date], earlier: int) -> str:
    """What the chart's first day carries in from before its span, in words ("" if none)."""
    if not days or not earlier:
        return ""
    return ngettext(
        "The line starts from %(n)s response submitted before %(day)s.",
        "The line starts from %(n)s responses submitted before %(day)s.",
        earlier,
    ) % {"n": wording.integer(earlier), "day": date_format(days[0], "SHORT_DATE_FORMAT")}


def response_rate_target(study: Study) -> tuple[Any, str] | None:
    """The study's response-rate KPI's target (a percentage) and its words, if it has one:
    a share over everyone invited, counting who responded."""
    kpi = (
        KPI.objects.filter(
            study=study, kind=KPI.Kind.SHARE, base=KPI.Base.INVITED, numerator__isnull=True
        )
        .exclude(comparator="")
        .exclude(threshold__isnull=True)
        .order_by("order", "pk")
        .first()
    )
    if kpi is None:
        return None
    words = wording.target_words(kind=kpi.kind, comparator=kpi.comparator, threshold=kpi.threshold)
    return kpi.threshold, gettext("response-rate target: %(target)s") % {"target": words}


@admin.register(StudyFieldwork)
class StudyFieldworkAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """The caller's studies; each one's page is the watch. Read-only."""

    list_display = ("name_column", "period_column", "status")
    list_display_links = ("name_column",)
    search_fields = ("code", "name_ja", "name_en")
    ordering = ("-period_start", "code")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("study"), ordering="name_ja")
    def name_column(self, obj: Study) -> str:
        return format_html('{}<br><span class="hyoka-quiet">{}</span>', obj.name, obj.code)

    @admin.display(description=_("period"), ordering="period_start")
    def period_column(self, obj: Study) -> str:
        return (
            f"{date_format(obj.period_start, 'SHORT_DATE_FORMAT')} \u2013 "
            f"{date_format(obj.period_end, 'SHORT_DATE_FORMAT')}"
        )

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/deliveries.csv",
                self.admin_site.admin_view(self.delivery_log_view),
                name="fieldwork_studyfieldwork_deliveries",
            ),
            *super().get_urls(),
        ]

    def _study(self, request: HttpRequest, object_id: str) -> Study:
        """403 without the permission (the same answer for every study: it tells
        nothing), 404 for a study outside the caller's scope."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        study = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, study):
            raise PermissionDenied
        return study

    def _sites(self, request: HttpRequest, study: Study) -> QuerySet[Site]:
        return scoping.sites(request.user, Site.objects.filter(study=study))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        study = self._study(request, object_id)
        user = request.user
        figures = watch.study_watch(study, self._sites(request, study))
        today = timezone.localdate(timezone=watch.japan_time())
        # Still under way: within the study's period, or a campaign is still writing.
        ongoing = study.period_end >= today or study.campaigns.filter(active=True).exists()
        days = figures.chart_days(today=today, ongoing=ongoing)
        earlier = figures.submitted_before(days[0]) if days else 0
        target = response_rate_target(study)
        total_label = gettext("Whole study") if figures.whole_study else gettext("Your sites")
        rate_chart = chart.rate_chart(
            days=days,
            series=[(s.site.name, s.site.code, s.cumulative_rate(days)) for s in figures.sites],
            # With one site, its line is the total: drawn once.
            total=(total_label, figures.cumulative_rate(days)) if len(figures.sites) > 1 else None,
            target=target[0] if target else None,
            target_label=target[1] if target else "",
            title=gettext("Cumulative response rate of “%(study)s”") % {"study": study.name},
            note=chart_note(days, earlier),
        )
        may_read_kpis = user.has_perm("kpi.view_evaluationrun")
        run = scoring.latest_succeeded_run(study) if may_read_kpis else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": study,
            "study": study,
            "title": gettext("Fieldwork: %(study)s") % {"study": study.name},
            "watch": figures,
            "figure_names": [
                pgettext("fieldwork count per day", "invited"),
                pgettext("fieldwork count per day", "delivered"),
                pgettext("fieldwork count per day", "failed"),
                pgettext("fieldwork count per day", "links opened"),
                pgettext("fieldwork count per day", "drafts started"),
                pgettext("fieldwork count per day", "submitted"),
            ],
            "total_label": total_label,
            "chart": rate_chart,
            "chart_note": chart_note(days, earlier),
            "may_read_kpis": may_read_kpis,
            "run": run,
            "outlook": outlook_lines(user, study) if run is not None else [],
            "results_url": (
                reverse("admin:kpi_studyresults_change", args=[study.pk])
                if user.has_perm("kpi.view_studyresults")
                else ""
            ),
            "csv_url": reverse("admin:fieldwork_studyfieldwork_deliveries", args=[study.pk])
            if user.has_perm("fieldwork.view_delivery")
            else "",
            "as_of": timezone.now(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/fieldwork/studyfieldwork/watch.html", context)

    def delivery_log_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        """The delivery log of the caller's sites as CSV: references, never contact
        details; every text cell made safe for spreadsheets (``surveys/csvfiles.py``)."""
        if not request.user.has_perm("fieldwork.view_delivery"):
            raise PermissionDenied
        study = self._study(request, object_id)
        rows = watch.delivery_log(study, self._sites(request, study))

        def when(value: dt.datetime | None) -> str | None:
            return None if value is None else timezone.localtime(value).isoformat()

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csvfiles.Writer(buffer)
            writer.writerow(DELIVERY_LOG_COLUMNS)
            yield "\ufeff" + buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)  # a BOM: Excel in Japan reads UTF-8 with it
            for n, (ref, site, channel, kind, status, attempts, error, *times) in enumerate(
                rows.iterator(chunk_size=2000), start=1
            ):
                if n % 500 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate(0)
                writer.writerow(
                    [ref, site, channel, kind, status, attempts, error, *map(when, times)]
                )
            yield buffer.getvalue()

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        filename = f"deliveries-{study.code}-{timezone.localdate():%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


# --- Links to the watch from the study's pages --------------------------------------------


def watch_url(request: HttpRequest, study: Study | None) -> str:
    if study is None or not request.user.has_perm("fieldwork.view_studyfieldwork"):
        return ""
    return reverse("admin:fieldwork_studyfieldwork_change", args=[study.pk])


class FieldworkStudyAdmin(StudyAdmin):
    """The survey admin's studies with a link to their fieldwork (``surveys`` does not know
    fieldwork: the model admin is registered again here, extended)."""

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        study = self.get_object(request, unquote(object_id))
        extra = {"fieldwork_url": watch_url(request, study), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)


class FieldworkStudyResultsAdmin(StudyResultsAdmin):
    """The KPI app's results by study with a link to the study's fieldwork."""

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        study = self.get_object(request, unquote(object_id))
        extra = {"fieldwork_url": watch_url(request, study), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)


for _model, _admin_class in (
    (Study, FieldworkStudyAdmin),
    (StudyResults, FieldworkStudyResultsAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
