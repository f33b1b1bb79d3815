"""The scoring API: start a scoring of a study (202) and read runs with their results (the
whole study's, and the caller's sites')."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from kpi.definitions.api import BY_STUDY, study_field
from surveys import scoping
from surveys.api.filters import IdFilter
from surveys.api.permissions import ScopedViewMixin
from surveys.ids import ID_PATTERN

from .models import RESULT_FIELDS, EvaluationRun, KPIResult
from .services import run_request

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
    study = study_field()


# --- Runs -----------------------------------------------------------------------------


class RunFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")

    class Meta:
        model = EvaluationRun
        fields = ["study", "status", "trigger"]


class RunViewSet(
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Scorings of the caller's studies. POST starts one (202, ``Location`` the run);
    GET on the run shows its status and, once it succeeded, its results."""

    scope = BY_STUDY
    filterset_class = RunFilter
    lookup_value_regex = ID_PATTERN
    action_permissions = {"create": ["kpi.score_study"]}

    def base_queryset(self) -> QuerySet[EvaluationRun]:
        return EvaluationRun.objects.order_by("-created_at", "-pk")

    def get_serializer_class(self) -> type:
        if self.action == "create":
            return RunCreateSerializer
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def results(self, run: EvaluationRun) -> QuerySet[KPIResult]:
        results = KPIResult.objects.filter(run=run).select_related("site")
        per_site = scoping.by_site_lookup(
            self.request.user, results.filter(site__isnull=False), "site_id"
        )
        return (results.filter(site__isnull=True) | per_site).order_by(
            "order", "kpi_code", "site__code"
        )

    @extend_schema(responses={200: RunDetailSerializer})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = self.get_object()
        context = {**self.get_serializer_context(), "results": self.results(run)}
        return Response(RunDetailSerializer(run, context=context).data)

    @extend_schema(
        request=RunCreateSerializer,
        responses={202: RunSerializer},
        description="Start a scoring of the study: 202 Accepted with the run, whose URL is "
        "in `Location` and `url`; poll it until `status` is succeeded or failed.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = run_request(
            study=serializer.validated_data["study"],
            trigger=EvaluationRun.Trigger.API,
            user=request.user,
        )
        run.refresh_from_db()  # without a broker the scoring has already run
        return Response(
            RunSerializer(run).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": reverse("api:run-detail", args=[run.pk])},
        )
