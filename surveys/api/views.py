"""The survey API: studies, sites, published instruments, participants, responses, and the
participant's own questionnaire by invitation token.

Views are thin: scope (``permissions.ScopedViewMixin`` over ``surveys/scoping.py``),
validate (serializers), call a service, serialize. Rule violations propagate to the one
exception handler (``config/api/exceptions.py``).
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from django.db.models import F, Prefetch, QuerySet
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response as APIResponse
from rest_framework.views import APIView

from .. import scoping, services
from ..answers import InstrumentForm
from ..draft_saves import draft_save_wait
from ..errors import AlreadySubmitted, RuleViolation
from ..ids import ID_PATTERN
from ..models import (
    Choice,
    Instrument,
    Language,
    Participant,
    Question,
    Response,
    Site,
    Study,
)
from ..selectors import instrument_current, response_for_participant
from ..submission import Link, link_for_token
from ..token_attempts import failed_lookup
from . import exports as exports_api
from .filters import InstrumentFilter, ParticipantFilter, ResponseFilter, SiteFilter
from .negotiation import FileContentNegotiation
from .parsers import JSONParser
from .permissions import MANAGER, ScopedViewMixin, study_scope
from .serializers import (
    AnswersInputSerializer,
    ImportResultSerializer,
    InstrumentSerializer,
    InvitationCreatedSerializer,
    InvitationSerializer,
    OwnResponseSerializer,
    ParticipantCreateSerializer,
    ParticipantImportSerializer,
    ParticipantSerializer,
    ResponseDetailSerializer,
    ResponseSerializer,
    SiteSerializer,
    StudySerializer,
)

ID = ID_PATTERN


# --- Studies, sites, instruments ------------------------------------------------------


class StudyViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Studies of which the caller is a member (through any of their sites)."""

    serializer_class = StudySerializer
    scope = staticmethod(scoping.studies)
    filterset_fields = ["code", "status"]
    lookup_value_regex = ID

    def base_queryset(self) -> QuerySet[Study]:
        return Study.objects.order_by("-period_start", "code")


class SiteViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's sites."""

    serializer_class = SiteSerializer
    scope = staticmethod(scoping.sites)
    filterset_class = SiteFilter
    lookup_value_regex = ID

    def base_queryset(self) -> QuerySet[Site]:
        return Site.objects.order_by("study__code", "code")


class InstrumentViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Published (and retired) questionnaire versions of the caller's studies, with their
    questions and choices; labels in the request's language and in both."""

    serializer_class = InstrumentSerializer
    scope = staticmethod(study_scope("study_id"))
    filterset_class = InstrumentFilter
    lookup_value_regex = ID

    def base_queryset(self) -> QuerySet[Instrument]:
        return (
            Instrument.objects.exclude(status=Instrument.Status.DRAFT)
            .prefetch_related(*QUESTION_PREFETCH)
            .order_by("study__code", "-version")
        )


QUESTION_PREFETCH = [
    Prefetch(
        "questions",
        queryset=Question.objects.select_related("condition_question")
        .prefetch_related(
            Prefetch("choices", queryset=Choice.objects.order_by("order")), "condition_choices"
        )
        .order_by("order"),
    )
]


# --- Participants ---------------------------------------------------------------------


