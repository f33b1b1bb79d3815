"""KPI definitions as plain data: what a run scores, frozen into the run when it starts.

A run keeps this snapshot (``EvaluationRun.definitions``), so the figures it produced can
always be explained by the definitions they came from, whatever is edited afterwards.
Segments are kept by question and choice *codes*, so they apply to every instrument version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, overload

from .models import KPI, Clause, Segment


@dataclass(frozen=True)
class ClauseDef:
    question: str
    choices: tuple[str, ...]
    tag: str
    negate: bool


@dataclass(frozen=True)
class SegmentDef:
    code: str
    clauses: tuple[ClauseDef, ...]

    @property
    def key(self) -> tuple[ClauseDef, ...]:
        # Two segments with the same clauses count the same respondents.
        return tuple(sorted(set(self.clauses), key=repr))


@dataclass(frozen=True)
class KPIDef:
    id: int
    code: str
    order: int
    group: str
    kind: str
    name_ja: str
    name_en: str
    base_description_ja: str
    base_description_en: str
    base: str
    numerator: SegmentDef | None
    base_segment: SegmentDef | None
    mean_question: str
    comparator: str
    threshold: str  # a Decimal as text: JSON has no exact decimals
    rule: str
    confidence: str
    min_n: int
    by_site: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KPIDef:
        def segment(value: dict[str, Any] | None) -> SegmentDef | None:
            if value is None:
                return None
            clauses = tuple(
                ClauseDef(
                    question=c["question"],
                    choices=tuple(c["choices"]),
                    tag=c["tag"],
                    negate=c["negate"],
                )
                for c in value["clauses"]
            )
            return SegmentDef(code=value["code"], clauses=clauses)

        fields = dict(data)
        fields["numerator"] = segment(data["numerator"])
        fields["base_segment"] = segment(data["base_segment"])
        return cls(**fields)

    @property
    def threshold_decimal(self) -> Decimal | None:
        return Decimal(self.threshold) if self.threshold else None


def clause_def(clause: Clause) -> ClauseDef:
    return ClauseDef(
        question=clause.question.code,
        choices=tuple(sorted(c.code for c in clause.choices.all())),
        tag=clause.tag,
        negate=clause.negate,
    )


@overload
def segment_def(segment: Segment) -> SegmentDef: ...
@overload
def segment_def(segment: None) -> None: ...
@overload
def segment_def(segment: Segment | None) -> SegmentDef | None: ...
def segment_def(segment: Segment | None) -> SegmentDef | None:
    """A segment's clauses as plain data (by codes, so they fit every version)."""
    if segment is None:
        return None
    return SegmentDef(
        code=segment.code, clauses=tuple(clause_def(c) for c in segment.clauses.all())
    )


_KEEP: Any = object()


def kpi_def(k: KPI, *, numerator: SegmentDef | None = _KEEP) -> KPIDef:
    """A KPI as plain data. ``numerator`` replaces its segment's conditions: the admin's
    preview of a KPI whose success is ticked on its form, before any segment is saved.
    An unsaved KPI has the id 0."""
    return KPIDef(
        id=k.pk or 0,
        code=k.code,
        order=k.order,
        group=k.group,
        kind=k.kind,
        name_ja=k.name_ja,
        name_en=k.name_en,
        base_description_ja=k.base_description_ja,
        base_description_en=k.base_description_en,
        base=k.base,
        numerator=segment_def(k.numerator) if numerator is _KEEP else numerator,
        base_segment=segment_def(k.base_segment),
        mean_question=k.mean_question.code if k.mean_question else "",
        comparator=k.comparator,
        threshold=str(k.threshold) if k.threshold is not None else "",
        rule=k.rule,
        confidence=str(k.confidence),
        min_n=k.min_n,
        by_site=k.by_site,
    )


def study_definitions(study_id: int) -> list[KPIDef]:
    """The active KPIs of a study as plain data, in display order."""
    kpis = (
        KPI.objects.filter(study_id=study_id, active=True)
        .select_related("numerator", "base_segment", "mean_question")
        .prefetch_related(
            "numerator__clauses__question",
            "numerator__clauses__choices",
            "base_segment__clauses__question",
            "base_segment__clauses__choices",
        )
        .order_by("order", "code")
    )
    return [kpi_def(k) for k in kpis]
