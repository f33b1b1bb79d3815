"""The scoring API: start a scoring of a study (202) and read runs with their results (the
whole study's, and the caller's sites')."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from kpi.definitions.api import BY_STUDY, study_field
from surveys import scoping
from surveys.api.filters import IdFilter
from surveys.api.permissions import ScopedViewMixin
from surveys.ids import ID_PATTERN, as_id
from surveys.models import Study

from . import crosstab_views
from .counting import study_forms
from .crosstab import By
from .crosstab_form import CrosstabForm
from .models import RESULT_FIELDS, EvaluationRun, KPIResult, StudyResults
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


# --- Frequencies and cross-tabs -------------------------------------------------------


class CrosstabQuestionSerializer(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()
    type = serializers.CharField()
    multiple = serializers.BooleanField()
    conditional = serializers.BooleanField()


class CrosstabColumnSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="A site code, a choice code, `in`/`out` of the "
        "segment, `_none` (no answer) or `_total`."
    )
    label = serializers.CharField()
    total = serializers.BooleanField(help_text="The total over the caller's sites.")
    respondents = serializers.IntegerField(source="counts.respondents")
    shown = serializers.IntegerField(
        source="counts.shown", help_text="Respondents shown the question."
    )
    answered = serializers.IntegerField(
        source="counts.answered", help_text="Respondents who answered it: the base of the shares."
    )


class CrosstabCellSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    base = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True, help_text="n / base, between 0 and 1.")
    low = serializers.FloatField(allow_null=True, help_text="Wilson interval, lower bound.")
    high = serializers.FloatField(allow_null=True, help_text="Wilson interval, upper bound.")


class CrosstabRowSerializer(serializers.Serializer):
    code = serializers.CharField(source="item.code")
    label = serializers.CharField(source="item.label")
    cells = CrosstabCellSerializer(many=True, help_text="One per column, in order.")


class CrosstabSerializer(serializers.Serializer):
    study = serializers.IntegerField(source="study.pk")
    question = CrosstabQuestionSerializer()
    by = serializers.CharField()
    by_label = serializers.CharField()
    scope = serializers.CharField(
        help_text="Whose responses: the whole study, or the caller's sites."
    )
    confidence = serializers.DecimalField(
        source="confidence_percent", max_digits=4, decimal_places=1, help_text="In percent."
    )
    cutoff = serializers.DateTimeField()
    caption = serializers.CharField(source="describe", help_text="What is counted, over whom.")
    columns = CrosstabColumnSerializer(many=True)
    rows = CrosstabRowSerializer(many=True)


CROSSTAB_PARAMETERS = [
    OpenApiParameter("study", int, required=True, description="The study's id."),
    OpenApiParameter(
        "question",
        str,
        required=True,
        description="A closed question's code (single or multiple choice, four-point scale).",
    ),
    OpenApiParameter("by", str, enum=[b.value for b in By], description="The columns."),
    OpenApiParameter("segment", int, description="A segment's id, with `by=segment`."),
    OpenApiParameter(
        "by_question", str, description="Another closed question's code, with `by=question`."
    ),
    OpenApiParameter(
        "confidence",
        float,
        description="The intervals' confidence level in percent (50 to 99.9, default 95).",
    ),
]


class CrosstabView(GenericAPIView):
    """Frequencies and cross-tabs of a closed question, over the caller's sites only."""

    queryset = StudyResults.objects.all()  # for the permission: kpi.view_studyresults
    serializer_class = CrosstabSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        parameters=CROSSTAB_PARAMETERS,
        responses={200: CrosstabSerializer},
        description="Counts and shares of respondents, with Wilson intervals, of one closed "
        "question: overall, or by site, by a segment (in / not in) or by another closed "
        "question. Only submitted responses of the caller's sites are counted, the total "
        "column included. The base of a share is the respondents of its column who "
        "answered the question; with multiple choice a respondent counts in every row they "
        "chose, so the shares of a column can add up to more than 1.",
    )
    def get(self, request: Request) -> Response:
        study_id = as_id(request.query_params.get("study"))
        study = (
            scoping.studies(request.user, Study.objects.filter(pk=study_id)).first()
            if study_id
            else None
        )
        if study is None:
            raise NotFound(_("No such study among yours."))
        form = CrosstabForm(request.query_params, study=study, forms_=study_forms(study.pk))
        if not form.is_valid():
            raise ValidationError(
                {
                    field: [e["message"] for e in errors]
                    for field, errors in form.errors.get_json_data().items()
                }
            )
        table = crosstab_views.build(request.user, study, form)
        return Response(CrosstabSerializer(table).data)
