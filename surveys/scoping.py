"""Which rows a manager may see: the one place every admin view and API uses.

A manager belongs to sites through ``Membership`` rows, each with a role. They see the
participants, responses and per-site results of their sites only; study-wide results and
evaluations are for members of any site of the study. Superusers see everything. Model
permissions still decide *what* a user may do; scope decides *to which rows*.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet

from .models import Membership, Participant, Response, Site, Study

User = AbstractBaseUser | AnonymousUser

# Roles in increasing order of what they allow.
RANK = {Membership.Role.VIEWER: 1, Membership.Role.MANAGER: 2, Membership.Role.SIGNER: 3}


def sees_everything(user: User) -> bool:
    return bool(user.is_active and getattr(user, "is_superuser", False))


def site_ids(user: User, *, at_least: str = Membership.Role.VIEWER) -> QuerySet | None:
    """The ids of the user's sites where their role is at least ``at_least``; ``None``
    meaning every site (a superuser)."""
    if sees_everything(user):
        return None
    if not user.is_authenticated or not user.is_active:
        return Membership.objects.none().values("site_id")
    roles = [role for role, rank in RANK.items() if rank >= RANK[Membership.Role(at_least)]]
    return Membership.objects.filter(user_id=user.pk, role__in=roles).values("site_id")


def _by_site(queryset: QuerySet, user: User, lookup: str, at_least: str) -> QuerySet:
    ids = site_ids(user, at_least=at_least)
    if ids is None:
        return queryset
    # The site ids as values (one small query), not as a subquery: PostgreSQL then plans
    # with each site's statistics (a national manager's 50 sites hold a million
    # participants, not the "one membership, a few thousand rows" it assumes of a
    # subquery), which the lists' counts and their plans depend on (bench/admin.py).
    return queryset.filter(**{f"{lookup}__in": list(ids.values_list("site_id", flat=True))})


def sites(
    user: User, queryset: QuerySet[Site] | None = None, *, at_least: str = "viewer"
) -> QuerySet[Site]:
    return _by_site(queryset if queryset is not None else Site.objects.all(), user, "id", at_least)


def studies(
    user: User, queryset: QuerySet[Study] | None = None, *, at_least: str = "viewer"
) -> QuerySet[Study]:
    """Studies the user is a member of (through any of its sites)."""
    queryset = queryset if queryset is not None else Study.objects.all()
    ids = site_ids(user, at_least=at_least)
    if ids is None:
        return queryset
    return queryset.filter(sites__id__in=ids).distinct()


def participants(
    user: User, queryset: QuerySet[Participant] | None = None, *, at_least: str = "viewer"
) -> QuerySet[Participant]:
    qs = queryset if queryset is not None else Participant.objects.all()
    return _by_site(qs, user, "site_id", at_least)


def responses(
    user: User, queryset: QuerySet[Response] | None = None, *, at_least: str = "viewer"
) -> QuerySet[Response]:
    qs = queryset if queryset is not None else Response.objects.all()
    return _by_site(qs, user, "site_id", at_least)


def by_site_lookup(
    user: User, queryset: QuerySet, lookup: str, *, at_least: str = "viewer"
) -> QuerySet:
    """Any queryset whose rows belong to a site through ``lookup`` (e.g. ``"site_id"``)."""
    return _by_site(queryset, user, lookup, at_least)


def by_study_lookup(
    user: User, queryset: QuerySet, lookup: str, *, at_least: str = "viewer"
) -> QuerySet:
    """Any queryset whose rows belong to a study through ``lookup`` (e.g. ``"study_id"``):
    visible to members of any site of that study."""
    ids = site_ids(user, at_least=at_least)
    if ids is None:
        return queryset
    study_ids = Site.objects.filter(id__in=ids).values("study_id")
    return queryset.filter(**{f"{lookup}__in": study_ids})


def has_role(user: User, site: Site | int, at_least: str) -> bool:
    if sees_everything(user):
        return True
    ids = site_ids(user, at_least=at_least)
    site_id = site.pk if isinstance(site, Model) else site
    return ids is not None and ids.filter(site_id=site_id).exists()
