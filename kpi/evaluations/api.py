"""The evaluations API: create a draft from a run, change its language, sign it off,
withdraw it, download its PDF. Signing off and withdrawing ask ``services.may_sign``, as
the admin does."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from kpi.definitions.api import BY_STUDY
from kpi.scoring.models import EvaluationRun
from surveys import scoping
from surveys.api.filters import IdFilter
from surveys.api.negotiation import FileContentNegotiation
from surveys.api.permissions import (
    MANAGER,
    VIEWER,
    ScopedRelatedField,
    ScopedViewMixin,
    study_scope,
)
from surveys.errors import RuleViolation
from surveys.ids import ID_PATTERN
from surveys.models import Language, Site
from surveys.text import no_control_characters

from . import rendering
from . import services as evaluations
from .models import Evaluation


class PdfNotReady(RuleViolation):
    code = "pdf_not_ready"
    default_message = gettext_lazy("The signed PDF is not ready yet.")


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
    lookup_value_regex = ID_PATTERN
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
        name = rendering.download_name(evaluation)
        if evaluation.pdf:
            # A signed report is a few hundred kB: read whole, so no file handle outlives
            # the request whatever the client does with the answer.
            with evaluation.pdf.open("rb") as stored:
                pdf = stored.read()
        elif evaluation.is_frozen:
            raise PdfNotReady()
        else:
            pdf = rendering.evaluation_preview(evaluation)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
