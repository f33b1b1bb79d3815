"""A copied study's segments and KPIs (the ``study_copied`` signal of ``surveys.copying``).

Segments and KPIs refer to questions and choices of the source study's instrument; the
copy refers to the same codes in the copied instrument (clauses match by code anyway).
Run inside the copy's transaction: a reference the copy cannot keep fails the whole copy.
A copied KPI is not registered: the new study's targets are registered before its own
fieldwork.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from surveys.history import Reason, save_with_reason
from surveys.models import Choice, Instrument, Question, Study

from .models import KPI, Clause, Segment


class _Codes:
    """The copy's questions and choices, found by the source's codes."""

    def __init__(self, instrument: Instrument | None) -> None:
        questions = instrument.questions.prefetch_related("choices") if instrument else []
        self.questions = {q.code: q for q in questions}
        self.choices = {(q.code, c.code): c for q in questions for c in q.choices.all()}

    def question(self, old: Question) -> Question:
        return self.questions[old.code]

    def choice(self, old: Choice) -> Choice:
        return self.choices[(old.question.code, old.code)]


def _plain(instance: models.Model, skip: set[str]) -> dict[str, Any]:
    """The row's own values (every concrete field but the key, the study and ``skip``)."""
    return {
        f.attname: getattr(instance, f.attname)
        for f in type(instance)._meta.concrete_fields
        if f.name not in {"id", "study", *skip}
    }


def on_study_copied(
    sender: Any, *, source: Study, copy: Study, instrument: Instrument | None, **kwargs: Any
) -> None:
    codes = _Codes(instrument)
    segments: dict[int, Segment] = {}
    for old in Segment.objects.filter(study=source).prefetch_related(
        "clauses__question", "clauses__choices__question"
    ):
        new = Segment(study=copy, **_plain(old, set()))
        save_with_reason(new, Reason.STUDY_COPIED.value)
        segments[old.pk] = new
        for old_clause in old.clauses.all():
            clause = Clause(
                segment=new,
                question=codes.question(old_clause.question),
                **_plain(old_clause, {"segment", "question"}),
            )
            save_with_reason(clause, Reason.STUDY_COPIED.value)
            clause.choices.set([codes.choice(c) for c in old_clause.choices.all()])
    relations = {
        f.name: f
        for f in KPI._meta.concrete_fields
        if f.is_relation and f.name != "study" and f.related_model in (Segment, Question)
    }
    for kpi in KPI.objects.filter(study=source).select_related(*relations):
        fields = _plain(kpi, set(relations))
        for name, field in relations.items():
            target = getattr(kpi, name)
            if target is None:
                fields[name] = None
            elif field.related_model is Segment:
                fields[name] = segments[target.pk]
            else:
                fields[name] = codes.question(target)
        save_with_reason(KPI(study=copy, **fields), Reason.STUDY_COPIED.value)
