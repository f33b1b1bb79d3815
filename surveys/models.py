"""The survey domain: studies, sites, instruments, participants and their responses.

Models hold data and single-row facts; workflows live in ``services.py`` and reads in
``selectors.py``. Invariants that the database can hold are constraints here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from .bidi import strip_bidi_controls
from .history import AuditedHistory
from .text import no_control_characters


class Language(models.TextChoices):
    JA = "ja", _("Japanese")
    EN = "en", _("English")


def _pick(obj: object, field: str, language: str | None = None) -> str:
    """The ``field_<lang>`` value in the active (or given) language, Japanese as fallback."""
    lang = (language or get_language() or "ja")[:2]
    value = getattr(obj, f"{field}_{lang}", "") or ""
    return value or getattr(obj, f"{field}_ja", "")


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, on the month's last day if it is shorter
    (31 August + 6 months is 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return day.replace(year=year, month=month, day=min(day.day, last))


RETENTION_MONTHS_MAX = 120


class Study(models.Model):
    class Status(models.TextChoices):
        SETUP = "setup", _("Being set up")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name_ja = models.CharField(
        _("name (Japanese)"), max_length=200, validators=[no_control_characters]
    )
    name_en = models.CharField(
        _("name (English)"), max_length=200, blank=True, validators=[no_control_characters]
    )
    description_ja = models.TextField(
        _("description (Japanese)"), blank=True, validators=[no_control_characters]
    )
    description_en = models.TextField(
        _("description (English)"), blank=True, validators=[no_control_characters]
    )
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    # Who publishes the study's evaluation report: printed first on its cover.
    issuing_body_ja = models.CharField(
        _("issuing body (Japanese)"),
        max_length=200,
        blank=True,
        validators=[no_control_characters],
        help_text=_(
            "Who publishes the evaluation report, as printed on its cover: the government "
            "department, the ward or the provider (e.g. 東京都デジタルサービス局)."
        ),
    )
    issuing_body_en = models.CharField(
        _("issuing body (English)"),
        max_length=200,
        blank=True,
        validators=[no_control_characters],
        help_text=_(
            "The same in English (e.g. Tokyo Metropolitan Government, Digital Service Bureau)."
        ),
    )
    default_language = models.CharField(
        _("default language"), max_length=2, choices=Language.choices, default=Language.JA
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.SETUP
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Counted from the end of the study period, and only once the study is closed (a
    # study still open is never purged): see surveys/erasure.py and docs/security.md.
    retention_months = models.PositiveSmallIntegerField(
        _("keep personal data (months)"),
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(RETENTION_MONTHS_MAX)],
        help_text=_(
            "Once the study is closed, participants' personal data (references and free-text "
            "answers) is erased this many months after the end of the study period."
        ),
    )

    small_cell_threshold = models.PositiveSmallIntegerField(
        _("small-cell threshold"),
        default=5,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Per-site and cross-tab counts from 1 to this number minus one are withheld "
            "(shown as “<5” with 5) in the published tables, the report, the API's "
            "aggregate results and the aggregate exports; 1 turns the protection off. "
            "Whole-study figures and record-level exports are never withheld."
        ),
    )

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        ordering = ["-period_start", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="study_period_ordered",
            ),
            models.CheckConstraint(
                condition=Q(retention_months__gte=1, retention_months__lte=RETENTION_MONTHS_MAX),
                name="study_retention_months_in_range",
            ),
        ]

    def __str__(self) -> str:
        return strip_bidi_controls(self.name)

    @property
    def name(self) -> str:
        return _pick(self, "name")

    @property
    def personal_data_expires_on(self) -> dt.date:
        """The day from which a closed study's personal data is purged."""
        return add_months(self.period_end, self.retention_months)