class ParticipantViewSet(
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Participants of the caller's sites. Creating one (or importing many) needs the
    manager role on their site; the answer holds the invitation link (the stable one,
    ``surveys/links.py``: the admin's export gives the same link later)."""

    scope = staticmethod(scoping.participants)
    filterset_class = ParticipantFilter
    lookup_value_regex = ID
    action_permissions = {"import_csv": ["surveys.add_participant"]}

    def base_queryset(self) -> QuerySet[Participant]:
        return (
            Participant.objects.select_related("site")
            .annotate(response_pk=F("response__pk"), response_status=F("response__status"))
            # The order of the (site, reference) unique index: a page is read from it.
            .order_by("site_id", "reference")
        )

    def get_serializer_class(self) -> type:
        if self.action == "create":
            return ParticipantCreateSerializer
        if self.action == "import_csv":
            return ParticipantImportSerializer
        return ParticipantSerializer

    def _created(self, invitations: list[services.Invitation]) -> list[Participant]:
        participants = []
        for invitation in invitations:
            participant = invitation.participant
            participant.response_pk = None  # type: ignore[attr-defined]
            participant.response_status = None  # type: ignore[attr-defined]
            participant.invitation_url = invitation.url  # type: ignore[attr-defined]
            participant.token = invitation.token  # type: ignore[attr-defined]
            participants.append(participant)
        return participants

    @extend_schema(
        request=ParticipantCreateSerializer, responses={201: InvitationCreatedSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> APIResponse:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = services.participant_create(
            site=serializer.validated_data["site"],
            reference=serializer.validated_data["reference"],
        )
        (participant,) = self._created([invitation])
        location = reverse("api:participant-detail", args=[participant.pk])
        return APIResponse(
            InvitationCreatedSerializer(participant).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    @extend_schema(
        request={"multipart/form-data": ParticipantImportSerializer},
        responses={201: ImportResultSerializer},
        description="CSV upload (columns reference,site): every row is checked first; if "
        "any is wrong nothing is imported and `fields` maps row numbers (the header is "
        "row 1) to messages. The answer holds each participant's stable link.",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        url_name="import",
        parser_classes=[parsers.MultiPartParser],
    )
    def import_csv(self, request: Request) -> APIResponse:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        study = serializer.validated_data["study"]
        data = serializer.validated_data["file"].read()
        # Only the sites the caller manages exist for the import: a row for any other
        # answers as one for a site that exists nowhere, whatever that site holds.
        mine = scoping.sites(request.user, study.sites.all(), at_least=MANAGER)
        invitations = services.participants_import_csv(study=study, data=data, sites=mine)
        participants = self._created(invitations)
        body = {"created": len(participants), "participants": participants}
        return APIResponse(ImportResultSerializer(body).data, status=status.HTTP_201_CREATED)


# --- Responses ------------------------------------------------------------------------


class ResponseViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Responses of the caller's sites, with filters; ``export/`` streams them as CSV."""

    scope = staticmethod(scoping.responses)
    filterset_class = ResponseFilter
    lookup_value_regex = ID

    def base_queryset(self) -> QuerySet[Response]:
        # Newest submissions first, then drafts, as in the admin: the order of the
        # ``response_newest_first`` index, from which a page is read.
        return Response.objects.select_related("site", "participant", "instrument").order_by(
            F("submitted_at").desc(nulls_last=True), "-started_at", "-pk"
        )

    def get_serializer_class(self) -> type:
        return ResponseDetailSerializer if self.action == "retrieve" else ResponseSerializer

    @extend_schema(
        parameters=exports_api.EXPORT_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="One row per response: its facts, then per question the choice "
                "codes (several joined by |) or the value, and `<code>__label` with the "
                "choices' labels in the request's language. UTF-8 with a byte-order mark.",
            ),
            **exports_api.FILE_RESPONSES,
        },
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="export",
        url_name="export",
        content_negotiation_class=FileContentNegotiation,
        pagination_class=None,
    )
    def export(self, request: Request) -> HttpResponseBase:
        """The filtered responses as CSV (streamed: any number of rows, flat memory), XLSX,
        SPSS or Stata, written in the request and recorded; large files: ``/exports/``."""
        return exports_api.export_response(request, self.filter_queryset(self.get_queryset()))


# --- The participant's side: by invitation token --------------------------------------


class IdempotencyKeyInvalid(RuleViolation):
    code = "idempotency_key_invalid"
    default_message = gettext_lazy("The Idempotency-Key header is not valid.")


class IdempotencyKeyReused(RuleViolation):
    code = "idempotency_key_reused"
    default_message = gettext_lazy(
        "This Idempotency-Key was used for a submission with other answers."
    )


class TooManyAttempts(Throttled):
    """429 ``throttled`` with ``Retry-After``: this client tried too many invalid tokens."""

    default_detail = gettext_lazy(
        "Too many invalid invitation links from this connection: wait a minute and try again."
    )


class TooManyDraftSaves(Throttled):
    """429 ``throttled`` with ``Retry-After``: this link saved its draft too often."""

    default_detail = gettext_lazy(
        "Your answers are being saved too often. Wait a minute, then save again."
    )


IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")

TOKEN_PARAMETER = OpenApiParameter(
    "token", OpenApiTypes.STR, OpenApiParameter.PATH, description="The invitation token."
)


class InvitationAPIView(APIView):
    """The token is the credential: no login, no session (so no CSRF to pass), and every
    invalid token (unknown, replaced, withdrawn, malformed) answers the same 404."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    def link(self, token: str) -> Link:
        link = link_for_token(token)
        if link is None:
            # Counted only on failure: a valid token makes no cache round trip.
            wait = failed_lookup(self.request._request)
            if wait is not None:
                raise TooManyAttempts(wait=wait)
            raise NotFound()
        return link

    def language(self, link: Link, data: dict[str, Any]) -> str:
        return data.get("language") or link.site.study.default_language or Language.JA


class InvitationView(InvitationAPIView):
    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={200: InvitationSerializer},
        description="The participant's questionnaire: study, site (open or not), the "
        "instrument they answer and their response so far (null before the first save).",
    )
    def get(self, request: Request, token: str) -> APIResponse:
        participant = self.link(token).participant
        response = response_for_participant(participant)
        instrument = response.instrument if response else instrument_current(participant.site.study)
        if instrument is not None:
            instrument = Instrument.objects.prefetch_related(*QUESTION_PREFETCH).get(
                pk=instrument.pk
            )
        state = SimpleNamespace(site=participant.site, instrument=instrument, response=response)
        return APIResponse(InvitationSerializer(state).data)


class InvitationDraftView(InvitationAPIView):
    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        request=AnswersInputSerializer,
        responses={
            200: OwnResponseSerializer,
            403: OpenApiResponse(description="`survey_closed`"),
            409: OpenApiResponse(description="`already_submitted`"),
            429: OpenApiResponse(
                description="`throttled`: the link saved too often (`HYOKA_DRAFT_SAVE_RATE`); "
                "`Retry-After` says when to save again."
            ),
        },
        description="Keep the answers as the participant's draft (the whole questionnaire "
        "as it stands; unanswered questions are fine). Invalid values: 400 "
        "`answers_invalid` with messages per question code, nothing stored.",
    )
    def put(self, request: Request, token: str) -> APIResponse:
        link = self.link(token)
        wait = draft_save_wait(request._request, link.participant)
        if wait is not None:
            raise TooManyDraftSaves(wait=wait)
        serializer = AnswersInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        response = services.response_save_draft(
            participant=link,
            answers=serializer.validated_data["answers"],
            language=self.language(link, serializer.validated_data),
            source=Response.Source.API,
        )
        return APIResponse(OwnResponseSerializer(response).data)


class InvitationSubmitView(InvitationAPIView):
    @extend_schema(
        parameters=[
            TOKEN_PARAMETER,
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="1–64 printable ASCII characters, new for each submission. A "
                "retry with the same key after a success answers 200 with the same "
                "response (header Idempotent-Replayed: true) instead of 409.",
            ),
        ],
        request=AnswersInputSerializer,
        responses={
            201: OwnResponseSerializer,
            200: OpenApiResponse(OwnResponseSerializer, description="A replayed retry."),
            403: OpenApiResponse(description="`survey_closed`"),
            409: OpenApiResponse(description="`already_submitted`"),
            422: OpenApiResponse(description="`idempotency_key_reused`"),
        },
        description="Submit the participant's answers, once: every shown required question "
        "answered and every value valid (the web questionnaire's rules), or 400 "
        "`answers_invalid` with messages per question code and nothing stored.",
    )
    def post(self, request: Request, token: str) -> APIResponse:
        # With the response as it is now: whether this may be a retry, and, for the
        # submission, whether there is a draft to submit.
        link = self.link(token)
        participant = link.participant
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise IdempotencyKeyInvalid(
                errors={"Idempotency-Key": _("Use 1 to 64 printable ASCII characters.")}
            )
        serializer = AnswersInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answers = serializer.validated_data["answers"]
        seen = link.response  # from the lookup, no query
        if seen is not None and seen.is_submitted:
            replay = self.replay(participant, key, answers)
            if replay is not None:
                return replay
        try:
            # The key is stored with the submission, in its transaction: a concurrent retry
            # waits on the participant's row lock, then finds the key.
            response = services.response_submit(
                participant=link,
                answers=answers,
                language=self.language(link, serializer.validated_data),
                source=Response.Source.API,
                idempotency_key=key,
            )
        except AlreadySubmitted:
            replay = self.replay(participant, key, answers)
            if replay is not None:
                return replay
            raise
        location = reverse("api:invitation", args=[token])
        return APIResponse(
            OwnResponseSerializer(response).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    def replay(self, participant: Participant, key: str | None, answers: Any) -> Any:
        """The stored response, if ``key`` submitted it; a key reused for other answers
        is refused rather than answered with a response that does not hold them."""
        if key is None:
            return None
        response = (
            Response.objects.select_related("instrument")
            .filter(participant=participant, status=Response.Status.SUBMITTED)
            .filter(idempotency_key=key)
            .first()
        )
        if response is None:
            return None
        form = InstrumentForm.load(response.instrument)
        clean, errors = form.clean(answers, complete=True)
        if errors or form.to_raw(clean) != services.response_draft_answers(response):
            raise IdempotencyKeyReused()
        return APIResponse(
            OwnResponseSerializer(response).data, headers={"Idempotent-Replayed": "true"}
        )
