from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin with Hyoka's site class (the second factor: config/admin_site.py).
    Being the one app config of ``config``, it also registers the project's checks."""

    default_site = "config.admin_site.AdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from django.contrib import admin
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from config import checks  # noqa: F401  (registers them)

        # django-otp's device pages are English only and show the secret's QR code to any
        # user allowed to view devices; devices are enrolled with `manage.py enrol_totp`.
        if admin.site.is_registered(TOTPDevice):
            admin.site.unregister(TOTPDevice)
