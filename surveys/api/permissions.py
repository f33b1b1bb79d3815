"""Who may do what through the API: model permissions say *what*, site scope *to which rows*.

Every view's ``get_queryset`` is its base queryset passed through ``surveys/scoping.py``
(``ScopedViewMixin``), so a row outside the caller's sites does not exist for them: 404,
and absent from lists and exports. Acting on a visible row takes the model permission for
the action and, for writes, a role on the row's site or study (403 when lacking: the row
is visible to them, so saying no tells nothing new).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import permissions, serializers
from rest_framework.request import Request

from .. import scoping
from ..models import Membership

VIEWER = Membership.Role.VIEWER
MANAGER = Membership.Role.MANAGER
SIGNER = Membership.Role.SIGNER

READ_METHODS = ("GET", "HEAD", "OPTIONS")


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions for every method, reads included (``view_<model>``). A
    view may name other permissions per action in ``action_permissions``."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        action_perms: Mapping[str, list[str]] = getattr(view, "action_permissions", {})
        action = getattr(view, "action", None)
        if action is not None and action in action_perms:
            return bool(user.has_perms(action_perms[action]))
        return bool(super().has_permission(request, view))


Scope = Callable[..., QuerySet]


def site_scope(lookup: str) -> Scope:
    """Rows that belong to a site through ``lookup``."""

    def scope(user: Any, queryset: QuerySet, *, at_least: str = VIEWER) -> QuerySet:
        return scoping.by_site_lookup(user, queryset, lookup, at_least=at_least)

    return scope


def study_scope(lookup: str) -> Scope:
    """Rows that belong to a study through ``lookup``: visible to members of any site."""

    def scope(user: Any, queryset: QuerySet, *, at_least: str = VIEWER) -> QuerySet:
        return scoping.by_study_lookup(user, queryset, lookup, at_least=at_least)

    return scope


class ScopedViewMixin:
    """``get_queryset`` = ``base_queryset()`` within the caller's scope. Unsafe methods on
    one row also need the role ``write_role`` (or ``action_roles[action]``) on its site or
    study."""

    scope: Scope
    write_role: str = MANAGER
    action_roles: Mapping[str, str] = {}
    request: Request
    action: str | None

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        return type(self).scope(self.request.user, self.base_queryset())

    def role_needed(self) -> str:
        action = getattr(self, "action", None)
        if action in self.action_roles:
            return self.action_roles[action]  # type: ignore[index]
        return VIEWER if self.request.method in READ_METHODS else self.write_role

    def check_object_permissions(self, request: Request, obj: Model) -> None:
        super().check_object_permissions(request, obj)  # type: ignore[misc]
        role = self.role_needed()
        if role != VIEWER:
            rows = type(obj)._default_manager.filter(pk=obj.pk)
            if not type(self).scope(request.user, rows, at_least=role).exists():
                self.permission_denied(request)  # type: ignore[attr-defined]


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to a row the caller may write to (``at_least`` on its site or study); any
    other id is "does not exist", whether it exists or not."""

    def __init__(self, *, scope: Scope, at_least: str = MANAGER, **kwargs: Any) -> None:
        self.scope = scope
        self.at_least = at_least
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset.none()
        return self.scope(request.user, queryset, at_least=self.at_least)
