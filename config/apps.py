from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin with Hyoka's site class (the second factor: config/admin_site.py).
    Being the one app config of ``config``, it also registers the project's checks."""

    default_site = "config.admin_site.AdminSite"

    def ready(self) -> None:
        super().ready()
        from config import checks  # noqa: F401  (registers them)