class Site(models.Model):
    """A municipality taking part in a study, with its own programme period and survey window."""

    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="sites", verbose_name=_("study")
    )
    code = models.SlugField(_("code"), max_length=64)
    name_ja = models.CharField(
        _("name (Japanese)"), max_length=200, validators=[no_control_characters]
    )
    name_en = models.CharField(
        _("name (English)"), max_length=200, blank=True, validators=[no_control_characters]
    )
    period_start = models.DateField(_("programme start"))
    period_end = models.DateField(_("programme end"))
    survey_opens_at = models.DateTimeField(
        _("questionnaire opens"),
        null=True,
        blank=True,
        help_text=_("Empty: the questionnaire is not open yet at this site."),
    )
    survey_closes_at = models.DateTimeField(
        _("questionnaire closes"),
        null=True,
        blank=True,
        help_text=_("Empty: open until the study closes."),
    )

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["study", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="site_code_unique_in_study"),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="site_period_ordered",
            ),
            models.CheckConstraint(
                condition=Q(survey_closes_at__isnull=True)
                | Q(
                    survey_opens_at__isnull=False, survey_closes_at__gt=models.F("survey_opens_at")
                ),
                name="site_survey_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return strip_bidi_controls(self.name)

    @property
    def name(self) -> str:
        return _pick(self, "name")

    def is_survey_open(self, at: dt.datetime | None = None) -> bool:
        at = at or timezone.now()
        if self.survey_opens_at is None or at < self.survey_opens_at:
            return False
        return self.survey_closes_at is None or at < self.survey_closes_at


class Instrument(models.Model):
    """One version of a study's questionnaire. Frozen once published: a change is a new version."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        RETIRED = "retired", _("Retired")

    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="instruments", verbose_name=_("study")
    )
    version = models.PositiveIntegerField(_("version"))
    title_ja = models.CharField(
        _("title (Japanese)"), max_length=200, validators=[no_control_characters]
    )
    title_en = models.CharField(
        _("title (English)"), max_length=200, blank=True, validators=[no_control_characters]
    )
    intro_ja = models.TextField(
        _("introduction (Japanese)"), blank=True, validators=[no_control_characters]
    )
    intro_en = models.TextField(
        _("introduction (English)"), blank=True, validators=[no_control_characters]
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    source = models.CharField(
        _("source file"),
        max_length=200,
        blank=True,
        help_text=_("The versioned definition file this instrument was loaded from, if any."),
    )

    class Meta:
        verbose_name = _("instrument")
        verbose_name_plural = _("instruments")
        ordering = ["study", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "version"], name="instrument_version_unique_in_study"
            ),
            models.CheckConstraint(
                condition=Q(status="draft", published_at__isnull=True)
                | (~Q(status="draft") & Q(published_at__isnull=False)),
                name="instrument_published_at_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} v{self.version}"

    @property
    def title(self) -> str:
        return _pick(self, "title")

    @property
    def intro(self) -> str:
        return _pick(self, "intro")

    @property
    def is_frozen(self) -> bool:
        return self.status != self.Status.DRAFT


class Question(models.Model):
    class Type(models.TextChoices):
        SINGLE = "single", _("Single choice")
        MULTIPLE = "multiple", _("Multiple choice")
        SCALE4 = "scale4", _("Four-point scale")
        TEXT = "text", _("Free text")
        NUMBER = "number", _("Number")

    CHOICE_TYPES = frozenset({Type.SINGLE, Type.MULTIPLE, Type.SCALE4})

    instrument = models.ForeignKey(
        Instrument,
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("instrument"),
    )
    code = models.SlugField(_("code"), max_length=64)
    order = models.PositiveIntegerField(_("order"))
    type = models.CharField(_("type"), max_length=10, choices=Type.choices)
    required = models.BooleanField(_("required"), default=True)
    text_ja = models.TextField(_("text (Japanese)"), validators=[no_control_characters])
    text_en = models.TextField(_("text (English)"), blank=True, validators=[no_control_characters])
    help_ja = models.TextField(_("help (Japanese)"), blank=True, validators=[no_control_characters])
    help_en = models.TextField(_("help (English)"), blank=True, validators=[no_control_characters])
    max_length = models.PositiveIntegerField(
        _("longest answer (characters)"), null=True, blank=True
    )
    min_value = models.DecimalField(
        _("smallest number"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    max_value = models.DecimalField(
        _("largest number"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    condition_question = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dependents",
        verbose_name=_("shown only if this question"),
    )
    condition_choices: models.ManyToManyField[Choice, Any] = models.ManyToManyField(
        "Choice",
        blank=True,
        related_name="+",
        verbose_name=_("has any of these choices"),
    )

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["instrument", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "code"], name="question_code_unique_in_instrument"
            ),
            models.UniqueConstraint(
                fields=["instrument", "order"], name="question_order_unique_in_instrument"
            ),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(max_value__gte=models.F("min_value")),
                name="question_number_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def text(self) -> str:
        return _pick(self, "text")

    @property
    def help(self) -> str:
        return _pick(self, "help")

    @property
    def has_choices(self) -> bool:
        return self.type in self.CHOICE_TYPES

    @property
    def text_limit(self) -> int:
        return self.max_length or settings.HYOKA_TEXT_ANSWER_MAX


class Choice(models.Model):
    question = models.ForeignKey(
        Question, on_delete=models.CASCADE, related_name="choices", verbose_name=_("question")
    )
    code = models.SlugField(_("code"), max_length=64)
    order = models.PositiveIntegerField(_("order"))
    label_ja = models.CharField(
        _("label (Japanese)"), max_length=300, validators=[no_control_characters]
    )
    label_en = models.CharField(
        _("label (English)"), max_length=300, blank=True, validators=[no_control_characters]
    )
    score = models.SmallIntegerField(
        _("score"), null=True, blank=True, help_text=_("For scale items: higher is better.")
    )
    tags = models.JSONField(
        _("tags"),
        default=list,
        blank=True,
        help_text=_("Groups that KPIs count by, such as online or municipal."),
    )
    exclusive = models.BooleanField(
        _("exclusive"),
        default=False,
        help_text=_("Cannot be combined with other choices (for example 'none')."),
    )

    class Meta:
        verbose_name = _("choice")
        verbose_name_plural = _("choices")
        ordering = ["question", "order"]
        constraints = [
            models.UniqueConstraint(fields=["question", "code"], name="choice_code_unique"),
            models.UniqueConstraint(fields=["question", "order"], name="choice_order_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.question.code}={self.code}"

    @property
    def label(self) -> str:
        return _pick(self, "label")


def hash_token(token: str) -> str:
    """Invitation tokens are stored only as this SHA-256 digest (they carry 256 random bits,
    so a fast hash is enough: there is nothing to brute-force)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Participant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="participants", verbose_name=_("site")
    )
    reference = models.CharField(
        _("reference"),
        max_length=64,
        help_text=_("A pseudonymous reference: never a name, e-mail or phone number."),
        validators=[no_control_characters],
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    token_hash = models.CharField(_("invitation token hash"), max_length=64, unique=True)
    token_issued_at = models.DateTimeField(_("link issued"), default=timezone.now)
    invited_at = models.DateTimeField(_("invited"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Not even the hash of a link goes into the history: a reissue shows as a new
    # "link issued" time.
    history = AuditedHistory(excluded_fields=["token_hash"])

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["site", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "reference"], name="participant_reference_unique_in_site"
            ),
            models.CheckConstraint(
                condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106
                name="participant_token_hash_is_sha256",
            ),
        ]
        indexes = [
            # Scoring counts the invited per site: active participants up to the cut-off
            # (an index-only count), plus the few withdrawn ones who had responded.
            models.Index(
                fields=["site", "created_at"],
                condition=Q(status="active"),
                name="participant_active_by_site",
            ),
            models.Index(
                fields=["site"], condition=Q(status="withdrawn"), name="participant_withdrawn"
            ),
        ]

    def __str__(self) -> str:
        # Shown inline by the admin (titles, breadcrumbs, messages, links): without
        # direction controls that would reorder the words around it (surveys/bidi.py).
        return strip_bidi_controls(self.reference)


class ParticipantLink(models.Model):
    """What a participant's stable link is derived from (``surveys/links.py``): a random
    nonce and the id of the key it was derived under. Neither is secret: without the key
    (held outside the database, ``HYOKA_LINK_KEY``) they give no link. Replacing the link
    is a new nonce. Not in the history: the act shows as a new "link issued" time."""

    participant = models.OneToOneField(
        Participant,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="stable_link",
        verbose_name=_("participant"),
    )
    nonce = models.CharField(_("nonce"), max_length=32)
    key_id = models.CharField(_("key id"), max_length=16)

    class Meta:
        verbose_name = _("participant link")
        verbose_name_plural = _("participant links")
        constraints = [
            models.CheckConstraint(
                condition=Q(nonce__regex=r"^[0-9a-f]{32}$"), name="participantlink_nonce_is_hex"
            ),
            models.CheckConstraint(
                condition=Q(key_id__regex=r"^[0-9a-f]{16}$"), name="participantlink_key_id_is_hex"
            ),
        ]

    def __str__(self) -> str:
        return str(self.participant_id)


class LegacyLink(models.Model):
    """The hash of a participant's link issued before links were derived (a random token
    nobody can show again): it keeps working, looked up only when the current hash finds
    nobody, until the participant's link is replaced or their data erased."""

    participant = models.OneToOneField(
        Participant,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="legacy_link",
        verbose_name=_("participant"),
    )
    token_hash = models.CharField(_("invitation token hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("earlier participant link")
        verbose_name_plural = _("earlier participant links")
        constraints = [
            models.CheckConstraint(
                condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106
                name="legacylink_token_hash_is_sha256",
            ),
        ]

    def __str__(self) -> str:
        return str(self.participant_id)


class LinkOpening(models.Model):
    """When a participant first opened their link: the fieldwork watch counts openings per
    day. Written once, by the first questionnaire page shown to a participant without a
    response (``surveys/links.py`` ``link_opened``); a response implies an opening."""

    participant = models.OneToOneField(
        Participant,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="link_opening",
        verbose_name=_("participant"),
    )
    opened_at = models.DateTimeField(_("first opened"), default=timezone.now)

    class Meta:
        verbose_name = _("link opening")
        verbose_name_plural = _("link openings")

    def __str__(self) -> str:
        return str(self.participant_id)


class Response(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")

    class Source(models.TextChoices):
        WEB = "web", _("Web questionnaire")
        API = "api", _("API")
        IMPORT = "import", _("Import")

    participant = models.OneToOneField(
        Participant,
        on_delete=models.PROTECT,
        related_name="response",
        verbose_name=_("participant"),
    )
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="responses", verbose_name=_("instrument")
    )
    # The participant's site, copied when the response is created (a participant never
    # changes site once they have answered): per-site counts need no join.
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="responses", verbose_name=_("site")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    # The chosen choices as bits (see InstrumentForm.bit_of), written with the answers in
    # one transaction, so that counting a segment is a bit test on one row per response.
    choice_bits = models.BigIntegerField(_("chosen choices (bits)"), default=0, editable=False)
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.JA
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    updated_at = models.DateTimeField(_("last saved"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    # The Idempotency-Key of the API request that submitted this response: a retry with
    # the same key gets this response back instead of a refusal. A participant has one
    # response, so the key needs no uniqueness beyond the row.
    idempotency_key = models.CharField(  # noqa: DJ001
        _("idempotency key"), max_length=64, null=True, blank=True, editable=False
    )
    # Written by ``submission/records.py`` for participants' own changes (one row per
    # recorded save, with the answers' rows); "last saved" is the record's own time.
    history = AuditedHistory(excluded_fields=["updated_at"], no_db_index=["instrument"])

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        ordering = ["-submitted_at", "-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft", submitted_at__isnull=True)
                | Q(status="submitted", submitted_at__isnull=False),
                name="response_submitted_at_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(choice_bits__gte=0), name="response_choice_bits_non_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["instrument", "status"], name="response_instrument_status"),
            models.Index(fields=["site", "status"], name="response_site_status"),
            # And on PostgreSQL "response_newest_first" (migration 0016; SQLite cannot
            # index NULLS LAST): the lists' order, so a page is read from the index.
        ]

    def __str__(self) -> str:
        return f"{self.participant} ({self.get_status_display()})"

    @property
    def is_submitted(self) -> bool:
        return self.status == self.Status.SUBMITTED


class Answer(models.Model):
    """One selected choice, or one text or number value, of a response."""

    response = models.ForeignKey(
        Response, on_delete=models.CASCADE, related_name="answers", verbose_name=_("response")
    )
    question = models.ForeignKey(
        Question, on_delete=models.PROTECT, related_name="answers", verbose_name=_("question")
    )
    choice = models.ForeignKey(
        Choice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="answers",
        verbose_name=_("choice"),
    )
    # NULL, not "", means "not a text answer": the check constraint below relies on it.
    text_value = models.TextField(_("text"), null=True, blank=True)  # noqa: DJ001
    number_value = models.DecimalField(
        _("number"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    # Whether the history holds this row's "+" record yet. A draft saved again soon after
    # the last recorded save (``submission/records.py``) stores its new answers unrecorded; the
    # next recorded write (a save after a pause, the submission) records them first, as
    # the draft stood. Rows written any other way are recorded as they are written.
    recorded = models.BooleanField(
        _("recorded in the history"), default=True, db_default=True, editable=False
    )
    # Read by response (the response's history page): the other indexes would only slow
    # down the submission that writes these rows.
    history = AuditedHistory(no_db_index=["question", "choice"], excluded_fields=["recorded"])

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    choice__isnull=False, text_value__isnull=True, number_value__isnull=True
                )
                | Q(choice__isnull=True, text_value__isnull=False, number_value__isnull=True)
                | Q(choice__isnull=True, text_value__isnull=True, number_value__isnull=False),
                name="answer_holds_exactly_one_value",
            ),
            models.UniqueConstraint(
                fields=["response", "question", "choice"],
                condition=Q(choice__isnull=False),
                name="answer_choice_once_per_response",
            ),
            models.UniqueConstraint(
                fields=["response", "question"],
                condition=Q(choice__isnull=True),
                name="answer_value_once_per_response",
            ),
        ]
        indexes = [
            # Aggregation counts respondents by (question, choice).
            models.Index(fields=["question", "choice", "response"], name="answer_aggregate"),
        ]

    def __str__(self) -> str:
        return f"{self.question.code}: {self.choice or self.text_value or self.number_value}"


class Membership(models.Model):
    """A manager's place in a study: one site, with a role. Every manager query is scoped
    to the sites of their memberships (``surveys/scoping.py``); superusers see all."""

    class Role(models.TextChoices):
        VIEWER = "viewer", _("Viewer: reads the site's data and results")
        MANAGER = "manager", _("Manager: also manages participants, KPIs and scoring")
        SIGNER = "signer", _("Signer: also signs off evaluations")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    site = models.ForeignKey(
        Site, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("site")
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    history = AuditedHistory()

    class Meta:
        verbose_name = _("site membership")
        verbose_name_plural = _("site memberships")
        ordering = ["site", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "site"], name="membership_one_per_user_and_site"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site} ({self.get_role_display()})"


class RetentionPurge(models.Model):
    """One purge of a closed study's personal data once its retention period ended: the
    report of what was purged. Written only when it erased someone."""

    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, related_name="purges", verbose_name=_("study")
    )
    purged_at = models.DateTimeField(_("purged"), default=timezone.now)
    expired_on = models.DateField(_("personal data expired on"))
    participants = models.PositiveIntegerField(_("participants erased"))

    class Meta:
        verbose_name = _("retention purge")
        verbose_name_plural = _("retention purges")
        ordering = ["-purged_at"]

    def __str__(self) -> str:
        return f"{self.study.code} {self.purged_at:%Y-%m-%d}"


class ErasureRecord(models.Model):
    """That a participant's personal data was erased: who, when, why. Append-only in the
    database (``surveys/appendonly.py``), one per participant; the erased values are gone
    from the participant, their response and answers, and every historical row of them."""

    participant = models.OneToOneField(
        Participant,
        on_delete=models.PROTECT,
        related_name="erasure",
        verbose_name=_("participant"),
    )
    erased_at = models.DateTimeField(_("erased"), default=timezone.now)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,  # an account that erased someone is deactivated, not deleted
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("erased by"),
        help_text=_("Empty: the system (the retention purge, or a command run without --by)."),
    )
    reason = models.TextField(_("reason"), validators=[no_control_characters])
    purge = models.ForeignKey(
        RetentionPurge,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="erasures",
        verbose_name=_("retention purge"),
    )

    class Meta:
        verbose_name = _("erasure record")
        verbose_name_plural = _("erasure records")
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.erased_at:%Y-%m-%d %H:%M}"


