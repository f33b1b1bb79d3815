"""Writes of KPI definitions: segments with their conditions, and KPIs.

The admin's forms, the API's serializers and the ``kpis.toml`` loader all write through
here; they only translate their input. Each function is keyword-only, runs in one
transaction, and checks the rules of ``validation`` (the admin's words) before writing:
a broken rule raises ``ValidationError`` (per field) and changes nothing. The forms and
serializers check the same rules first, to put each message at its field. Every
historical record written names ``user`` (``None``: no account, as for a command). Once a
study's specification is registered, every write here is refused
(``SpecificationLocked``) unless a deviation opened it (``kpi/registration/lock.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils.text import Truncator

from kpi.registration.lock import ensure_unlocked
from surveys.history import recorded_by
from surveys.models import Choice, Question, Study

from . import selectors
from .frozen import ClauseDef
from .models import KPI, Clause, Segment
from .validation import validate_clause, validate_kpi

User = AbstractBaseUser | AnonymousUser


class SegmentFields(TypedDict, total=False):
    study: Study
    code: str
    name_ja: str
    name_en: str


@dataclass(frozen=True)
class ClauseData:
    """A condition as written. ``id`` names the segment's condition it changes; without
    one, a new condition is added."""

    question: Question | None
    choices: Sequence[Choice] = ()
    tag: str = ""
    negate: bool = False
    id: int | None = None


class KPIFields(TypedDict, total=False):
    study: Study
    code: str
    order: int
    group: str
    name_ja: str
    name_en: str
    base_description_ja: str
    base_description_en: str
    kind: str
    numerator: Segment | None
    base: str
    base_segment: Segment | None
    mean_question: Question | None
    comparator: str
    threshold: Decimal | None
    rule: str
    confidence: Decimal
    min_n: int
    by_site: bool
    active: bool


#: The KPI's writable fields, in the order forms and the API show them: the one list.
KPI_FIELDS: tuple[str, ...] = tuple(KPIFields.__annotations__)


@dataclass(frozen=True)
class SuccessChoices:
    """What counts as success, ticked on the KPI's own form: choosing any of ``choices``
    of ``question``. Saved as a segment (an equivalent one when the study has it)."""

    question: Question
    choices: Sequence[Choice]

    @property
    def clauses(self) -> tuple[ClauseDef, ...]:
        codes = tuple(sorted(c.code for c in self.choices))
        return (ClauseDef(question=self.question.code, choices=codes, tag="", negate=False),)


def segment_fields(data: Mapping[str, Any]) -> SegmentFields:
    """The segment's writable fields among ``data`` (a form's or a serializer's cleaned
    data, which hold more: the row's id …)."""
    return cast(
        SegmentFields, {k: v for k, v in data.items() if k in SegmentFields.__annotations__}
    )


def kpi_fields(data: Mapping[str, Any]) -> KPIFields:
    """The KPI's writable fields among ``data``, as ``segment_fields``."""
    names = KPIFields.__annotations__
    return cast(KPIFields, {k: v for k, v in data.items() if k in names})


def segment_save(
    *,
    segment: Segment | None = None,
    fields: SegmentFields,
    clauses: Sequence[ClauseData] | None = None,
    user: User | None,
) -> Segment:
    """Create a segment (``segment`` None, or unsaved as the admin's form holds it) or
    change one; with ``clauses``, its conditions become exactly those
    (``segment_clauses_save``)."""
    segment = segment if segment is not None else Segment()
    if segment.pk is not None and "study" in fields and fields["study"].pk != segment.study_id:
        # Its conditions name the study's questions. The admin and the API show the study
        # read-only once created: only a programming error gets here.
        raise ValueError("a segment stays in its study")
    study_id = fields["study"].pk if "study" in fields else segment.study_id
    ensure_unlocked(study_id=study_id, table="kpi_segment", row_id=segment.pk)
    for name, value in fields.items():
        setattr(segment, name, value)
    segment.full_clean()
    with transaction.atomic(), recorded_by(user):
        segment.save()
        if clauses is not None:
            segment_clauses_save(segment=segment, clauses=clauses, user=user)
    return segment


