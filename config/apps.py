from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin with Hyoka's site class (the second factor: config/admin_site.py)."""

    default_site = "config.admin_site.AdminSite"
