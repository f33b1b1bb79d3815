"""The definitions API: segments (with their conditions) and KPIs. Their rules are the
admin's (``validation``), checked here to put each message at its field; every write goes
through ``services``, as the admin's and the loader's do."""

from __future__ import annotations

import copy
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from rest_framework import serializers, viewsets

from surveys.api.filters import IdFilter
from surveys.api.permissions import (
    MANAGER,
    VIEWER,
    ScopedRelatedField,
    ScopedViewMixin,
    study_scope,
)
from surveys.ids import ID_PATTERN
from surveys.models import Choice, Question, Study

from . import services
from .models import KPI, Clause, Segment
from .services import KPI_FIELDS
from .validation import validate_clause, validate_kpi

STUDY_SCOPE = study_scope("id")
UNIQUE = "The fields {field_names} must make a unique set."  # REST framework's own words


def _user(serializer: serializers.Serializer) -> Any:
    request = serializer.context.get("request")
    return request.user if request is not None else None


def study_field() -> ScopedRelatedField:
    """A study the caller manages a site of (segments, KPIs and runs are study-wide)."""
    return ScopedRelatedField(scope=STUDY_SCOPE, at_least=MANAGER, queryset=Study.objects.all())


class StudyFixedOnUpdate:
    """A definition never moves to another study: ``study`` is read-only once created."""

    instance: Any

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()  # type: ignore[misc]
        if self.instance is not None:
            fields["study"] = serializers.PrimaryKeyRelatedField(read_only=True)
        return fields


# --- Segments -------------------------------------------------------------------------


class ClauseSerializer(serializers.ModelSerializer):
    question = ScopedRelatedField(
        scope=study_scope("instrument__study_id"), at_least=VIEWER, queryset=Question.objects.all()
    )
    question_code = serializers.CharField(source="question.code", read_only=True)
    choices = ScopedRelatedField(
        scope=study_scope("question__instrument__study_id"),
        at_least=VIEWER,
        queryset=Choice.objects.all(),
        many=True,
        required=False,
    )
    choice_codes = serializers.SerializerMethodField()

    class Meta:
        model = Clause
        fields = ["id", "question", "question_code", "choices", "choice_codes", "tag", "negate"]
        read_only_fields = ["id"]

    def get_choice_codes(self, clause: Clause) -> list[str]:
        return [c.code for c in clause.choices.all()]


class SegmentSerializer(StudyFixedOnUpdate, serializers.ModelSerializer):
    """A named set of respondents: those meeting every clause. Writing ``clauses``
    replaces them all."""

    study = study_field()
    name = serializers.CharField(read_only=True)
    clauses = ClauseSerializer(many=True, required=False)

    class Meta:
        model = Segment
        fields = ["id", "study", "code", "name", "name_ja", "name_en", "clauses"]
        read_only_fields = ["id"]
        validators: list = []  # uniqueness in the study: validate()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        study = attrs.get("study") or self.instance.study
        code = attrs.get("code", getattr(self.instance, "code", None))
        others = Segment.objects.filter(study=study, code=code)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            message = _(UNIQUE).format(field_names="study, code")
            raise serializers.ValidationError({"code": [message]})
        clauses = attrs.get("clauses")
        if clauses:
            segment = Segment(study=study)
            errors: list[dict[str, Any]] = []
            for clause in clauses:
                try:
                    validate_clause(
                        segment=segment,
                        question=clause["question"],
                        choices=clause.get("choices", []),
                        tag=clause.get("tag", ""),
                    )
                except DjangoValidationError as exc:
                    errors.append(exc.message_dict)
                else:
                    errors.append({})
            if any(errors):
                raise serializers.ValidationError({"clauses": errors})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Segment:
        return self.update(None, validated_data)

    def update(self, instance: Segment | None, validated_data: dict[str, Any]) -> Segment:
        clauses = validated_data.pop("clauses", None)
        return services.segment_save(
            segment=instance,
            fields=services.segment_fields(validated_data),
            clauses=None if clauses is None else [_clause_data(c) for c in clauses],
            user=_user(self),
        )


