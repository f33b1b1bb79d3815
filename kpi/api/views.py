"""The KPI API: definitions (segments, KPIs), scoring runs with their results, evaluations
(create, sign off, withdraw, download).

KPIs, segments, runs and evaluations are study-wide: members of any site of the study see
them (``surveys/scoping.py``'s ``by_study_lookup``); writing takes the manager role, and
signing off or withdrawing the signer role. Per-site results are shown only for the
caller's own sites.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from surveys import scoping
from surveys.api.filters import IdFilter
from surveys.api.negotiation import FileContentNegotiation
from surveys.api.permissions import VIEWER, ScopedViewMixin, study_scope
from surveys.errors import RuleViolation
from surveys.ids import ID_PATTERN
from surveys.models import Choice, Site

from .. import definition_services, evaluations
from ..models import KPI, Clause, Evaluation, EvaluationRun, KPIResult, Segment
from ..services import run_request
from .serializers import (
    EvaluationCreateSerializer,
    EvaluationSerializer,
    EvaluationUpdateSerializer,
    KPISerializer,
    RunCreateSerializer,
    RunDetailSerializer,
    RunSerializer,
    SegmentSerializer,
    SignOffSerializer,
    WithdrawSerializer,
)

ID = ID_PATTERN
BY_STUDY = staticmethod(study_scope("study_id"))


class PdfNotReady(RuleViolation):
    code = "pdf_not_ready"
    default_message = _("The signed PDF is not ready yet.")


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
    lookup_value_regex = ID

    def base_queryset(self) -> QuerySet[Segment]:
        clauses = Clause.objects.select_related("question").prefetch_related(
            Prefetch("choices", queryset=Choice.objects.order_by("order"))
        )
        return Segment.objects.prefetch_related(Prefetch("clauses", queryset=clauses)).order_by(
            "study__code", "code"
        )

    def perform_destroy(self, instance: Segment) -> None:
        definition_services.segment_delete(segment=instance, user=self.request.user)


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
    lookup_value_regex = ID

    def base_queryset(self) -> QuerySet[KPI]:
        return KPI.objects.order_by("study__code", "order", "code")

    def perform_destroy(self, instance: KPI) -> None:
        definition_services.kpi_delete(kpi=instance, user=self.request.user)


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
    lookup_value_regex = ID
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


# --- Evaluations ----------------------------------------------------------------------


class EvaluationFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")
    run = IdFilter(field_name="run_id")

    class Meta:
        model = Evaluation
        fields = ["study", "run", "status", "language"]


class EvaluationViewSet(
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Evaluations of the caller's studies: a draft made from a succeeded run, signed off
    (the signer role, the permission kpi.sign_off_evaluation, the password and a
    statement), then frozen: any change answers 409 ``evaluation_frozen``. The report
    (PDF) holds every site's results, so reading, signing or withdrawing it takes a role on
    every site of the study."""

    scope = BY_STUDY
    filterset_class = EvaluationFilter
    lookup_value_regex = ID
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_permissions = {
        "sign_off": ["kpi.sign_off_evaluation"],
        "withdraw": ["kpi.withdraw_evaluation"],
        "pdf": ["kpi.view_evaluation"],
    }
    # Signing off and withdrawing: ``evaluations.may_sign`` decides, as in the admin.
    action_roles = {"sign_off": VIEWER, "withdraw": VIEWER, "pdf": VIEWER}
    throttle_scope: str | None = None  # sign-off: "login" (it takes a password)

    def base_queryset(self) -> QuerySet[Evaluation]:
        return Evaluation.objects.select_related("study").order_by("-created_at", "-pk")

    def get_serializer_class(self) -> type:
        return {
            "create": EvaluationCreateSerializer,
            "partial_update": EvaluationUpdateSerializer,
            "sign_off": SignOffSerializer,
            "withdraw": WithdrawSerializer,
        }.get(self.action or "", EvaluationSerializer)

    def check_sees_whole_study(self, evaluation: Evaluation) -> None:
        """The report shows every site's results: only someone who may see every site of
        the study (a role on each, or a superuser) may read it (signing it off and
        withdrawing it ask ``evaluations.may_sign``, which holds this rule too)."""
        sites = Site.objects.filter(study_id=evaluation.study_id)
        if scoping.sites(self.request.user, sites).count() != sites.count():
            self.permission_denied(self.request)

    def _answer(self, evaluation: Evaluation, code: int = status.HTTP_200_OK) -> Response:
        evaluation.refresh_from_db()
        headers = {"Location": reverse("api:evaluation-detail", args=[evaluation.pk])}
        return Response(EvaluationSerializer(evaluation).data, status=code, headers=headers)

    @extend_schema(request=EvaluationCreateSerializer, responses={201: EvaluationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evaluation = evaluations.evaluation_create(
            run=serializer.validated_data["run"],
            user=request.user,
            language=serializer.validated_data["language"],
        )
        return self._answer(evaluation, status.HTTP_201_CREATED)

    @extend_schema(
        request=EvaluationUpdateSerializer,
        responses={
            200: EvaluationSerializer,
            409: OpenApiResponse(description="`evaluation_frozen`"),
        },
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        evaluation = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evaluation = evaluations.evaluation_update_draft(
            evaluation=evaluation, user=request.user, **serializer.validated_data
        )
        return self._answer(evaluation)

    @extend_schema(
        request=SignOffSerializer,
        responses={
            200: EvaluationSerializer,
            409: OpenApiResponse(description="`evaluation_frozen`"),
        },
        description="Sign off a draft with the caller's password and a statement; the "
        "signed PDF is rendered after (``rendering`` pending, then done).",
    )
    @action(detail=True, methods=["post"], url_path="sign-off", throttle_scope="login")
    def sign_off(self, request: Request, pk: str | None = None) -> Response:
        evaluation = self.get_object()
        if not evaluations.may_sign(request.user, evaluation, permission=evaluations.SIGN_OFF):
            self.permission_denied(request)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evaluation = evaluations.evaluation_sign_off(
            evaluation=evaluation, user=request.user, **serializer.validated_data
        )
        return self._answer(evaluation)

    @extend_schema(request=WithdrawSerializer, responses={200: EvaluationSerializer})
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        evaluation = self.get_object()
        if not evaluations.may_sign(request.user, evaluation, permission=evaluations.WITHDRAW):
            self.permission_denied(request)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evaluation = evaluations.evaluation_withdraw(
            evaluation=evaluation, user=request.user, reason=serializer.validated_data["reason"]
        )
        return self._answer(evaluation)

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The signed PDF once signed off; a draft's unsigned preview "
                "before. The file name says study, evaluation, state and language.",
            ),
            409: OpenApiResponse(description="`pdf_not_ready`"),
        }
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileContentNegotiation)
    def pdf(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        evaluation = self.get_object()
        self.check_sees_whole_study(evaluation)
        name = evaluations.download_name(evaluation)
        if evaluation.pdf:
            # A signed report is a few hundred kB: read whole, so no file handle outlives
            # the request whatever the client does with the answer.
            with evaluation.pdf.open("rb") as stored:
                pdf = stored.read()
        elif evaluation.is_frozen:
            raise PdfNotReady()
        else:
            pdf = evaluations.evaluation_preview(evaluation)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
