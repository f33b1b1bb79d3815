"""The audit trail's model layer: which history the models keep, and how a record says
what made the change.

Every change to participants, responses and their answers, site memberships, segments,
KPI targets and evaluations leaves a row in a historical table (django-simple-history):
the row as it then was, when, who (a manager's account, or none) and how (the
``history_change_reason``: "participant submission (web)", "admin", "command: demo" …).
The historical tables are append-only in the database (``surveys/appendonly.py``).

This module imports no model of the project, so that ``models.py`` can use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.management.base import BaseCommand
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Reason(models.TextChoices):
    """The fixed ways a change is made, as stored in ``history_change_reason`` (English,
    so that a record reads the same whatever language was active) and as shown."""

    DRAFT_WEB = "participant draft (web)", _("participant saved a draft (web)")
    DRAFT_API = "participant draft (api)", _("participant saved a draft (API)")
    SUBMISSION_WEB = "participant submission (web)", _("participant submission (web)")
    SUBMISSION_API = "participant submission (api)", _("participant submission (API)")
    RESPONSES_IMPORTED = "responses imported", _("responses imported")
    PARTICIPANT_CREATED = "participant created", _("participant created")
    PARTICIPANTS_IMPORTED = "participants imported", _("participants imported")
    PARTICIPANT_WITHDRAWN = "participant withdrawn", _("participant withdrawn")
    LINK_REISSUED = "invitation link reissued", _("invitation link reissued")
    LINK_REPLACED = (
        "invitation link replaced",
        _("invitation link replaced (the earlier one no longer works)"),
    )
    PERSONAL_DATA_ERASED = "personal data erased", _("personal data erased")
    EVALUATION_CREATED = "evaluation created", _("evaluation created")
    SIGNED_OFF = "evaluation signed off", _("evaluation signed off")
    WITHDRAWN = "evaluation withdrawn", _("evaluation withdrawn")
    PDF_STORED = "signed PDF stored", _("signed PDF rendered and stored")
    STUDY_COPIED = "study copied", _("study copied from another")
    ADMIN = "admin", _("admin")
    API = "api", _("API")
    WEB = "web", _("web")


# The participant's own acts: recorded without an account.
PARTICIPANT_ACTS = frozenset(
    {Reason.DRAFT_WEB, Reason.DRAFT_API, Reason.SUBMISSION_WEB, Reason.SUBMISSION_API}
)


def by_participant(reason: str | None) -> bool:
    return bool(reason) and (
        reason in PARTICIPANT_ACTS
        or str(reason).startswith(("participant draft (", "participant submission ("))
    )


COMMAND = "command: "
TASK = "task: "

_acting: ContextVar[str | None] = ContextVar("hyoka_history_acting", default=None)


@contextmanager
def acting(reason: str) -> Iterator[None]:
    """Records written inside say ``reason`` unless they name their own (a management
    command: ``acting(command("demo"))``; a Celery task: set for every task, see
    ``record_tasks`` below)."""
    token = _acting.set(reason)
    try:
        yield
    finally:
        _acting.reset(token)


# Who makes the changes written inside ``recorded_by()``; unset outside (simple-history then
# takes the request's user, as in the admin).
_UNSET: Any = object()
_recorded_user: ContextVar[Any] = ContextVar("hyoka_history_user", default=_UNSET)


@contextmanager
def recorded_by(user: Any) -> Iterator[None]:
    """Records written inside name ``user`` as who made the change; ``None`` or an
    anonymous user: no account (a participant, a command, the system), even while a
    manager's request is being served. The one way to say who did a write: every service
    that writes recorded rows takes the user as an argument and writes inside this."""
    token = _recorded_user.set(user if user is not None and user.is_authenticated else None)
    try:
        yield
    finally:
        _recorded_user.reset(token)


def save_with_reason(obj: models.Model, reason: str, **save: Any) -> None:
    """``obj.save(**save)`` recorded with ``reason`` (which then leaves the instance:
    simple-history would give it to the instance's next records too)."""
    obj._change_reason = reason  # type: ignore[attr-defined]
    try:
        obj.save(**save)
    finally:
        del obj._change_reason  # type: ignore[attr-defined]


def command(name: str) -> str:
    return f"{COMMAND}{name}"


def task(name: str) -> str:
    return f"{TASK}{name}"


class AuditedCommand(BaseCommand):
    """A management command whose changes are recorded as made by it ("command: demo")."""

    def execute(self, *args: Any, **options: Any) -> Any:
        with acting(command(self.__module__.rsplit(".", 1)[-1])):
            return super().execute(*args, **options)


def _task_started(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
    _task_tokens[task_id] = _acting.set(task(getattr(sender, "name", "") or "?"))


def _task_finished(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _acting.reset(token)


_task_tokens: dict[str, Any] = {}


def record_tasks() -> None:
    """Changes made by a Celery task are recorded as made by it ("task: kpi.render…"),
    on a worker and in-process alike."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False, dispatch_uid="hyoka.history.task_started")
    task_postrun.connect(_task_finished, weak=False, dispatch_uid="hyoka.history.task_finished")


def current_reason() -> str | None:
    """What is making changes now: ``acting()``, else the channel of the request being
    served (never its path: participant links carry their token)."""
    reason = _acting.get()
    if reason:
        return reason
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        return None
    path = getattr(request, "path_info", "") or ""
    if path.startswith("/admin/"):
        return Reason.ADMIN.value
    if path.startswith("/api/"):
        return Reason.API.value
    return Reason.WEB.value


def reason_label(value: str | None) -> str:
    """A stored reason as a manager reads it, in the active language."""
    if not value:
        return ""
    if value in Reason.values:
        return str(Reason(value).label)
    if value.startswith(COMMAND):
        return str(_("command %(name)s")) % {"name": value.removeprefix(COMMAND)}
    if value.startswith(TASK):
        return str(_("background task %(name)s")) % {"name": value.removeprefix(TASK)}
    return value


class AuditedHistory(HistoricalRecords):
    """simple-history's records, with two changes for an audit trail.

    - ``history_user`` is ``PROTECT`` instead of ``SET_NULL``: deleting an account that
      changed something would blank "who" in its records (and the append-only triggers
      refuse the update anyway). Such an account is deactivated, not deleted.
    - A record without a reason of its own gets ``current_reason()``.
    - Its user is the one named by ``recorded_by()``, when a service writes inside it.
    """

    def get_history_user(self, instance: Any) -> Any:
        user = _recorded_user.get()
        return super().get_history_user(instance) if user is _UNSET else user

    def _get_history_user_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = super()._get_history_user_fields()  # type: ignore[misc]
        user = fields.get("history_user")
        if isinstance(user, models.ForeignKey):
            fields["history_user"] = models.ForeignKey(
                user.remote_field.model,
                null=True,
                related_name=self.user_related_name,
                on_delete=models.PROTECT,
                db_constraint=self.user_db_constraint,
            )
        return fields

    def get_change_reason_for_object(self, instance: Any, history_type: str, using: Any) -> Any:
        return super().get_change_reason_for_object(instance, history_type, using) or (
            current_reason()
        )
