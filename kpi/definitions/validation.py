"""Validation of KPI definitions, shared by the admin, the API and the loader.

Each function raises ``django.core.exceptions.ValidationError`` with messages per field,
in words a programme manager understands.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from surveys.models import Choice, Question

from .models import KPI, Segment


def validate_clause(
    *, segment: Segment, question: Question | None, choices: Iterable[Choice], tag: str
) -> None:
    errors: dict[str, list[str]] = {}
    choices = list(choices)
    if question is None:
        raise ValidationError({"question": _("Pick the question this condition is about.")})
    if question.instrument.study_id != segment.study_id:
        errors.setdefault("question", []).append(
            _("This question belongs to another study's questionnaire.")
        )
    if not question.has_choices:
        errors.setdefault("question", []).append(
            _("Conditions can only be set on questions with choices.")
        )
    foreign = [c for c in choices if c.question_id != question.pk]
    if foreign:
        errors.setdefault("choices", []).append(
            _("%(choices)s: not a choice of the question “%(question)s”.")
            % {"choices": ", ".join(f"“{c.label}”" for c in foreign), "question": question.code}
        )
    if not choices and not tag:
        errors.setdefault("choices", []).append(_("Tick the choices that count, or give a tag."))
    if tag and not any(tag in c.tags for c in question.choices.all()):
        errors.setdefault("tag", []).append(
            _("No choice of the question “%(question)s” has the tag “%(tag)s”.")
            % {"question": question.code, "tag": tag}
        )
    if errors:
        raise ValidationError(errors)


def _check_segment(errors: dict[str, list[str]], field: str, kpi: KPI, segment: Segment | None):  # type: ignore[no-untyped-def]
    if segment is None:
        return
    if segment.study_id != kpi.study_id:
        errors.setdefault(field, []).append(_("This segment belongs to another study."))
    elif segment.pk and not segment.clauses.exists():
        errors.setdefault(field, []).append(
            _("The segment “%(segment)s” has no conditions yet: add at least one.")
            % {"segment": segment.name}
        )


def validate_kpi(kpi: KPI) -> None:
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if kpi.base == KPI.Base.SEGMENT and kpi.base_segment is None:
        add("base_segment", _("Pick the segment that forms the base."))
    if kpi.base != KPI.Base.SEGMENT and kpi.base_segment is not None:
        add("base_segment", _("A base segment is only used with the base “a segment”."))
    if kpi.kind == KPI.Kind.SHARE:
        if kpi.numerator is None and kpi.base != KPI.Base.INVITED:
            add("numerator", _("Pick the segment that counts as success."))
    elif kpi.kind == KPI.Kind.RATIO:
        if kpi.numerator is None:
            add("numerator", _("A ratio needs a numerator segment."))
        if kpi.base != KPI.Base.SEGMENT:
            add("base", _("A ratio divides two segments: choose the base “a segment”."))
        if kpi.numerator_id and kpi.numerator_id == kpi.base_segment_id:
            add("base_segment", _("A ratio of a segment over itself is always 1."))
    elif kpi.kind == KPI.Kind.MEAN:
        if kpi.mean_question is None:
            add("mean_question", _("Pick the scale item to average."))
        elif kpi.mean_question.instrument.study_id != kpi.study_id:
            add("mean_question", _("This question belongs to another study's questionnaire."))
        if kpi.base == KPI.Base.INVITED:
            add("base", _("A mean is taken over respondents, not over everyone invited."))
    _check_segment(errors, "numerator", kpi, kpi.numerator)
    _check_segment(errors, "base_segment", kpi, kpi.base_segment)

    if bool(kpi.comparator) != (kpi.threshold is not None):
        add("threshold", _("Give both the comparator and the target, or neither."))
    elif kpi.threshold is not None:
        _check_threshold(kpi, kpi.threshold, add)
    if errors:
        raise ValidationError(errors)


def _check_threshold(kpi: KPI, threshold: Decimal, add) -> None:  # type: ignore[no-untyped-def]
    if kpi.kind == KPI.Kind.SHARE and not Decimal(0) <= threshold <= Decimal(100):
        add("threshold", _("A share's target is a percentage between 0 and 100."))
    elif kpi.kind == KPI.Kind.RATIO and threshold <= 0:
        add("threshold", _("A ratio's target must be greater than 0."))
    elif kpi.kind == KPI.Kind.MEAN and kpi.mean_question is not None:
        scores = [c.score for c in kpi.mean_question.choices.all() if c.score is not None]
        if scores and not min(scores) <= threshold <= max(scores):
            add(
                "threshold",
                _("The target must lie between the scale's scores %(low)s and %(high)s.")
                % {"low": min(scores), "high": max(scores)},
            )
