"""Serializers of the survey API. Fields are listed explicitly; what a client may not set
(a participant's site once created, statuses, tokens and their hashes, a response's owner)
is read-only, so extra fields in a request change nothing."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import scoping
from ..bidi import strip_bidi_controls
from ..models import Choice, Instrument, Language, Participant, Question, Response, Site, Study
from ..services import REFERENCE_MAX, response_draft_answers
from ..text import no_control_characters
from .permissions import ScopedRelatedField

# --- Studies, sites, instruments ------------------------------------------------------


class StudySerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True, help_text="In the request's language.")

    class Meta:
        model = Study
        fields = [
            "id",
            "code",
            "name",
            "name_ja",
            "name_en",
            "description_ja",
            "description_en",
            "issuing_body_ja",
            "issuing_body_en",
            "period_start",
            "period_end",
            "default_language",
            "status",
            "small_cell_threshold",
        ]
        read_only_fields = fields


class SiteSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    survey_open = serializers.SerializerMethodField()

    class Meta:
        model = Site
        fields = [
            "id",
            "study",
            "code",
            "name",
            "name_ja",
            "name_en",
            "period_start",
            "period_end",
            "survey_opens_at",
            "survey_closes_at",
            "survey_open",
        ]
        read_only_fields = fields

    def get_survey_open(self, site: Site) -> bool:
        return site.is_survey_open()


class ChoiceSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True, help_text="In the request's language.")
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Choice
        fields = [
            "id",
            "code",
            "order",
            "label",
            "label_ja",
            "label_en",
            "score",
            "tags",
            "exclusive",
        ]
        read_only_fields = fields


class ConditionSerializer(serializers.Serializer):
    question = serializers.CharField(help_text="The code of the question it depends on.")
    choices = serializers.ListField(
        child=serializers.CharField(), help_text="Shown if any of these choice codes is chosen."
    )


class QuestionSerializer(serializers.ModelSerializer):
    text = serializers.CharField(read_only=True, help_text="In the request's language.")
    help = serializers.CharField(read_only=True)
    choices = ChoiceSerializer(many=True, read_only=True)
    condition = serializers.SerializerMethodField()

    class Meta:
        model = Question
        fields = [
            "id",
            "code",
            "order",
            "type",
            "required",
            "text",
            "text_ja",
            "text_en",
            "help",
            "help_ja",
            "help_en",
            "max_length",
            "min_value",
            "max_value",
            "condition",
            "choices",
        ]
        read_only_fields = fields

    @extend_schema_field(ConditionSerializer(allow_null=True))
    def get_condition(self, question: Question) -> dict[str, Any] | None:
        source = question.condition_question
        if source is None:
            return None
        codes = sorted(c.code for c in question.condition_choices.all())
        return {"question": source.code, "choices": codes}


class InstrumentSerializer(serializers.ModelSerializer):
    title = serializers.CharField(read_only=True, help_text="In the request's language.")
    intro = serializers.CharField(read_only=True)
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta:
        model = Instrument
        fields = [
            "id",
            "study",
            "version",
            "title",
            "title_ja",
            "title_en",
            "intro",
            "intro_ja",
            "intro_en",
            "status",
            "published_at",
            "questions",
        ]
        read_only_fields = fields


# --- Participants ---------------------------------------------------------------------


class ParticipantSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="site.study_id", read_only=True)
    site_code = serializers.CharField(source="site.code", read_only=True)
    response = serializers.IntegerField(
        source="response_pk", read_only=True, allow_null=True, default=None
    )
    response_status = serializers.ChoiceField(
        choices=Response.Status.choices, read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Participant
        fields = [
            "id",
            "study",
            "site",
            "site_code",
            "reference",
            "status",
            "token_issued_at",
            "invited_at",
            "reminded_at",
            "created_at",
            "response",
            "response_status",
        ]
        read_only_fields = fields


class ParticipantCreateSerializer(serializers.ModelSerializer):
    """Create one participant. The answer holds the invitation link: the only time it is
    shown (it is stored only as a hash)."""

    site = ScopedRelatedField(scope=scoping.sites, queryset=Site.objects.all())
    reference = serializers.CharField(max_length=REFERENCE_MAX, validators=[no_control_characters])

    class Meta:
        model = Participant
        fields = ["site", "reference"]
        validators: list = []  # uniqueness is checked in validate(), with a clear message

    def validate_reference(self, value: str) -> str:
        value = strip_bidi_controls(value).strip()
        if not value:
            raise serializers.ValidationError(_("The reference is empty."))
        if "@" in value:
            raise serializers.ValidationError(
                _("The reference looks like an e-mail address; use a pseudonym.")
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if Participant.objects.filter(site=attrs["site"], reference=attrs["reference"]).exists():
            raise serializers.ValidationError(
                {"reference": [_("This participant already exists at this site.")]}
            )
        return attrs


class InvitationCreatedSerializer(ParticipantSerializer):
    invitation_url = serializers.CharField(
        read_only=True,
        help_text="The participant's link: the same in every later export until a manager "
        "replaces it.",
    )
    token = serializers.CharField(read_only=True, help_text="The token of the link.")

    class Meta(ParticipantSerializer.Meta):
        fields = [*ParticipantSerializer.Meta.fields, "invitation_url", "token"]
        read_only_fields = fields


# An import larger than this is almost certainly the wrong file (352 rows are ~10 kB).
IMPORT_MAX_BYTES = 5 * 1024 * 1024


class ParticipantImportSerializer(serializers.Serializer):
    study = ScopedRelatedField(scope=scoping.studies, queryset=Study.objects.all())
    file = serializers.FileField(
        help_text="CSV, UTF-8 (with or without BOM), columns reference,site (site code)."
    )

    def validate_file(self, upload: Any) -> Any:
        if upload.size > IMPORT_MAX_BYTES:
            raise serializers.ValidationError(
                _("The file is larger than %(max)d MB; is it the right file?")
                % {"max": IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        return upload


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    participants = InvitationCreatedSerializer(many=True)


# --- Responses ------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        },
        "description": "Question code → choice code (single choice, scale), list of choice "
        "codes (multiple choice), or text (free text, number).",
    }
)
class AnswersField(serializers.DictField):
    pass


class ResponseSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="site.study_id", read_only=True)
    site_code = serializers.CharField(source="site.code", read_only=True)
    participant_reference = serializers.CharField(source="participant.reference", read_only=True)
    instrument_version = serializers.IntegerField(source="instrument.version", read_only=True)

    class Meta:
        model = Response
        fields = [
            "id",
            "study",
            "site",
            "site_code",
            "participant",
            "participant_reference",
            "instrument",
            "instrument_version",
            "status",
            "language",
            "source",
            "started_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields


class ResponseDetailSerializer(ResponseSerializer):
    answers = serializers.SerializerMethodField()

    class Meta(ResponseSerializer.Meta):
        fields = [*ResponseSerializer.Meta.fields, "answers"]
        read_only_fields = fields

    @extend_schema_field(AnswersField())
    def get_answers(self, response: Response) -> dict[str, Any]:
        return response_draft_answers(response)


# --- The participant's side (invitation token) ----------------------------------------


class AnswersInputSerializer(serializers.Serializer):
    """The whole questionnaire as it stands. Unknown question codes are ignored; answers
    to questions that other answers hide are dropped (as in the web questionnaire)."""

    answers = AnswersField(child=serializers.JSONField(), required=True)
    language = serializers.ChoiceField(
        choices=Language.choices,
        required=False,
        help_text="The participant's language; by default the study's.",
    )


class OwnResponseSerializer(serializers.ModelSerializer):
    answers = serializers.SerializerMethodField()

    class Meta:
        model = Response
        fields = ["id", "status", "language", "source", "started_at", "updated_at"]
        fields += ["submitted_at", "answers"]
        read_only_fields = fields

    @extend_schema_field(AnswersField())
    def get_answers(self, response: Response) -> dict[str, Any]:
        return response_draft_answers(response)


class InvitationSiteSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    survey_open = serializers.SerializerMethodField()

    class Meta:
        model = Site
        fields = ["code", "name", "survey_opens_at", "survey_closes_at", "survey_open"]
        read_only_fields = fields

    def get_survey_open(self, site: Site) -> bool:
        return site.is_survey_open()


class InvitationStudySerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)

    class Meta:
        model = Study
        fields = ["code", "name", "default_language"]
        read_only_fields = fields


class InvitationSerializer(serializers.Serializer):
    """What a front end needs to show a participant their questionnaire."""

    study = InvitationStudySerializer(source="site.study", read_only=True)
    site = InvitationSiteSerializer(read_only=True)
    instrument = InstrumentSerializer(read_only=True, allow_null=True)
    response = OwnResponseSerializer(read_only=True, allow_null=True)
