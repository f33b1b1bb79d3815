from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin with Hyoka's site class (the second factor: config/admin_site.py).
    Being the one app config of ``config``, it also registers the project's checks and
    the revocation of API tokens (config/api/authentication.py)."""

    default_site = "config.admin_site.AdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from django.contrib import admin
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from config import checks  # noqa: F401  (registers them)
        from config.api.authentication import revoke_tokens_of_changed_credentials

        # An API token ends with the password it was obtained with, and with the account.
        pre_save.connect(
            revoke_tokens_of_changed_credentials,
            sender=get_user_model(),
            dispatch_uid="hyoka-revoke-tokens",
        )

        # django-otp's device pages are English only and show the secret's QR code to any
        # user allowed to view devices; devices are enrolled with `manage.py enrol_totp`.
        if admin.site.is_registered(TOTPDevice):
            admin.site.unregister(TOTPDevice)