def _clause_data(data: dict[str, Any]) -> services.ClauseData:
    """A clause as sent: writing ``clauses`` replaces them all (no ``id``: each is new)."""
    return services.ClauseData(
        question=data["question"],
        choices=data.get("choices", []),
        tag=data.get("tag", ""),
        negate=data.get("negate", False),
    )


# --- KPIs -----------------------------------------------------------------------------


class KPISerializer(StudyFixedOnUpdate, serializers.ModelSerializer):
    study = study_field()
    name = serializers.CharField(read_only=True)
    numerator = ScopedRelatedField(
        scope=study_scope("study_id"),
        at_least=VIEWER,
        queryset=Segment.objects.all(),
        allow_null=True,
        required=False,
    )
    base_segment = ScopedRelatedField(
        scope=study_scope("study_id"),
        at_least=VIEWER,
        queryset=Segment.objects.all(),
        allow_null=True,
        required=False,
    )
    mean_question = ScopedRelatedField(
        scope=study_scope("instrument__study_id"),
        at_least=VIEWER,
        queryset=Question.objects.filter(type=Question.Type.SCALE4),
        allow_null=True,
        required=False,
    )

    class Meta:
        model = KPI
        fields = ["id", "name", *KPI_FIELDS]
        extra_kwargs = {
            "threshold": {
                "help_text": (
                    "The target. For a share in percent: 70 means 70 % (not 0.7). For a "
                    "ratio or a mean, the number itself."
                )
            },
            "confidence": {
                "help_text": (
                    "The confidence level as a fraction between 0.5 and 0.999: 0.95 means "
                    "95 % (the admin shows and takes it in percent)."
                )
            },
        }
        read_only_fields = ["id"]
        validators: list = []  # uniqueness in the study: validate()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kpi = copy.copy(self.instance) if self.instance is not None else KPI()
        for name, value in attrs.items():
            setattr(kpi, name, value)
        others = KPI.objects.filter(study_id=kpi.study_id, code=kpi.code)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            message = _(UNIQUE).format(field_names="study, code")
            raise serializers.ValidationError({"code": [message]})
        try:
            validate_kpi(kpi)  # the admin's rules, in the admin's words
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def create(self, validated_data: dict[str, Any]) -> KPI:
        return self.update(None, validated_data)

    def update(self, instance: KPI | None, validated_data: dict[str, Any]) -> KPI:
        return services.kpi_save(
            kpi=instance,
            fields=services.kpi_fields(validated_data),
            user=_user(self),
        )


BY_STUDY = staticmethod(study_scope("study_id"))


# --- Definitions ----------------------------------------------------------------------


class SegmentFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")

    class Meta:
        model = Segment
        fields = ["study", "code"]


class SegmentViewSet(ScopedViewMixin, viewsets.ModelViewSet):
    """Segments of the caller's studies, each with its clauses. A segment a KPI uses
    cannot be deleted (409 ``protected``)."""

    serializer_class = SegmentSerializer
    scope = BY_STUDY
    filterset_class = SegmentFilter
    lookup_value_regex = ID_PATTERN

    def base_queryset(self) -> QuerySet[Segment]:
        clauses = Clause.objects.select_related("question").prefetch_related(
            Prefetch("choices", queryset=Choice.objects.order_by("order"))
        )
        return Segment.objects.prefetch_related(Prefetch("clauses", queryset=clauses)).order_by(
            "study__code", "code"
        )

    def perform_destroy(self, instance: Segment) -> None:
        services.segment_delete(segment=instance, user=self.request.user)


class KPIFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")

    class Meta:
        model = KPI
        fields = ["study", "code", "kind", "group", "active"]


class KPIViewSet(ScopedViewMixin, viewsets.ModelViewSet):
    """KPI definitions of the caller's studies, checked by the admin's rules."""

    serializer_class = KPISerializer
    scope = BY_STUDY
    filterset_class = KPIFilter
    lookup_value_regex = ID_PATTERN

    def base_queryset(self) -> QuerySet[KPI]:
        return KPI.objects.order_by("study__code", "order", "code")

    def perform_destroy(self, instance: KPI) -> None:
        services.kpi_delete(kpi=instance, user=self.request.user)
