from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkspaceConfig(AppConfig):
    """The manager's workspace: the admin's first screen (the dashboard). It reads
    ``surveys``, ``kpi`` and ``fieldwork``; none of them reads it."""

    name = "workspace"
    verbose_name = _("Workspace")
    default_auto_field = "django.db.models.BigAutoField"
