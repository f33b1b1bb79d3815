"""Scoring runs and their results.

A run scores every KPI of a study at a data cut-off and keeps what it found, with the
target *as it was*: editing a KPI later never changes a result.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kpi.definitions.models import KPI
from surveys.models import Site, Study, _pick

from .statistics import Verdict


class StudyResults(Study):
    """A study seen from its results: the latest scoring, and "Score now" in the admin."""

    class Meta:
        proxy = True
        verbose_name = _("results of a study")
        verbose_name_plural = _("results by study")
        permissions = [("score_study", _("Can start a scoring"))]


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
    # A registered study is judged by its registered specification (``definitions``);
    # each recorded deviation's effect on each verdict is kept beside it
    # (kpi/registration/effects.py).
    deviation_effects = models.JSONField(
        _("effect of the deviations on the verdicts"), default=list, blank=True, editable=False
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
#: ``kpi.scoring.wording`` words them (its ``Result`` takes a subset).
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

#: The figures computed with the number invited (the non-response range and the tipping
#: point): withheld with it, since each gives it back.
INVITED_FIGURES = RESULT_FIELDS[RESULT_FIELDS.index("nonresponse_low") :]
