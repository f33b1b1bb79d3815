"""Segments (named sets of respondents, by their conditions) and KPI targets.

A KPI is a numerator over a base; both are segments of respondents (or all respondents,
or all invited participants). Written by ``services``, checked by ``validation``.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kpi.scoring.statistics import Comparator, Rule
from surveys.bidi import strip_bidi_controls
from surveys.history import AuditedHistory
from surveys.models import Choice, Question, Study, _pick
from surveys.text import no_control_characters


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