def segment_clauses_save(
    *, segment: Segment, clauses: Sequence[ClauseData], user: User | None
) -> None:
    """Make the segment's conditions exactly ``clauses``: those with an ``id`` change that
    condition (recorded only if something changed), the others are added, and the
    segment's conditions not named are deleted."""
    ensure_unlocked(study_id=segment.study_id, table="kpi_segment", row_id=segment.pk)
    existing = {clause.pk: clause for clause in segment.clauses.prefetch_related("choices")}
    for data in clauses:
        if data.id is not None and data.id not in existing:
            raise ValueError(f"condition {data.id} is not one of segment {segment.pk}'s")
        validate_clause(segment=segment, question=data.question, choices=data.choices, tag=data.tag)
    named = {data.id for data in clauses if data.id is not None}
    with transaction.atomic(), recorded_by(user):
        for pk, old in existing.items():
            if pk not in named:
                old.delete()
        for data in clauses:
            assert data.question is not None  # validate_clause refused it
            clause = existing[data.id] if data.id is not None else Clause(segment=segment)
            wanted = (data.question.pk, data.tag, data.negate)
            if clause.pk is None or wanted != (clause.question_id, clause.tag, clause.negate):
                clause.question, clause.tag, clause.negate = data.question, data.tag, data.negate
                clause.full_clean(exclude=["segment"])
                clause.save()
            # Records a change of the ticked choices only when they change.
            clause.choices.set(data.choices)


def segment_delete(*, segment: Segment, user: User | None) -> None:
    """Delete a segment and its conditions; refused (``ProtectedError``) while a KPI
    uses it."""
    ensure_unlocked(study_id=segment.study_id, table="kpi_segment", row_id=segment.pk)
    with transaction.atomic(), recorded_by(user):
        segment.delete()


def kpi_save(
    *,
    kpi: KPI | None = None,
    fields: KPIFields,
    success: SuccessChoices | None = None,
    user: User | None,
) -> KPI:
    """Create a KPI (``kpi`` None, or unsaved as the admin's form holds it) or change one.
    With ``success``, its numerator is the study's segment of those choices, made if the
    study has none (and not made if the KPI is refused)."""
    kpi = kpi if kpi is not None else KPI()
    if kpi.pk is not None and "study" in fields and fields["study"].pk != kpi.study_id:
        # Its segments belong to its study (read-only once created, as above).
        raise ValueError("a KPI stays in its study")
    study_id = fields["study"].pk if "study" in fields else kpi.study_id
    ensure_unlocked(study_id=study_id, table="kpi_kpi", row_id=kpi.pk)
    with transaction.atomic(), recorded_by(user):
        for name, value in fields.items():
            setattr(kpi, name, value)
        if success is not None:
            kpi.numerator = success_segment(
                study=kpi.study, success=success, prefer=kpi.numerator_id, user=user
            )
        validate_kpi(kpi)  # first: its words, not a database constraint's name
        kpi.full_clean()
        kpi.save()
    return kpi


def success_segment(
    *, study: Study, success: SuccessChoices, prefer: int | None = None, user: User | None
) -> Segment:
    """The study's segment of respondents who chose any of ``success.choices``: an
    equivalent existing one (``prefer``'s, the KPI's own, if it is one), else a new one,
    named after the question and the choices."""
    existing = selectors.equivalent_segment(study.pk, success.clauses, prefer=prefer)
    if existing is not None:
        return existing
    question, choices = success.question, sorted(success.choices, key=lambda c: c.order)
    stem = Truncator("_".join([question.code, *(c.code for c in choices)])).chars(60, truncate="")
    taken = set(Segment.objects.filter(study=study).values_list("code", flat=True))
    code = next(c for c in (stem, *(f"{stem}-{i}" for i in range(2, 10_000))) if c not in taken)

    def name(language: str) -> str:
        labels = [getattr(c, f"label_{language}") or c.label_ja for c in choices]
        return Truncator(f"{question.code}: {' / '.join(labels)}").chars(200)

    return segment_save(
        fields={"study": study, "code": code, "name_ja": name("ja"), "name_en": name("en")},
        clauses=[ClauseData(question=question, choices=choices)],
        user=user,
    )


def kpi_delete(*, kpi: KPI, user: User | None) -> None:
    ensure_unlocked(study_id=kpi.study_id, table="kpi_kpi", row_id=kpi.pk)
    with transaction.atomic(), recorded_by(user):
        kpi.delete()
