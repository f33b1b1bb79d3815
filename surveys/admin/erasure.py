"""Erasure records and retention purges: read-only, in the caller's scope. Both are
written only by ``surveys/erasure.py`` (erasure records are append-only in the database)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import ErasureRecord, RetentionPurge
from .common import ScopedAdminMixin, by_site, by_study, register_scope

register_scope(ErasureRecord, by_site("participant__site_id"))
register_scope(RetentionPurge, by_study("study_id"))


class ReadOnlyAdmin(ScopedAdminMixin, admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
    list_display = ("erased_at", "participant", "site_column", "erased_by", "reason", "purge")
    list_filter = ("participant__site__study",)
    search_fields = ("participant__reference", "reason")
    date_hierarchy = "erased_at"
    fields = ("participant", "erased_at", "erased_by", "reason", "purge")

    def base_queryset(self, request: HttpRequest) -> QuerySet[ErasureRecord]:
        return super().base_queryset(request).select_related("participant__site", "erased_by")

    @admin.display(description=_("site"), ordering="participant__site__code")
    def site_column(self, obj: ErasureRecord) -> str:
        return obj.participant.site.name


@admin.register(RetentionPurge)
class RetentionPurgeAdmin(ReadOnlyAdmin):
    list_display = ("purged_at", "study", "expired_on", "participants")
    list_filter = ("study",)
    date_hierarchy = "purged_at"
    fields = ("study", "purged_at", "expired_on", "participants")
    list_select_related = ("study",)
