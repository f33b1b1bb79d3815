"""On random studies, the database scoring equals a plain-Python count over the answers."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi.models import KPI, Clause, EvaluationRun, Segment
from kpi.scoring import execution
from surveys import services as survey_services
from surveys.models import Answer, Choice, Participant, Question
from surveys.selectors import instrument_current
from tests.factories import SiteFactory, StudyFactory, reference_instrument

SCALES = ["reassured", "continue", "reuse", "understood"]


class _Rollback(Exception):
    pass


def random_answers(data: st.DataObject, choices: dict[str, list[Choice]]) -> dict[str, object]:
    channel_codes = [c.code for c in choices["channels"] if not c.exclusive]
    channels = data.draw(st.lists(st.sampled_from(channel_codes), unique=True, max_size=5))
    answers: dict[str, object] = {"channels": channels or ["none"]}
    for code in ["reassured", "continue", "reuse", "tool"]:
        answers[code] = data.draw(st.sampled_from([c.code for c in choices[code]]))
    if any("online" in c.tags for c in choices["channels"] if c.code in channels):
        answers["understood"] = data.draw(st.sampled_from([c.code for c in choices["understood"]]))
    return answers


def random_segment(data: st.DataObject, study, questions: dict[str, Question], n: int) -> Segment:  # type: ignore[no-untyped-def]
    segment = Segment.objects.create(study=study, code=f"seg{n}", name_ja=f"セグメント{n}")
    for _ in range(data.draw(st.integers(1, 2))):
        code = data.draw(st.sampled_from(["channels", "tool", *SCALES]))
        question = questions[code]
        options = list(question.choices.all())
        tag = ""
        picked: list[Choice] = []
        if code == "channels" and data.draw(st.booleans()):
            tag = data.draw(st.sampled_from(["online", "municipal"]))
        else:
            picked = data.draw(st.lists(st.sampled_from(options), min_size=1, unique=True))
        clause = Clause.objects.create(
            segment=segment, question=question, tag=tag, negate=data.draw(st.booleans())
        )
        clause.choices.set(picked)
    return segment


def matches(
    segment: Segment, chosen: dict[str, set[str]], tags: dict[tuple[str, str], list]
) -> bool:  # type: ignore[type-arg]
    for clause in segment.clauses.all():
        codes = {c.code for c in clause.choices.all()}
        picked = chosen.get(clause.question.code, set())
        hit = any(
            c in codes or (clause.tag and clause.tag in tags[(clause.question.code, c)])
            for c in picked
        )
        if hit == clause.negate:
            return False
    return True


def expected_counts(study, kpi: KPI, tags) -> dict[int | None, tuple[int, int, float | None]]:  # type: ignore[no-untyped-def]
    """Numerator, base and (for means) the mean, per site and overall (None), by hand."""
    chosen: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    site_of: dict[int, int] = {}
    score: dict[tuple[int, str], int] = {}
    rows = Answer.objects.filter(
        response__status="submitted", response__participant__site__study=study
    ).values_list(
        "response_id",
        "response__participant__site_id",
        "question__code",
        "choice__code",
        "choice__score",
    )
    for response_id, site_id, question, choice, choice_score in rows:
        chosen[response_id][question].add(choice)
        site_of[response_id] = site_id
        if choice_score is not None:
            score[(response_id, question)] = choice_score
    invited: dict[int, int] = defaultdict(int)
    for site_id in Participant.objects.filter(site__study=study).values_list("site_id", flat=True):
        invited[site_id] += 1
    out: dict[int | None, tuple[int, int, float | None]] = {}
    for scope in [None, *study.sites.values_list("pk", flat=True)]:
        responses = [r for r in chosen if scope is None or site_of[r] == scope]
        in_base = [
            r
            for r in responses
            if kpi.base_segment is None or matches(kpi.base_segment, chosen[r], tags)
        ]
        if kpi.kind == "share":
            num = sum(
                1
                for r in in_base
                if kpi.numerator is None or matches(kpi.numerator, chosen[r], tags)
            )
            base = (
                (sum(invited.values()) if scope is None else invited[scope])
                if kpi.base == "invited"
                else len(in_base)
            )
            out[scope] = (num, base, None)
        elif kpi.kind == "ratio":
            num = sum(1 for r in responses if matches(kpi.numerator, chosen[r], tags))
            out[scope] = (num, len(in_base), None)
        else:
            scores = [
                score[(r, kpi.mean_question.code)]
                for r in in_base
                if (r, kpi.mean_question.code) in score
            ]
            out[scope] = (sum(scores), len(scores), sum(scores) / len(scores) if scores else None)
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_database_scoring_equals_a_plain_python_count(db, data):
    try:
        with transaction.atomic():
            check_one_random_study(data)
            raise _Rollback
    except _Rollback:
        pass


def check_one_random_study(data: st.DataObject) -> None:
    study = StudyFactory()
    v1 = reference_instrument(study)
    sites = [SiteFactory(study=study) for _ in range(data.draw(st.integers(1, 3)))]
    participants = [
        survey_services.participant_create(
            site=data.draw(st.sampled_from(sites)), reference=f"R{i}"
        ).participant
        for i in range(data.draw(st.integers(1, 25)))
    ]
    respondents = data.draw(st.lists(st.sampled_from(participants), unique=True))
    # Some respond to version 1, then version 2 is published and the rest answer it.
    switch = data.draw(st.integers(0, len(respondents)))
    for i, participant in enumerate(respondents):
        if i == switch:
            draft = survey_services.instrument_new_version(instrument=v1)
            survey_services.instrument_publish(instrument=draft)
        instrument = instrument_current(study)
        choices = {q.code: list(q.choices.all()) for q in instrument.questions.all()}
        survey_services.response_submit(
            participant=participant, answers=random_answers(data, choices), language="ja"
        )
    # A draft that must not count.
    left = [p for p in participants if p not in respondents]
    if left:
        survey_services.response_save_draft(
            participant=left[0], answers={"tool": "line"}, language="ja"
        )

    questions = {q.code: q for q in v1.questions.all()}
    segments = [random_segment(data, study, questions, n) for n in range(3)]
    kind = data.draw(st.sampled_from(["share", "ratio", "mean"]))
    fields: dict[str, object] = {
        "study": study,
        "code": "k",
        "name_ja": "k",
        "kind": kind,
        "min_n": 1,
    }
    if kind == "share":
        fields["base"] = data.draw(st.sampled_from(["invited", "respondents", "segment"]))
        fields["numerator"] = (
            data.draw(st.sampled_from([None, *segments]))
            if fields["base"] == "invited"
            else segments[0]
        )
        if fields["base"] == "segment":
            fields["base_segment"] = segments[1]
        fields.update(comparator=">=", threshold=Decimal(data.draw(st.integers(0, 100))))
    elif kind == "ratio":
        fields.update(base="segment", numerator=segments[0], base_segment=segments[1])
    else:
        fields["mean_question"] = questions[data.draw(st.sampled_from(SCALES))]
        fields["base"] = data.draw(st.sampled_from(["respondents", "segment"]))
        if fields["base"] == "segment":
            fields["base_segment"] = segments[2]
    kpi = KPI.objects.create(**fields)

    run = EvaluationRun.objects.create(study=study, trigger="command")
    run = execution.run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error

    tags = {
        (c.question.code, c.code): c.tags
        for c in Choice.objects.filter(question__instrument__study=study).select_related("question")
    }
    expected = expected_counts(study, kpi, tags)
    for result in run.results.all():
        num, base, mean = expected[result.site_id]
        assert (result.numerator, result.denominator) == (num, base), (result.site_id, kind)
        if kind == "mean" and mean is not None:
            assert abs(result.value - mean) < 1e-9
        if base == 0:
            assert result.value is None
