"""The registration API: register a study's KPI specification (the signer's authority,
the password again and a statement), read registrations with what they registered, and
record a deviation from one. Scoped to the caller's studies, as the admin; who may register
or deviate is ``services.may_register``'s answer, as in the admin."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

import django_filters
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from kpi.definitions.api import BY_STUDY, STUDY_SCOPE
from kpi.definitions.models import KPI
from kpi.definitions.services import KPIFields
from kpi.scoring.statistics import Comparator, Rule
from surveys.api.filters import IdFilter
from surveys.api.permissions import VIEWER, ScopedRelatedField, ScopedViewMixin, study_scope
from surveys.ids import ID_PATTERN
from surveys.models import Study
from surveys.text import no_control_characters

from . import services
from .models import Deviation, Registration


class DeviationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Deviation
        fields = [
            "id",
            "registration",
            "what",
            "old_value",
            "new_value",
            "reason",
            "made_by",
            "made_at",
        ]
        read_only_fields = fields


class RegistrationSerializer(serializers.ModelSerializer):
    specification = serializers.SerializerMethodField()
    deviations = DeviationSerializer(many=True, read_only=True)

    class Meta:
        model = Registration
        fields = [
            "id",
            "study",
            "instrument",
            "sha256",
            "timestamped_at",
            "registered_by",
            "registered_at",
            "statement",
            "specification",
            "deviations",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_specification(self, registration: Registration) -> Any:
        """The registered canonical JSON, parsed (its bytes hash to ``sha256``)."""
        return json.loads(bytes(registration.canonical_json))


PASSWORD = {"write_only": True, "max_length": 4096, "allow_blank": True, "trim_whitespace": False}


class RegisterSerializer(serializers.Serializer):
    study = ScopedRelatedField(scope=STUDY_SCOPE, at_least=VIEWER, queryset=Study.objects.all())
    password = serializers.CharField(**PASSWORD)
    statement = serializers.CharField(
        allow_blank=True, max_length=10000, validators=[no_control_characters]
    )


class DeviateSerializer(serializers.Serializer):
    """A change to one registered KPI's target and judgement, with its reason."""

    kpi = ScopedRelatedField(
        scope=study_scope("study_id"), at_least=VIEWER, queryset=KPI.objects.all()
    )
    comparator = serializers.ChoiceField(
        choices=["", *(c.value for c in Comparator)], required=False
    )
    threshold = serializers.DecimalField(
        max_digits=9, decimal_places=4, allow_null=True, required=False
    )
    rule = serializers.ChoiceField(choices=[r.value for r in Rule], required=False)
    confidence = serializers.DecimalField(
        max_digits=4,
        decimal_places=3,
        min_value=Decimal("0.5"),
        max_value=Decimal("0.999"),
        required=False,
    )
    min_n = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    active = serializers.BooleanField(required=False)
    password = serializers.CharField(**PASSWORD)
    reason = serializers.CharField(
        allow_blank=True, max_length=10000, validators=[no_control_characters]
    )


CHANGEABLE = ("comparator", "threshold", "rule", "confidence", "min_n", "active")


class RegistrationFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")

    class Meta:
        model = Registration
        fields = ["study"]


class PasswordOnCreate:
    """Creating one is an act confirmed by the password: throttled as logins are (the
    ``login`` scope), reading is not. DRF's ``@action(throttle_scope=...)`` cannot reach
    the viewset's own ``create``."""

    action: str | None
    throttle_scope: str | None = None

    def get_throttles(self) -> list:
        self.throttle_scope = "login" if self.action == "create" else None
        return super().get_throttles()  # type: ignore[misc]


class RegistrationViewSet(
    PasswordOnCreate,
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Registrations of the caller's studies. ``POST`` registers a study's specification
    before its fieldwork (the signer role in the study, the permission
    kpi.add_registration, the password and a statement); it is signed and timestamped by
    the time-stamping authority, and then locked: a change is a deviation
    (``/deviations/``)."""

    scope = BY_STUDY
    filterset_class = RegistrationFilter
    lookup_value_regex = ID_PATTERN

    def base_queryset(self) -> QuerySet[Registration]:
        return Registration.objects.select_related("study").prefetch_related("deviations")

    def get_serializer_class(self) -> type:
        return RegisterSerializer if self.action == "create" else RegistrationSerializer

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: RegistrationSerializer,
            400: OpenApiResponse(description="`registration_refused`"),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        study = serializer.validated_data["study"]
        if not services.may_register(request.user, study):
            self.permission_denied(request)
        registration = services.register(
            study=study,
            user=request.user,  # type: ignore[arg-type]
            password=serializer.validated_data["password"],
            statement=serializer.validated_data["statement"],
        )
        headers = {"Location": reverse("api:registration-detail", args=[registration.pk])}
        body = RegistrationSerializer(registration).data
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)


class DeviationFilter(django_filters.FilterSet):
    registration = IdFilter(field_name="registration_id")

    class Meta:
        model = Deviation
        fields = ["registration"]


class DeviationViewSet(
    PasswordOnCreate,
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Deviations from the caller's studies' registrations. ``POST`` changes one registered
    KPI's target or judgement and records it (the signer role, kpi.add_deviation, the
    password and a reason)."""

    scope = staticmethod(study_scope("registration__study_id"))
    filterset_class = DeviationFilter
    lookup_value_regex = ID_PATTERN

    def base_queryset(self) -> QuerySet[Deviation]:
        return Deviation.objects.order_by("made_at", "pk")

    def get_serializer_class(self) -> type:
        return DeviateSerializer if self.action == "create" else DeviationSerializer

    @extend_schema(
        request=DeviateSerializer,
        responses={
            201: DeviationSerializer,
            400: OpenApiResponse(description="`deviation_refused`"),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        kpi = data["kpi"]
        if not services.may_register(request.user, kpi.study, permission=services.DEVIATE):
            self.permission_denied(request)
        deviation = services.kpi_deviate(
            kpi=kpi,
            fields=cast(KPIFields, {name: data[name] for name in CHANGEABLE if name in data}),
            user=request.user,  # type: ignore[arg-type]
            password=data["password"],
            reason=data["reason"],
        )
        headers = {"Location": reverse("api:deviation-detail", args=[deviation.pk])}
        return Response(
            DeviationSerializer(deviation).data, status=status.HTTP_201_CREATED, headers=headers
        )
