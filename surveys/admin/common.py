"""What the survey admin modules share: the scope every model admin works in, placeholders,
rates, dates, links and the site filters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters, InlineModelAdmin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path, unquote
from django.core.exceptions import (
    FieldDoesNotExist,
    FieldError,
    PermissionDenied,
    ValidationError,
)
from django.db import models
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _

from .. import scoping
from ..ids import as_id
from ..models import Choice, Instrument, Membership, Participant, Question, Response, Site, Study

EMPTY = "\u2014"  # an em dash for "nothing here"
RANGE = "\u2013"  # an en dash between two dates

VIEWER = Membership.Role.VIEWER
MANAGER = Membership.Role.MANAGER
SIGNER = Membership.Role.SIGNER


# --- Scope: which rows a manager sees, and which they may change -------------------------


@dataclass(frozen=True)
class Scope:
    """How a model's rows reach the site or the study that ``surveys/scoping.py`` scopes
    by: ``lookup`` from the model to the site's or the study's id."""

    lookup: str
    by_site: bool

    def rows(self, user: Any, queryset: QuerySet, *, at_least: str = VIEWER) -> QuerySet:
        if self.by_site:
            return scoping.by_site_lookup(user, queryset, self.lookup, at_least=at_least)
        return scoping.by_study_lookup(user, queryset, self.lookup, at_least=at_least)


def by_site(lookup: str) -> Scope:
    """Rows of one site: seen by the site's members only."""
    return Scope(lookup, by_site=True)


def by_study(lookup: str) -> Scope:
    """Study-wide rows: seen by the members of any site of the study."""
    return Scope(lookup, by_site=False)


# How each model reaches its site or study. The KPI app adds its own models (kpi/*/admin.py).
SCOPES: dict[type[models.Model], Scope] = {
    Study: by_study("id"),
    Site: by_site("id"),
    Membership: by_site("site_id"),
    Participant: by_site("site_id"),
    Response: by_site("site_id"),
    Instrument: by_study("study_id"),
    Question: by_study("instrument__study_id"),
    Choice: by_study("question__instrument__study_id"),
}


def register_scope(model: type[models.Model], scope: Scope) -> None:
    SCOPES[model] = scope


def scope_of(model: type[models.Model]) -> Scope | None:
    return SCOPES.get(model) or SCOPES.get(model._meta.concrete_model)  # type: ignore[arg-type]


def studies_seen_whole(user: Any) -> set[int] | None:
    """The studies on whose every site the user has a role (``None``: every study, a
    superuser). Only they may read what shows every site's results, such as the report of
    an evaluation."""
    if scoping.sees_everything(user):
        return None
    mine = scoping.sites(user).values("pk")
    rows = (
        Site.objects.order_by()
        .values("study_id")
        .annotate(total=Count("pk"), mine=Count("pk", filter=Q(pk__in=mine)))
        .filter(mine=F("total"))
    )
    return {row["study_id"] for row in rows}


def _filter_choices(choices: Iterable[Any], allowed: set[str]) -> list[Any]:
    """Hand-set choices (flat or grouped) without the options outside ``allowed``; the
    empty option stays, and so does a group while it has an option left."""
    kept: list[Any] = []
    for value, label in choices:
        if isinstance(label, list | tuple):
            options = _filter_choices(label, allowed)
            if options:
                kept.append((value, options))
        elif value in ("", None) or str(value) in allowed:
            kept.append((value, label))
    return kept


def narrow_choices(
    fields: Iterable[forms.Field], user: Any, *, at_least: str, cache: dict | None = None
) -> None:
    """Every choice of a model in ``fields`` within the user's scope at ``at_least``: a
    site, study, segment or question outside it is neither offered nor accepted."""
    if scoping.sees_everything(user):
        return
    cache = {} if cache is None else cache
    for field in fields:
        if not isinstance(field, forms.ModelChoiceField) or field.queryset is None:
            continue
        model = field.queryset.model
        scope = scope_of(model)
        if scope is None:
            continue
        by_hand = field.__dict__.get("_choices")  # choices a form set itself, with labels
        field.queryset = scope.rows(user, field.queryset, at_least=at_least)
        if by_hand is not None:
            key = (model, at_least)
            if key not in cache:
                rows = scope.rows(user, model._default_manager.all(), at_least=at_least)
                cache[key] = {str(pk) for pk in rows.values_list("pk", flat=True)}
            field.choices = _filter_choices(by_hand, cache[key])


