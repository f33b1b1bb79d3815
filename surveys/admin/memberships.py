"""Site memberships: who works on which site, with which role. Listed under each site, on
each user's page and in a list of their own (by site, role and user).

Granting, changing and removing a membership takes the membership permissions and the
signer role on that site (the top role, so nobody can grant more than they hold);
superusers grant anything.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import Membership
from .common import SIGNER, ScopedAdminMixin, SiteFilter
from .history import HistoryAdmin


class MembershipInline(ScopedAdminMixin, admin.TabularInline):
    """A site's members, on the site's page."""

    model = Membership
    fields = ("user", "role")
    extra = 0
    write_role = SIGNER
    verbose_name_plural = _("members of this site")


class UserMembershipInline(ScopedAdminMixin, admin.TabularInline):
    """A user's memberships, on the user's page: those of the caller's sites; editable by
    superusers (a user has no site, so no role on it answers for them)."""

    model = Membership
    fields = ("site", "role")
    extra = 0
    write_role = SIGNER
    verbose_name_plural = _("site memberships")

    def base_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().base_queryset(request).select_related("site__study")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The rows are scoped by site; the parent, a user, is no one's to be a member of.
        return admin.TabularInline.has_view_permission(self, request, obj)


@admin.register(Membership)
class MembershipAdmin(HistoryAdmin):
    list_display = ("user", "site", "study_column", "role")
    list_filter = (SiteFilter, "role", "user")
    list_select_related = ("user", "site__study")
    search_fields = ("user__username", "user__first_name", "user__last_name", "site__code")
    ordering = ("site__study__code", "site__code", "user__username")
    fields = ("user", "site", "role")
    write_role = SIGNER
    allow_revert = False

    @admin.display(description=_("study"), ordering="site__study__code")
    def study_column(self, obj: Membership) -> str:
        return obj.site.study.code


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """django.contrib.auth's user admin, with the user's site memberships."""

    inlines = (*BaseUserAdmin.inlines, UserMembershipInline)
