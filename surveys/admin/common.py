"""What the survey admin modules share: placeholders, rates, dates, links and the site
filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _

from ..models import Site

EMPTY = "\u2014"  # an em dash for "nothing here"
RANGE = "\u2013"  # an en dash between two dates


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
    """Sites labelled with their study (two studies can both have a "Setagaya"), narrowed
    to the study chosen in the study filter."""

    title = _("site")
    parameter_name = "site"
    site_field = "site"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        sites = Site.objects.select_related("study").order_by("study__code", "code")
        study = request.GET.get(f"{self.site_field}__study__id__exact")
        if study and study.isdigit():
            sites = sites.filter(study_id=study)
        return [(str(s.pk), f"{s.study.code} · {s.name}") for s in sites]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{f"{self.site_field}_id": value})
        return queryset


class ResponseSiteFilter(SiteFilter):
    site_field = "participant__site"