def scoped_form(form_class: Any, user: Any, *, at_least: str) -> Any:
    """``form_class`` with its model choices narrowed to the user's scope after its own
    ``__init__`` set them (see ``narrow_choices``).

    ``form_class`` is the class Django's admin made for this request (``get_form``,
    ``get_formset`` and ``get_changelist_form`` build a new one on each call), so wrapping
    its ``__init__`` touches no other request; subclassing it instead would make the
    model form's metaclass build every field again."""
    if scoping.sees_everything(user):
        return form_class
    cache: dict = {}
    original = form_class.__init__

    def __init__(self: forms.BaseForm, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        narrow_choices(self.fields.values(), user, at_least=at_least, cache=cache)

    form_class.__init__ = __init__
    return form_class


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """The related model's rows in the caller's scope (their studies, their studies'
    instruments). Django's ``RelatedOnlyFieldListFilter`` would read the distinct values
    of every row of the list instead: a scan of a million responses on each page view."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list:
        model = field.related_model
        scope = scope_of(model)
        assert scope is not None
        rows = scope.rows(request.user, model._default_manager.all())
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False,
            ordering=ordering,
            limit_choices_to=Q(pk__in=rows.values("pk")),
        )


def labelled_row_form(form_class: Any) -> Any:
    """``form_class`` (a list's editable row) with each field labelled for screen readers:
    Django's list shows an input under the column's header but gives it no label, so
    every one reads as an unnamed field (axe: "label"). The label names the column and
    the row: "Display order: Response rate". Wrapped as ``scoped_form`` does."""
    original = form_class.__init__

    def __init__(self: forms.BaseForm, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        instance = getattr(self, "instance", None)
        row = str(instance) if instance is not None else ""
        for field in self.fields.values():
            if field.widget.is_hidden:
                continue
            label = str(field.label or "")
            field.widget.attrs["aria-label"] = f"{label}: {row}" if row else label

    form_class.__init__ = __init__
    return form_class


class ScopedAdminMixin:
    """What every model admin of the project is built on: the one place where the admin
    applies ``surveys/scoping.py``.

    - Its rows are ``base_queryset()`` within the caller's scope: the rows of their sites,
      or of the studies they are a member of (``SCOPES``). Superusers see everything.
    - A row outside the scope is a row that does not exist: 404 on its change, delete and
      history pages and on every custom view that looks it up through ``get_object``.
    - Adding, changing and deleting need the model permission AND the role ``write_role``
      (manager) on the row's site or study; a viewer reads only. Actions that change
      rows check the role on every selected row.
    - The choices a form offers (site, study, segment, question, run …) are those the
      caller may write to; list filters offer only values of the rows they see.
    """

    write_role: str = MANAGER
    model: type[models.Model]

    # --- rows

    def base_queryset(self, request: HttpRequest) -> QuerySet:
        """The rows before scoping, with the joins the pages need: override this, never
        ``get_queryset``."""
        return super().get_queryset(request)  # type: ignore[misc]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scoped(request, self.base_queryset(request))

    def scoped(
        self, request: HttpRequest, queryset: QuerySet, *, at_least: str = VIEWER
    ) -> QuerySet:
        scope = scope_of(queryset.model)
        assert scope is not None, f"{queryset.model._meta.label} has no scope (SCOPES)"
        return scope.rows(request.user, queryset, at_least=at_least)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        """The row, or 404: a row outside the scope answers as a missing one (Django's
        admin would redirect with a message naming the id), and so does an id that cannot
        be one ("abc", "²", "٣", a number beyond the database's range; every model of the
        project has an integer key)."""
        if from_field is None and as_id(object_id) is None:
            raise Http404
        # Django's own lookup, over ``object_queryset`` in the caller's scope.
        queryset = self.scoped(request, self.object_queryset(request))
        opts = queryset.model._meta
        field = opts.pk if from_field is None else opts.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (queryset.model.DoesNotExist, ValidationError, ValueError):
            raise Http404 from None

    def object_queryset(self, request: HttpRequest) -> QuerySet:
        """The rows one object's pages look up, before scoping: ``base_queryset`` unless a
        list's annotations (counts over every row) are of no use to them."""
        return self.base_queryset(request)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> Any:
        raise Http404

    # --- roles

    def has_role(self, request: HttpRequest, obj: models.Model | None, role: str) -> bool:
        """``role`` or higher on the site or study of ``obj`` (for an inline, its parent);
        with no object, on some site."""
        user = request.user
        if scoping.sees_everything(user):
            return True
        # Asked many times a page (each model of the index, each inline): once a request.
        cache: dict = request.__dict__.setdefault("_hyoka_roles", {})
        key = (None, None, role) if obj is None else (obj._meta.label, obj.pk, role)
        if key not in cache:
            if obj is None:
                cache[key] = scoping.sites(user, at_least=role).exists()
            else:
                scope = scope_of(type(obj))
                rows = type(obj)._default_manager.filter(pk=obj.pk)
                cache[key] = (
                    scope is not None
                    and obj.pk is not None
                    and scope.rows(user, rows, at_least=role).exists()
                )
        return bool(cache[key])

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_view_permission(request, obj)  # type: ignore[misc]
        return bool(allowed) and (obj is None or self.has_role(request, obj, VIEWER))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An inline is asked with its parent, a model admin without an object.
        if isinstance(self, InlineModelAdmin):
            allowed = super().has_add_permission(request, obj)  # type: ignore[misc]
        else:
            allowed = super().has_add_permission(request)  # type: ignore[misc]
        return bool(allowed) and self.has_role(request, obj, self.write_role)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)  # type: ignore[misc]
        return bool(allowed) and self.has_role(request, obj, self.write_role)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return bool(allowed) and self.has_role(request, obj, self.write_role)

    # --- forms, filters and actions

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        return scoped_form(form, request.user, at_least=self.write_role)

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        formset.form = scoped_form(formset.form, request.user, at_least=self.write_role)
        return formset

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        form = super().get_changelist_form(request, **kwargs)  # type: ignore[misc]
        return labelled_row_form(scoped_form(form, request.user, at_least=self.write_role))

    def _get_list_editable_queryset(self, request: HttpRequest, prefix: str) -> QuerySet:
        # The list's editable columns save only rows the caller may change; a row they
        # only view fails its form instead of being saved.
        rows = super()._get_list_editable_queryset(request, prefix)  # type: ignore[misc]
        return self.scoped(request, rows, at_least=self.write_role)

    def get_list_filter(self, request: HttpRequest) -> Any:
        """A filter by a related model (study, instrument, user) lists only values in the
        caller's scope, not every study of the database: the related model's rows in
        scope where it has one (``ScopedRelatedFilter``), else the values of the rows
        the caller sees."""
        filters = super().get_list_filter(request)  # type: ignore[misc]
        if scoping.sees_everything(request.user):
            return filters
        return [self._related_only(entry) for entry in filters]

    def _related_only(self, entry: Any) -> Any:
        if not isinstance(entry, str):
            return entry
        try:
            field = get_fields_from_path(self.model, entry)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return entry
        related = field.related_model
        if not field.is_relation or not isinstance(related, type):
            return entry
        if scope_of(related) is not None:
            return (entry, ScopedRelatedFilter)
        return (entry, admin.RelatedOnlyFieldListFilter)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        return {
            name: (self._role_checked(func), name, description)
            for name, (func, _name, description) in actions.items()
        }

    def _role_checked(self, func: Callable) -> Callable:
        """An action that changes rows (any permission but "view") runs only if the caller
        has the write role on every selected row: 403 otherwise, nothing done."""
        if not set(getattr(func, "allowed_permissions", ())) - {"view"}:
            return func

        @wraps(func)
        def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> Any:
            if not scoping.sees_everything(request.user):
                writable = self.scoped(request, queryset, at_least=self.write_role)
                if writable.count() != queryset.count():
                    raise PermissionDenied
            return func(modeladmin, request, queryset)

        return action

    # --- history pages (Django's and django-simple-history's)

    def history_in_scope(self, request: HttpRequest, object_id: str) -> None:
        """404 unless the row is in the caller's scope, or, once deleted, its last
        recorded version was (its history stays readable by those who could read it)."""
        if as_id(object_id) is None:
            raise Http404
        if scoping.sees_everything(request.user):
            return
        try:
            self.get_object(request, object_id)
            return
        except Http404:
            pass
        history = getattr(self.model, "history", None)
        scope = scope_of(self.model)
        if history is None or scope is None:
            raise Http404
        try:
            key = {self.model._meta.pk.attname: object_id}
            last = history.filter(**key).order_by("-history_date", "-history_id")[:1]
            versions = history.model.objects.filter(pk__in=last.values("pk"), history_type="-")
            if scope.rows(request.user, versions).exists():
                return
        except (ValueError, ValidationError, FieldError):
            pass
        raise Http404

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # django-simple-history falls back to the historical record of a row it cannot
        # find: look the row (or its deletion) up in scope first.
        self.history_in_scope(request, unquote(object_id))
        return super().history_view(request, object_id, extra_context)  # type: ignore[misc]

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Routed only for django-simple-history admins, whose view finds the version
        # without the scope.
        self.history_in_scope(request, unquote(object_id))
        if as_id(version_id) is None:
            raise Http404
        return super().history_form_view(  # type: ignore[misc]
            request, object_id, version_id, extra_context
        )


def _rate(numerator: int, denominator: int) -> float | None:
    return 100 * numerator / denominator if denominator else None


def _format_rate(numerator: int, denominator: int) -> str:
    rate = _rate(numerator, denominator)
    if rate is None:
        return EMPTY
    return f"{number_format(rate, 1)}% ({numerator} / {denominator})"


def _period(start: Any, end: Any) -> str:
    return (
        f"{date_format(start, 'SHORT_DATE_FORMAT')} {RANGE} {date_format(end, 'SHORT_DATE_FORMAT')}"
    )


def _changelist_url(model: type[models.Model], **params: object) -> str:
    url = reverse(f"admin:surveys_{model._meta.model_name}_changelist")
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


class SiteFilter(admin.SimpleListFilter):
    """The caller's sites labelled with their study (two studies can both have a
    "Setagaya"), narrowed to the study chosen in the study filter."""

    title = _("site")
    parameter_name = "site"
    site_field = "site"  # the path to the site, as the study filter names it
    filter_field = "site_id"  # what the chosen site is matched on

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        sites = scoping.sites(request.user).select_related("study").order_by("study__code", "code")
        study = as_id(request.GET.get(f"{self.site_field}__study__id__exact"))
        if study is not None:
            sites = sites.filter(study_id=study)
        # str(site): the name without direction controls, as it stands among other words.
        return [(str(s.pk), f"{s.study.code} · {s}") for s in sites]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        site = as_id(value)
        if site is None:
            # As Django's own filters answer a value that cannot be: "?e=1".
            raise IncorrectLookupParameters
        return queryset.filter(**{self.filter_field: site})


class ResponseSiteFilter(SiteFilter):
    """Narrowed by the study filter of the response list (through the participant), it
    filters on the response's own site: the same site (a copy of its participant's, see
    ``Response.site``), read from the response's index, without joining participants."""

    site_field = "participant__site"
