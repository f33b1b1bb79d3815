"""History pages: each object's audit trail, read-only, in the caller's scope.

Built on django-simple-history's history view: one line per recorded version with when,
who, how (the record's reason) and which fields changed from what to what. Nobody edits
or deletes a historical row here (no admin is registered for the historical models, and
the database refuses it anyway: ``surveys/appendonly.py``). Reverting to an earlier
version, where an admin allows it, saves the object again: a new record, the old ones
untouched.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import ModelChange
from simple_history.template_utils import HistoricalRecordContextHelper

from ..history import by_participant, reason_label
from .common import EMPTY, ScopedAdminMixin


def plain_decimal(value: Decimal) -> str:
    """``70.0000`` as ``70`` (never ``7E+1``)."""
    return f"{value.normalize():f}"


def actor(record: Any) -> str:
    """Who made a recorded change: an account, the participant, or the system."""
    user = getattr(record, "history_user", None)
    if user is not None:
        return str(user.get_username())
    if by_participant(record.history_change_reason):
        return gettext("the participant")
    return gettext("the system")


class ReadableHistory(HistoricalRecordContextHelper):
    """Old and new values as a manager reads them: labels of choices, 70 not 70.0000,
    yes/no, a dash for empty."""

    def prepare_delta_change_value(self, change: ModelChange, value: Any) -> Any:
        field = self.model._meta.get_field(change.field)
        if field.many_to_many:
            return super().prepare_delta_change_value(change, value)
        if value is None or value == "":
            return EMPTY
        if isinstance(value, bool):
            return gettext("yes") if value else gettext("no")
        if getattr(field, "choices", None):
            return str(dict(field.flatchoices).get(value, value))  # type: ignore[attr-defined]
        if isinstance(value, Decimal):
            return plain_decimal(value)
        return value


class HistoryAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    """Each object's History page lists who changed what and when, how, with old → new.

    ``allow_revert = False`` for objects that change only through their own acts
    (participants, responses, evaluations, memberships' grants): their versions can be
    read, never saved back."""

    object_history_template = "admin/history/object_history.html"
    object_history_list_template = "admin/history/history_list.html"
    allow_revert = True

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return ReadableHistory(self.model, historical_record)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        if not self.allow_revert or obj is None or obj.pk is None:
            return True
        return bool(super().revert_disabled(request, obj)) or not self.has_change_permission(
            request, obj
        )

    def has_view_history_or_change_history_permission(
        self, request: HttpRequest, obj: Any = None
    ) -> bool:
        if obj is not None and not self.model._default_manager.filter(pk=obj.pk).exists():
            # A deleted row: ``history_in_scope`` found its last version in the caller's
            # scope; what is left to ask is the model permission.
            return bool(admin.ModelAdmin.has_view_permission(self, request))
        return bool(super().has_view_history_or_change_history_permission(request, obj))

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        columns = []
        for name in self.get_history_list_display(request):
            method = getattr(self, name, None)
            label = getattr(method, "short_description", None) or name
            columns.append((name, label))
        context = {**(extra_context or {}), "history_columns": columns}
        return super().history_view(request, object_id, context)

    def set_history_delta_changes(
        self, request: HttpRequest, historical_records: Any, foreign_keys_are_objs: bool = True
    ) -> None:
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        for record in historical_records:
            record.actor = actor(record)
            record.reason = reason_label(record.history_change_reason)

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # simple-history saves the posted version whenever the caller may *view* the
        # history: only someone who may change the object reverts it, and only where
        # reverting is allowed at all.
        if request.method == "POST":
            obj = self.get_object(request, unquote(object_id))
            if self.revert_disabled(request, obj):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)
