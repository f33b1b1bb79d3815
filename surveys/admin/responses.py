"""Responses, read-only: the answers as evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from ..models import Answer, Response
from .common import ResponseSiteFilter, ScopedAdminMixin


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
class ResponseAdmin(ScopedAdminMixin, admin.ModelAdmin):
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
