"""Writes of segments and KPIs: one service for the admin, the API and the loader. It
checks the admin's rules whoever calls it, records who wrote (the user passed in, even
during another user's request) and records a condition only when it changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import translation

from kpi.definitions import services
from kpi.definitions.loading import kpis_path, load_kpis
from kpi.models import KPI, Clause, Segment
from surveys.history import recorded_by
from surveys.loading import load_study
from surveys.models import Question, Study


@pytest.fixture
def study_with_kpis(db) -> Study:  # type: ignore[no-untyped-def]
    study = load_study()
    path = kpis_path()
    assert path is not None
    load_kpis(study=study, path=path)
    return study


@pytest.fixture(autouse=True)
def _english():  # type: ignore[no-untyped-def]
    with translation.override("en"):
        yield


def who(records: Any) -> list[str | None]:
    return [r.history_user and r.history_user.username for r in records.order_by("history_id")]


def test_a_segment_and_its_conditions_are_recorded_as_written_by_the_user_passed(
    study_with_kpis,
):
    user = User.objects.create_user("writer")
    tool = Question.objects.get(instrument__study=study_with_kpis, code="tool")
    phone = tool.choices.get(code="phone")
    segment = services.segment_save(
        fields={"study": study_with_kpis, "code": "phone", "name_ja": "電話"},
        clauses=[services.ClauseData(question=tool, choices=[phone])],
        user=user,
    )
    clause = segment.clauses.get()
    assert list(clause.choices.all()) == [phone]
    assert who(segment.history) == ["writer"]  # type: ignore[attr-defined]
    # The row, then its ticked choices: both name the writer.
    assert who(clause.history) == ["writer", "writer"]  # type: ignore[attr-defined]


def test_the_user_passed_wins_over_an_enclosing_writer(study_with_kpis):
    """A service names the user it was given (here none: a command's write), never one
    named around it (or the request's, which simple-history would take)."""
    segment = Segment.objects.get(study=study_with_kpis, code="line")
    other = User.objects.create_user("other")
    with recorded_by(other):
        services.segment_save(segment=segment, fields={"name_en": "LINE users"}, user=None)
    assert who(segment.history)[-1] is None  # type: ignore[attr-defined]


def test_an_unchanged_condition_leaves_no_record_and_a_dropped_one_is_deleted(
    study_with_kpis,
):
    user = User.objects.create_user("editor")
    segment = Segment.objects.get(study=study_with_kpis, code="line")
    (clause,) = segment.clauses.all()
    kept = services.ClauseData(
        question=clause.question,
        choices=list(clause.choices.all()),
        tag=clause.tag,
        negate=clause.negate,
        id=clause.pk,
    )
    records = Clause.history.filter(id=clause.pk)  # type: ignore[attr-defined]
    before = records.count()
    services.segment_clauses_save(segment=segment, clauses=[kept], user=user)
    assert records.count() == before
    services.segment_clauses_save(segment=segment, clauses=[], user=user)
    assert not segment.clauses.exists()
    assert (records.latest("history_id").history_type, who(records)[-1]) == ("-", "editor")


def test_a_kpi_breaking_a_rule_is_refused_by_the_service_itself_and_nothing_changes(
    study_with_kpis,
):
    """The loader and any other caller get the admin's rules, in the admin's words."""
    kpi = KPI.objects.get(study=study_with_kpis, code="reassured")
    with pytest.raises(ValidationError) as refused:
        services.kpi_save(kpi=kpi, fields={"threshold": None}, user=None)
    assert refused.value.message_dict == {
        "threshold": ["Give both the comparator and the target, or neither."]
    }
    kpi.refresh_from_db()
    assert kpi.threshold is not None
    line = Segment.objects.get(study=study_with_kpis, code="line")
    with pytest.raises(ValidationError) as refused:
        services.kpi_save(
            fields={
                "study": study_with_kpis,
                "code": "line_ratio",
                "name_ja": "比",
                "kind": KPI.Kind.RATIO,
                "numerator": line,
                "base": KPI.Base.SEGMENT,
                "base_segment": line,
            },
            user=None,
        )
    assert refused.value.message_dict == {
        "base_segment": ["A ratio of a segment over itself is always 1."]
    }
    assert not KPI.objects.filter(code="line_ratio").exists()
