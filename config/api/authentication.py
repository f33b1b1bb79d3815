"""Machines authenticate with a token, kept only as a digest (django-rest-knox: SHA-512 of
a 256-bit random string; the plain token is shown once, when it is issued). Browsers use
their admin session, with CSRF enforced by REST framework's ``SessionAuthentication``.

A token is a credential obtained with a password: it must not outlive that password, nor
the account. ``revoke_tokens_of_changed_credentials`` deletes a user's tokens when their
password changes or they are deactivated (knox already refuses an inactive user's token;
deleting it also keeps it from coming back if the account is reactivated). Sessions need
nothing of the kind: Django ends every session of a user whose password hash changed
(``get_session_auth_hash``) and of an inactive user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """``Authorization: Token <token>``. A header that is not even text (bytes that are not
    UTF-8) is a failed authentication, not a server error."""

    def authenticate_credentials(self, token: bytes) -> Any:
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        return super().authenticate_credentials(token)


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "config.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`, from POST /api/v1/auth/token/.",
        }


def revoke_tokens_of_changed_credentials(
    sender: Any,  # the user model
    instance: AbstractBaseUser,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """``pre_save`` of the user model (connected in ``config/apps.py``). Compares the hash
    stored with the one being saved: every way of changing a password (the admin's forms,
    ``manage.py changepassword``, ``set_password`` anywhere) ends in a save. A login that
    upgrades the hash to stronger parameters also counts as a change: the tokens go, the
    password still works."""
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # e.g. the last_login update of every login: no read
    stored = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    if stored["password"] != instance.password or (stored["is_active"] and not instance.is_active):
        AuthToken.objects.filter(user_id=instance.pk).delete()
