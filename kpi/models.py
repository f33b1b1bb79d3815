"""KPI targets, scoring runs and their results.

A KPI is a numerator over a base; both are segments of respondents (or all respondents,
or all invited participants). A run scores every KPI of a study at a data cut-off and keeps
what it found, with the target *as it was*: editing a KPI later never changes a result.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from surveys.bidi import strip_bidi_controls
from surveys.history import AuditedHistory
from surveys.models import Choice, Question, Site, Study, _pick
from surveys.text import no_control_characters

from .statistics import Comparator, Rule, Verdict


class StudyResults(Study):
    """A study seen from its results: the latest scoring, and "Score now" in the admin."""

    class Meta:
        proxy = True
        verbose_name = _("results of a study")
        verbose_name_plural = _("results by study")
        permissions = [("score_study", _("Can start a scoring"))]


class Segment(models.Model):
    """A named set of respondents: those whose answers meet every clause."""

    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="segments", verbose_name=_("study")
    )
    code = models.SlugField(_("code"), max_length=64)
    name_ja = models.CharField(
        _("name (Japanese)"), max_length=200, validators=[no_control_characters]
    )
    name_en = models.CharField(
        _("name (English)"), max_length=200, blank=True, validators=[no_control_characters]
    )
    history = AuditedHistory()

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["study", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="segment_code_unique_in_study")
        ]

    def __str__(self) -> str:
        return strip_bidi_controls(self.name)  # shown inline: see surveys/bidi.py

    @property
    def name(self) -> str:
        return _pick(self, "name")


class Clause(models.Model):
    """“Chose any of these choices (or any choice with this tag) in this question”, or,
    negated, “chose none of them”. Matched by question and choice codes, so a clause keeps
    its meaning in every version of the instrument."""

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="clauses", verbose_name=_("segment")
    )
    question = models.ForeignKey(
        Question,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("question"),
        limit_choices_to={"type__in": sorted(Question.CHOICE_TYPES)},
    )
    choices = models.ManyToManyField(
        Choice, blank=True, related_name="+", verbose_name=_("any of these choices")
    )
    tag = models.SlugField(
        _("or any choice tagged"),
        max_length=32,
        blank=True,
        help_text=_("For example online or municipal."),
    )
    negate = models.BooleanField(
        _("did not choose"),
        default=False,
        help_text=_("Tick to count respondents who chose none of these."),
    )
    history = AuditedHistory(m2m_fields=[choices])

    class Meta:
        verbose_name = _("condition")
        verbose_name_plural = _("conditions")
        ordering = ["segment", "pk"]

    def __str__(self) -> str:
        picked = ", ".join(c.code for c in self.choices.all()) if self.pk else ""
        what = " | ".join(filter(None, [picked, f"#{self.tag}" if self.tag else ""]))
        return f"{'not ' if self.negate else ''}{self.question.code} in ({what})"


class KPI(models.Model):
    class Kind(models.TextChoices):
        SHARE = "share", _("Share (numerator within the base)")
        RATIO = "ratio", _("Ratio of two segments of the same respondents")
        MEAN = "mean", _("Mean score of a scale item")

    class Base(models.TextChoices):
        INVITED = "invited", _("All invited participants")
        RESPONDENTS = "respondents", _("All respondents")
        SEGMENT = "segment", _("A segment of respondents")

    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="kpis", verbose_name=_("study")
    )
    code = models.SlugField(_("code"), max_length=64)
    order = models.PositiveIntegerField(_("display order"), default=0)
    group = models.SlugField(
        _("table"),
        max_length=64,
        blank=True,
        help_text=_("KPIs with the same table name are shown together (e.g. channel_table)."),
    )
    name_ja = models.CharField(
        _("name (Japanese)"), max_length=200, validators=[no_control_characters]
    )
    name_en = models.CharField(
        _("name (English)"), max_length=200, blank=True, validators=[no_control_characters]
    )
    base_description_ja = models.CharField(
        _("base (Japanese)"), max_length=300, blank=True, validators=[no_control_characters]
    )
    base_description_en = models.CharField(
        _("base (English)"), max_length=300, blank=True, validators=[no_control_characters]
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.SHARE)
    numerator = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("counts as success"),
        help_text=_("Share: the respondents who count. Empty with the invited base: responded."),
    )
    base = models.CharField(
        _("base"), max_length=12, choices=Base.choices, default=Base.RESPONDENTS
    )
    base_segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("base segment"),
        help_text=_("With the segment base; for a ratio, the denominator."),
    )
    mean_question = models.ForeignKey(
        Question,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("scale item"),
        limit_choices_to={"type": Question.Type.SCALE4},
    )
    comparator = models.CharField(
        _("target comparator"),
        max_length=2,
        choices=[(c.value, c.value) for c in Comparator],
        blank=True,
        help_text=_("Empty: a descriptive figure without a target."),
    )
    threshold = models.DecimalField(
        _("target"),
        max_digits=9,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_("For a share, in % (70 means 70 %); for a ratio or a mean, the number."),
    )
    rule = models.CharField(
        _("judged on"),
        max_length=5,
        choices=[
            (Rule.POINT.value, _("the point estimate")),
            (Rule.BOUND.value, _("the confidence interval's bound")),
        ],
        default=Rule.POINT,
    )
    confidence = models.DecimalField(
        _("confidence level"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("0.999"))],
    )
    min_n = models.PositiveIntegerField(
        _("minimum base size"),
        default=30,
        help_text=_("Below this many in the base, the verdict is “inconclusive”."),
    )
    by_site = models.BooleanField(_("broken down by site"), default=True)
    active = models.BooleanField(_("active"), default=True)
    history = AuditedHistory()

    class Meta:
        verbose_name = _("KPI")
        verbose_name_plural = _("KPIs")
        ordering = ["study", "order", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="kpi_code_unique_in_study"),
            models.CheckConstraint(
                condition=Q(comparator="", threshold__isnull=True)
                | (~Q(comparator="") & Q(threshold__isnull=False)),
                name="kpi_target_complete",
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=Decimal("0.5"), confidence__lte=Decimal("0.999")),
                name="kpi_confidence_in_range",
            ),
        ]

    def __str__(self) -> str:
        return strip_bidi_controls(self.name)  # shown inline: see surveys/bidi.py

    @property
    def name(self) -> str:
        return _pick(self, "name")

    @property
    def base_description(self) -> str:
        return _pick(self, "base_description")

    @property
    def has_target(self) -> bool:
        return bool(self.comparator)


class EvaluationRun(models.Model):
    """One scoring of a study at a data cut-off."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Score now (admin)")
        SUBMISSION = "submission", _("New submissions")
        SCHEDULE = "schedule", _("Nightly schedule")
        BACKSTOP = "backstop", _("Catch-up of unscored submissions")
        COMMAND = "command", _("Command line")
        API = "api", _("API")

    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, related_name="runs", verbose_name=_("study")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    # Automatic runs of a study share a one-minute slot: at most one per study per minute.
    debounce_slot = models.BigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    cutoff = models.DateTimeField(
        _("data cut-off"),
        null=True,
        blank=True,
        help_text=_("Responses submitted up to this moment are counted."),
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    responses_counted = models.PositiveIntegerField(_("responses counted"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    definitions = models.JSONField(
        _("KPI definitions as scored"), default=list, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("evaluation run")
        verbose_name_plural = _("evaluation runs")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "debounce_slot"],
                condition=Q(debounce_slot__isnull=False),
                name="run_one_automatic_run_per_study_per_slot",
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded")
                | Q(cutoff__isnull=False, finished_at__isnull=False),
                name="run_succeeded_has_cutoff_and_finish",
            ),
        ]
        indexes = [models.Index(fields=["study", "status", "-created_at"], name="run_study_status")]

    def __str__(self) -> str:
        return f"{self.study.code} #{self.pk} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class KPIResult(models.Model):
    """A KPI's figures in one run, for the whole study (``site`` empty) or one site. Holds
    the definition as it was scored, so later edits to the KPI do not change it."""

    run = models.ForeignKey(
        EvaluationRun, on_delete=models.CASCADE, related_name="results", verbose_name=_("run")
    )
    kpi = models.ForeignKey(
        KPI,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="results",
        verbose_name=_("KPI"),
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("site"),
    )
    # The definition as scored.
    kpi_code = models.SlugField(_("KPI code"), max_length=64)
    order = models.PositiveIntegerField(_("display order"), default=0)
    group = models.SlugField(_("table"), max_length=64, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=KPI.Kind.choices)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    base_description_ja = models.CharField(_("base (Japanese)"), max_length=300, blank=True)
    base_description_en = models.CharField(_("base (English)"), max_length=300, blank=True)
    comparator = models.CharField(_("target comparator"), max_length=2, blank=True)
    threshold = models.DecimalField(
        _("target"), max_digits=9, decimal_places=4, null=True, blank=True
    )
    rule = models.CharField(_("judged on"), max_length=5)
    confidence = models.DecimalField(_("confidence level"), max_digits=4, decimal_places=3)
    min_n = models.PositiveIntegerField(_("minimum base size"))
    # The figures.
    numerator = models.PositiveIntegerField(_("numerator"))
    denominator = models.PositiveIntegerField(_("base n"))
    overlap = models.PositiveIntegerField(
        _("in both segments"), null=True, blank=True, help_text=_("Ratios only.")
    )
    respondents = models.PositiveIntegerField(_("respondents"))
    invited = models.PositiveIntegerField(_("invited"))
    value = models.FloatField(_("value"), null=True, blank=True)
    ci_low = models.FloatField(_("interval low"), null=True, blank=True)
    ci_high = models.FloatField(_("interval high"), null=True, blank=True)
    verdict = models.CharField(
        _("verdict"),
        max_length=12,
        choices=[
            (Verdict.MET.value, _("met")),
            (Verdict.NOT_MET.value, _("not met")),
            (Verdict.INCONCLUSIVE.value, _("inconclusive")),
        ],
        blank=True,
        help_text=_("Empty for a descriptive figure without a target."),
    )
    met_point = models.BooleanField(_("met (point estimate)"), null=True, blank=True)
    met_with_confidence = models.BooleanField(_("met with confidence"), null=True, blank=True)
    nonresponse_low = models.FloatField(_("if every non-respondent said no"), null=True, blank=True)
    nonresponse_high = models.FloatField(
        _("if every non-respondent said yes"), null=True, blank=True
    )
    tipping_direction = models.CharField(_("tipping answers"), max_length=3, blank=True)
    tipping_count = models.PositiveIntegerField(_("tipping point"), null=True, blank=True)

    class Meta:
        verbose_name = _("KPI result")
        verbose_name_plural = _("KPI results")
        ordering = ["run", "order", "kpi_code", "site__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "kpi_code", "site"],
                condition=Q(site__isnull=False),
                name="result_one_per_kpi_and_site",
            ),
            models.UniqueConstraint(
                fields=["run", "kpi_code"],
                condition=Q(site__isnull=True),
                name="result_one_overall_per_kpi",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kpi_code} @ {self.site or 'all'}"

    @property
    def name(self) -> str:
        return _pick(self, "name")

    @property
    def base_description(self) -> str:
        return _pick(self, "base_description")


#: A result's own fields, in one list: the definition as scored, then the figures. Scoring
#: writes them, an evaluation's snapshot freezes them, the API returns them and
#: ``kpi.wording`` words them (its ``Result`` takes a subset).
RESULT_FIELDS = (
    "kpi_code",
    "order",
    "group",
    "kind",
    "name_ja",
    "name_en",
    "base_description_ja",
    "base_description_en",
    "comparator",
    "threshold",
    "rule",
    "confidence",
    "min_n",
    "numerator",
    "denominator",
    "overlap",
    "respondents",
    "invited",
    "value",
    "ci_low",
    "ci_high",
    "verdict",
    "met_point",
    "met_with_confidence",
    "nonresponse_low",
    "nonresponse_high",
    "tipping_direction",
    "tipping_count",
)


def evaluation_upload_to(evaluation: Evaluation, filename: str) -> str:
    return f"evaluations/{evaluation.study.code}/{filename}"


class Evaluation(models.Model):
    """A report built from one succeeded run: a draft, then signed off and frozen.

    ``snapshot`` holds everything the report shows (results, definitions, distributions,
    the instrument), copied when the evaluation is created; ``snapshot_sha256`` is its
    digest, printed in the sign-off block. Once signed off nothing here changes except
    the rendering of the signed PDF (once) and a later withdrawal, which is a new act
    recorded beside it and leaves the signed file intact.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SIGNED_OFF = "signed_off", _("Signed off")
        WITHDRAWN = "withdrawn", pgettext_lazy("evaluation status", "Withdrawn")

    class Rendering(models.TextChoices):
        NONE = "", _("Not rendered")
        PENDING = "pending", _("Rendering")
        DONE = "done", _("Signed PDF ready")
        FAILED = "failed", _("Rendering failed")

    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, related_name="evaluations", verbose_name=_("study")
    )
    run = models.ForeignKey(
        EvaluationRun,
        on_delete=models.PROTECT,
        related_name="evaluations",
        verbose_name=_("evaluation run"),
    )
    language = models.CharField(
        _("report language"), max_length=2, choices=[("ja", _("Japanese")), ("en", _("English"))]
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DRAFT
    )
    snapshot = models.JSONField(_("results snapshot"), editable=False)
    snapshot_sha256 = models.CharField(_("SHA-256 of the results"), max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("signed off by"),
    )
    signed_off_at = models.DateTimeField(_("signed off"), null=True, blank=True)
    signer_name = models.CharField(
        _("signer's name"), max_length=200, blank=True, validators=[no_control_characters]
    )
    signer_role = models.CharField(
        _("signer's role"), max_length=200, blank=True, validators=[no_control_characters]
    )
    statement = models.TextField(
        _("sign-off statement"), blank=True, validators=[no_control_characters]
    )
    rendering = models.CharField(
        _("signed PDF"), max_length=8, choices=Rendering.choices, default=Rendering.NONE, blank=True
    )
    rendering_error = models.TextField(_("rendering error"), blank=True)
    pdf = models.FileField(_("signed PDF"), upload_to=evaluation_upload_to, blank=True)
    pdf_sha256 = models.CharField(_("SHA-256 of the PDF"), max_length=64, blank=True)
    pdf_size = models.PositiveIntegerField(_("PDF size (bytes)"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("withdrawn by"),
    )
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    withdrawal_reason = models.TextField(
        _("reason for withdrawal"), blank=True, validators=[no_control_characters]
    )
    history = AuditedHistory()

    class Meta:
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        ordering = ["-created_at"]
        permissions = [
            ("sign_off_evaluation", _("Can sign off an evaluation")),
            ("withdraw_evaluation", _("Can withdraw a signed-off evaluation")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft")
                | Q(
                    signed_off_by__isnull=False,
                    signed_off_at__isnull=False,
                    statement__gt="",
                ),
                name="evaluation_signed_off_has_signer_time_statement",
            ),
            models.CheckConstraint(
                condition=~Q(status="withdrawn")
                | Q(withdrawn_by__isnull=False, withdrawn_at__isnull=False),
                name="evaluation_withdrawn_has_who_and_when",
            ),
            models.CheckConstraint(
                condition=Q(pdf="") | ~Q(status="draft"),
                name="evaluation_only_signed_off_has_a_stored_pdf",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} evaluation #{self.pk} ({self.get_status_display()})"

    @property
    def is_frozen(self) -> bool:
        return self.status != self.Status.DRAFT
