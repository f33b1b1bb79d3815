"""Query filters of the survey API (django-filter). Filters narrow a queryset that is
already scoped to the caller: a filter can never widen what they see."""

from __future__ import annotations

import django_filters
from django import forms

from ..ids import ID_MAX
from ..models import Instrument, Participant, Response, Site


class IdField(forms.IntegerField):
    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)

    def to_python(self, value):  # type: ignore[no-untyped-def]
        # ASCII digits only: int() would read "٣" as 3 (surveys/ids.py).
        if isinstance(value, str) and value.strip() and not value.strip().isascii():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number in the database's range (a larger one is a 400, not a
    database overflow)."""

    field_class = IdField


class SiteFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")

    class Meta:
        model = Site
        fields = ["study", "code"]


class InstrumentFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")
    version = IdFilter(field_name="version")
    status = django_filters.ChoiceFilter(
        choices=[c for c in Instrument.Status.choices if c[0] != Instrument.Status.DRAFT]
    )

    class Meta:
        model = Instrument
        fields = ["study", "version", "status"]


class ParticipantFilter(django_filters.FilterSet):
    study = IdFilter(field_name="site__study_id")
    site = IdFilter(field_name="site_id")
    response_status = django_filters.ChoiceFilter(
        label="response status",
        choices=[("none", "none"), *Response.Status.choices],
        method="filter_response_status",
    )

    class Meta:
        model = Participant
        fields = ["study", "site", "status", "reference", "response_status"]

    def filter_response_status(self, queryset, name, value):  # type: ignore[no-untyped-def]
        if value == "none":
            return queryset.filter(response__isnull=True)
        return queryset.filter(response__status=value)


class ResponseFilter(django_filters.FilterSet):
    study = IdFilter(field_name="site__study_id")
    site = IdFilter(field_name="site_id")
    submitted_after = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="lt")
    instrument = IdFilter(field_name="instrument_id")

    class Meta:
        model = Response
        fields = ["study", "site", "status", "source", "language", "instrument"]
