"""Serializers of the KPI API. Definitions (segments with their clauses, KPIs) are checked
by ``kpi/validation.py``, the admin's rules; results, statuses and sign-off facts are
read-only, so extra fields in a request change nothing."""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework import serializers

from surveys.api.permissions import MANAGER, VIEWER, ScopedRelatedField, study_scope
from surveys.models import Choice, Language, Question, Study
from surveys.text import no_control_characters

from .. import definition_services
from ..models import (
    KPI,
    RESULT_FIELDS,
    Clause,
    Evaluation,
    EvaluationRun,
    KPIResult,
    Segment,
)
from ..validation import validate_clause, validate_kpi

STUDY_SCOPE = study_scope("id")
UNIQUE = "The fields {field_names} must make a unique set."  # REST framework's own words


def _user(serializer: serializers.Serializer) -> Any:
    request = serializer.context.get("request")
    return request.user if request is not None else None


def _study_field() -> ScopedRelatedField:
    """A study the caller manages a site of (KPIs and segments are study-wide)."""
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

    study = _study_field()
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
        return definition_services.segment_save(
            segment=instance,
            fields=definition_services.segment_fields(validated_data),
            clauses=None if clauses is None else [_clause_data(c) for c in clauses],
            user=_user(self),
        )


def _clause_data(data: dict[str, Any]) -> definition_services.ClauseData:
    """A clause as sent: writing ``clauses`` replaces them all (no ``id``: each is new)."""
    return definition_services.ClauseData(
        question=data["question"],
        choices=data.get("choices", []),
        tag=data.get("tag", ""),
        negate=data.get("negate", False),
    )


# --- KPIs -----------------------------------------------------------------------------


class KPISerializer(StudyFixedOnUpdate, serializers.ModelSerializer):
    study = _study_field()
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
        fields = [
            "id",
            "study",
            "code",
            "order",
            "group",
            "name",
            "name_ja",
            "name_en",
            "base_description_ja",
            "base_description_en",
            "kind",
            "numerator",
            "base",
            "base_segment",
            "mean_question",
            "comparator",
            "threshold",
            "rule",
            "confidence",
            "min_n",
            "by_site",
            "active",
        ]
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
        return definition_services.kpi_save(
            kpi=instance,
            fields=definition_services.kpi_fields(validated_data),
            user=_user(self),
        )


# --- Runs and results -----------------------------------------------------------------


class KPIResultSerializer(serializers.ModelSerializer):
    site_code = serializers.CharField(source="site.code", read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True)
    base_description = serializers.CharField(read_only=True)

    class Meta:
        model = KPIResult
        fields = ["id", "kpi", "site", "site_code", "name", "base_description", *RESULT_FIELDS]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "url",
            "study",
            "status",
            "trigger",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "cutoff",
            "responses_counted",
            "error",
        ]
        read_only_fields = fields

    def get_url(self, run: EvaluationRun) -> str:
        return reverse("api:run-detail", args=[run.pk])


class RunDetailSerializer(RunSerializer):
    """A run with its results: the whole study's (``site`` null) and the caller's sites'."""

    results = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "results"]
        read_only_fields = fields

    def get_results(self, run: EvaluationRun) -> list[dict[str, Any]]:
        return KPIResultSerializer(self.context["results"], many=True).data


class RunCreateSerializer(serializers.Serializer):
    study = _study_field()


# --- Evaluations ----------------------------------------------------------------------


class EvaluationSerializer(serializers.ModelSerializer):
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "study",
            "run",
            "language",
            "status",
            "snapshot_sha256",
            "created_by",
            "created_at",
            "signed_off_by",
            "signed_off_at",
            "signer_name",
            "signer_role",
            "statement",
            "rendering",
            "pdf_sha256",
            "pdf_size",
            "pdf_url",
            "withdrawn_by",
            "withdrawn_at",
            "withdrawal_reason",
        ]
        read_only_fields = fields

    def get_pdf_url(self, evaluation: Evaluation) -> str:
        return reverse("api:evaluation-pdf", args=[evaluation.pk])


LANGUAGES = Language.choices


class EvaluationCreateSerializer(serializers.Serializer):
    run = ScopedRelatedField(
        scope=study_scope("study_id"), at_least=MANAGER, queryset=EvaluationRun.objects.all()
    )
    language = serializers.ChoiceField(choices=LANGUAGES, default="ja")


class EvaluationUpdateSerializer(serializers.Serializer):
    language = serializers.ChoiceField(choices=LANGUAGES)


class SignOffSerializer(serializers.Serializer):
    password = serializers.CharField(
        write_only=True, max_length=4096, allow_blank=True, trim_whitespace=False
    )
    statement = serializers.CharField(
        allow_blank=True, max_length=10000, validators=[no_control_characters]
    )
    signer_name = serializers.CharField(
        allow_blank=True, max_length=200, validators=[no_control_characters]
    )
    signer_role = serializers.CharField(
        allow_blank=True, max_length=200, default="", validators=[no_control_characters]
    )


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(
        allow_blank=True, max_length=10000, validators=[no_control_characters]
    )