class ResponseExport(models.Model):
    """One export of a study's responses: who asked for which format, when, and how many
    rows it held. A row with a state (``surveys/exports/services.py``): an export made
    in the request (a streamed CSV, a small file) is written ``running`` and finished
    there; a large one is ``queued`` for a Celery task, which claims it with a
    compare-and-set and stores the file under ``MEDIA_ROOT/exports/``. Its history is the
    audit trail of exports (who, when, study, format; then the row count). A stored file
    is deleted after ``HYOKA_EXPORT_FILE_DAYS`` or when personal data it may hold is
    erased; the row stays, ``expired``, saying why (``surveys/exports/expiry.py``)."""

    class Format(models.TextChoices):
        CSV = "csv", _("CSV (codes and labels)")
        XLSX = "xlsx", _("Excel workbook (data and codebook)")
        SAV = "sav", _("SPSS (.sav)")
        DTA = "dta", _("Stata (.dta)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Being written")
        SUCCEEDED = "succeeded", _("Ready")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")  # the file is deleted, the record stays

    class Expiry(models.TextChoices):
        """Why an export's file was deleted (``surveys/exports/expiry.py``)."""

        KEPT_DAYS = "kept_days", _("kept for its retention period")
        ERASURE = "erasure", _("a participant's personal data was erased")
        PURGE = "purge", _("the study's personal data was purged")

    study = models.ForeignKey(
        Study,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exports",
        verbose_name=_("study"),
        help_text=_("Empty: the responses of every study the user may see."),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,  # the audit trail names them
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    format = models.CharField(_("format"), max_length=4, choices=Format.choices)
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.JA
    )
    # The API's filters as given (site, status, dates…): what was exported, for the record.
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    file = models.FileField(_("file"), upload_to="exports/", blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    expired_at = models.DateTimeField(_("file deleted"), null=True, blank=True)
    expired_because = models.CharField(
        _("file deleted because"), max_length=10, choices=Expiry.choices, blank=True
    )
    history = AuditedHistory()

    class Meta:
        verbose_name = _("response export")
        verbose_name_plural = _("response exports")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(format__in=["csv", "xlsx", "sav", "dta"]),
                name="responseexport_format_known",
            ),
        ]
        indexes = [
            models.Index(fields=["requested_by", "-requested_at"], name="responseexport_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_format_display()} {self.requested_at:%Y-%m-%d %H:%M}"
