"""The scoring API: start a scoring of a study (202) and read runs with their results (the
whole study's, and the caller's sites')."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
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

from . import crosstab_views, disclosure, selectors
from .counting import study_forms
from .crosstab import By
from .crosstab_form import CrosstabForm
from .models import INVITED_FIGURES, RESULT_FIELDS, EvaluationRun, KPIResult, StudyResults
from .services import run_request
from .statistics import Verdict

# --- Runs and results -----------------------------------------------------------------


#: What a withheld count takes with it: each of these gives the count back.
WITHHELD_FIGURES = (
    "value",
    "ci_low",
    "ci_high",
    "met_point",
    "met_with_confidence",
    "nonresponse_low",
    "nonresponse_high",
    "tipping_direction",
    "tipping_count",
)


class KPIResultSerializer(serializers.ModelSerializer):
    site_code = serializers.CharField(source="site.code", read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True)
    base_description = serializers.CharField(read_only=True)
    withheld = serializers.SerializerMethodField(
        help_text="Small-cell protection of a site's result (the study's "
        "`small_cell_threshold`): each withheld count by name (`numerator`, `denominator`, "
        "`respondents`, `overlap`) with its mark, `<5` (a count from 1 to 4) or `x` "
        "(withheld so that one cannot be worked out); those counts, the value, interval, "
        "non-response range and tipping point are null, and the verdict is `inconclusive`. "
        "Null when nothing is withheld; always null for the whole study (`site` null)."
    )
    verdict_reason = serializers.SerializerMethodField(
        help_text="`too_few_to_publish` when the base is withheld, `small_count` when the "
        "numerator is; else null."
    )

    class Meta:
        model = KPIResult
        fields = [
            "id",
            "kpi",
            "site",
            "site_code",
            "name",
            "base_description",
            *RESULT_FIELDS,
            "withheld",
            "verdict_reason",
        ]
        read_only_fields = fields

    def _cells(self, result: KPIResult) -> disclosure.ResultCells | None:
        protection = self.context.get("protection")
        if protection is None or result.site_id is None:
            return None
        cells: disclosure.ResultCells = protection.cells(result)
        return None if cells.figures and cells.respondents and cells.invited else cells

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "string"}, "nullable": True}
    )
    def get_withheld(self, result: KPIResult) -> dict[str, str] | None:
        cells = self._cells(result)
        if cells is None:
            return None
        return cells.count_marks(has_overlap=result.overlap is not None)

    def get_verdict_reason(self, result: KPIResult) -> str | None:
        cells = self._cells(result)
        if cells is None or cells.figures:
            return None
        return "too_few_to_publish" if cells.too_few else "small_count"

    def to_representation(self, instance: KPIResult) -> dict[str, Any]:
        data = super().to_representation(instance)
        withheld = data.get("withheld") or {}
        for name in withheld:
            data[name] = None
        if "invited" in withheld:
            for name in INVITED_FIGURES:
                data[name] = None
        if data.get("verdict_reason"):
            for name in WITHHELD_FIGURES:
                data[name] = None
            if data.get("verdict"):
                data["verdict"] = Verdict.INCONCLUSIVE
        return data


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
        context = {"protection": self.context.get("protection")}
        return KPIResultSerializer(self.context["results"], many=True, context=context).data


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
        context = {
            **self.get_serializer_context(),
            "results": self.results(run),
            "protection": selectors.run_protection(run),
        }
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
    respondents = serializers.IntegerField(source="counts.respondents", allow_null=True)
    shown = serializers.IntegerField(
        source="counts.shown", allow_null=True, help_text="Respondents shown the question."
    )
    answered = serializers.IntegerField(
        source="counts.answered",
        allow_null=True,
        help_text="Respondents who answered it: the base of the shares.",
    )
    withheld = serializers.SerializerMethodField(
        help_text="Small-cell protection: each withheld count of the column (`respondents`, "
        "`shown`, `answered`) by name with its mark, `<5` (a count from 1 to 4, with the "
        "study's threshold 5) or `x` (withheld so that one cannot be worked out); those "
        "counts are null. Null when nothing is withheld; the whole study's column never is."
    )

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "string"}, "nullable": True}
    )
    def get_withheld(self, column: Any) -> dict[str, str] | None:
        return None  # filled in by CrosstabSerializer, which knows the protection


class CrosstabCellSerializer(serializers.Serializer):
    n = serializers.IntegerField(allow_null=True, help_text="Null when withheld.")
    base = serializers.IntegerField(allow_null=True, help_text="Null when withheld.")
    share = serializers.FloatField(allow_null=True, help_text="n / base, between 0 and 1.")
    low = serializers.FloatField(allow_null=True, help_text="Wilson interval, lower bound.")
    high = serializers.FloatField(allow_null=True, help_text="Wilson interval, upper bound.")
    withheld = serializers.SerializerMethodField(
        help_text="`<5` (a count from 1 to 4, with the study's threshold 5) or `x` when `n` "
        "is withheld (then `n`, `share`, `low` and `high` are null); null otherwise."
    )

    def get_withheld(self, cell: Any) -> str | None:
        return None  # filled in by CrosstabSerializer, which knows the protection


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
    small_cell_threshold = serializers.IntegerField(
        source="protection.k",
        help_text="Counts from 1 to this minus one are withheld (1: none).",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """The withheld counts null, with their marks (``Table.chosen``, ``.figure``)."""
        data = super().to_representation(instance)
        table = instance
        for column, out in zip(table.columns, data["columns"], strict=True):
            marks = {}
            for name in ("respondents", "shown", "answered"):
                if (shown := table.figure(name, column)).n is None:
                    marks[name] = shown.mark
            for name in marks:
                out[name] = None
            out["withheld"] = marks or None
        for row, out in zip(table.rows, data["rows"], strict=True):
            for column, cell in zip(table.columns, out["cells"], strict=True):
                shown = table.chosen(row.item.code, column)
                if table.figure("answered", column).n is None:
                    cell["base"] = None
                if shown.n is None:
                    cell["n"] = None
                    cell["withheld"] = shown.mark
                if table.share_hidden(row.item.code, column):
                    cell["share"] = cell["low"] = cell["high"] = None
        return data


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
