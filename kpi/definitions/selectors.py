"""Reads of definitions: what a segment's conditions and a KPI can refer to, and segments
with their conditions, as the admin's forms and lists need them."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery

from surveys.models import Choice, Instrument, Question

from .frozen import ClauseDef, SegmentDef, segment_def
from .models import KPI, Clause, Segment


def current_instrument_ids(study_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Each study's current instrument: its newest published version, or, while nothing is
    published yet, its newest draft (so segments can be set up before the questionnaire
    goes out). Clauses match by codes, so any version of the study's questionnaire fits."""
    instruments = Instrument.objects.order_by("study_id", "-version")
    if study_ids is not None:
        instruments = instruments.filter(study_id__in=list(study_ids))
    published: dict[int, int] = {}
    newest: dict[int, int] = {}
    for pk, study_id, status in instruments.values_list("pk", "study_id", "status"):
        newest.setdefault(study_id, pk)
        if status == Instrument.Status.PUBLISHED:
            published.setdefault(study_id, pk)
    return {study_id: published.get(study_id, pk) for study_id, pk in newest.items()}


def choice_questions(study_id: int | None = None) -> QuerySet[Question]:
    """The choice-type questions of the current instrument of one study (or of every
    study), in questionnaire order, with their study for labels."""
    ids = current_instrument_ids(None if study_id is None else [study_id])
    return (
        Question.objects.filter(instrument_id__in=ids.values(), type__in=Question.CHOICE_TYPES)
        .select_related("instrument__study")
        .order_by("instrument__study__code", "order")
    )


def scale_questions(study_id: int | None = None) -> QuerySet[Question]:
    """The four-point scale items a mean KPI can average."""
    return choice_questions(study_id).filter(type=Question.Type.SCALE4)


def choices_of(questions: QuerySet[Question]) -> QuerySet[Choice]:
    return Choice.objects.filter(question__in=questions).select_related("question")


def segments_for(study_id: int | None = None) -> QuerySet[Segment]:
    segments = Segment.objects.select_related("study").order_by("study__code", "code")
    return segments if study_id is None else segments.filter(study_id=study_id)


class SubqueryCount(Subquery):
    """``COUNT(*)`` of any subquery's rows (one row per outer row, whatever it filters)."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS counted)"
    output_field = IntegerField()


def segments_with_clauses(queryset: QuerySet[Segment]) -> QuerySet[Segment]:
    """Segments with their clauses (question and choices) and how many KPIs use them."""
    clauses = Clause.objects.select_related("question").prefetch_related(
        Prefetch("choices", queryset=Choice.objects.order_by("order"))
    )
    used = KPI.objects.filter(Q(numerator=OuterRef("pk")) | Q(base_segment=OuterRef("pk")))
    return (
        queryset.select_related("study")
        .prefetch_related(Prefetch("clauses", queryset=clauses))
        .annotate(kpis_using=SubqueryCount(used.order_by().values("pk")))
    )


def equivalent_segment(
    study_id: int, clauses: tuple[ClauseDef, ...], *, prefer: int | None = None
) -> Segment | None:
    """A segment of the study whose conditions count the same respondents as ``clauses``
    (the same conditions by question and choice codes, in any order); ``prefer``'s if it
    is one of them, else the one with the smallest code."""
    wanted = SegmentDef(code="", clauses=clauses).key
    segments = Segment.objects.filter(study_id=study_id).prefetch_related(
        "clauses__question", "clauses__choices"
    )
    found = [s for s in segments.order_by("code") if _key(s) == wanted]
    preferred = [s for s in found if s.pk == prefer]
    return (preferred or found)[0] if found else None


def _key(segment: Segment) -> tuple[ClauseDef, ...]:
    defined = segment_def(segment)
    assert defined is not None
    return defined.key
