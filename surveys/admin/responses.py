"""Responses, read-only: the answers as evidence, and their history (the response's and
its answers')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..history import reason_label
from ..models import Answer, Response
from .common import ResponseSiteFilter
from .history import HistoryAdmin, actor
from .pagination import EstimatedCountPaginator


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


@dataclass(frozen=True)
class AnswerChange:
    when: Any
    who: str
    how: str
    action: str
    question: str
    value: str


def answer_changes(response_id: Any) -> list[AnswerChange]:
    """Every answer ever added to or removed from the response, newest first (one
    query; questions and choices joined even if deleted since: then their ids)."""
    records = (
        Answer.history.filter(response_id=response_id)  # type: ignore[attr-defined]
        .select_related("question", "choice", "history_user")
        .order_by("-history_date", "-history_id")
    )
    changes = []
    for record in records:
        if record.choice_id is not None:
            choice = record.choice
            value = f"{choice.code} ({choice.label})" if choice else f"#{record.choice_id}"
        elif record.text_value is not None:
            value = record.text_value
        else:
            value = number_format(record.number_value.normalize())
        question = record.question.code if record.question else f"#{record.question_id}"
        action = {"+": gettext("answered"), "-": gettext("answer removed")}.get(
            record.history_type, gettext("changed")
        )
        changes.append(
            AnswerChange(
                when=record.history_date,
                who=actor(record),
                how=reason_label(record.history_change_reason),
                action=action,
                question=question,
                value=value,
            )
        )
    return changes


@admin.register(Response)
class ResponseAdmin(HistoryAdmin):
    """Responses are evidence: managers read their sites' responses, nobody edits or
    deletes them here."""

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
    # A million responses: no exact count of every row on each page (pagination.py).
    paginator = EstimatedCountPaginator
    show_full_result_count = False
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
    object_history_template = "admin/surveys/response/object_history.html"
    allow_revert = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Response | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Response | None = None) -> bool:
        return False

    def base_queryset(self, request: HttpRequest) -> QuerySet[Response]:
        return (
            super().base_queryset(request).select_related("participant__site__study", "instrument")
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

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self.history_in_scope(request, unquote(object_id))
        context = {**(extra_context or {}), "answer_changes": answer_changes(unquote(object_id))}
        return super().history_view(request, object_id, context)
