"""The submission pipeline's two paths (``surveys/submission/pipeline.py``): the
one-statement writes of PostgreSQL and the general locked path store the same rows and
the same history, and each case takes the path it should.

Every test runs on both paths where the database has them: ``one_statement`` needs
PostgreSQL (marked ``postgres``: skipped on SQLite locally, run in CI and with
``DATABASE_URL=postgres://… pytest tests/surveys/test_submission_paths.py``);
``general`` runs everywhere, with the one-statement writes switched off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from surveys import services
from surveys.answers import InstrumentForm
from surveys.errors import AlreadySubmitted, AnswersInvalid
from surveys.models import Answer, Participant, Response
from surveys.selectors import instrument_current
from surveys.submission import Link, link_for_token, pipeline, statements
from surveys.submission.pipeline import Fast
from tests.factories import ParticipantFactory, complete_answers

ResponseHistory: Any = Response.history.model  # type: ignore[attr-defined]
AnswerHistory: Any = Answer.history.model  # type: ignore[attr-defined]

ONE_STATEMENT, GENERAL = "one_statement", "general"


@pytest.fixture(params=[pytest.param(ONE_STATEMENT, marks=pytest.mark.postgres), GENERAL])
def path(request, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    if request.param == GENERAL:
        monkeypatch.setattr(statements, "can_write_in_one_statement", lambda: False)
    return str(request.param)


@pytest.fixture
def outcomes(monkeypatch) -> list[Fast]:  # type: ignore[no-untyped-def]
    """What became of each one-statement attempt, in order."""
    seen: list[Fast] = []
    attempt = pipeline._in_one_statement

    def spy(write: pipeline.Write) -> pipeline.FastOutcome:
        outcome = attempt(write)
        seen.append(outcome.fast)
        return outcome

    monkeypatch.setattr(pipeline, "_in_one_statement", spy)
    return seen


def expect(path: str, fast: Fast) -> list[Fast]:
    """The outcome the one-statement attempt has on ``path``."""
    return [fast if path == ONE_STATEMENT else Fast.NOT_ON_THIS_DATABASE]


def link(participant: Participant) -> Link:
    found = link_for_token(participant.token)  # type: ignore[attr-defined]
    assert found is not None
    return found


def stored(response: Response) -> set[tuple[Any, ...]]:
    return set(response.answers.values_list("question__code", "choice__code"))


def replayed(response: Response) -> set[tuple[Any, ...]]:
    """The answers the history says the response holds: "+" and "-" applied in time order."""
    state: set[tuple[Any, ...]] = set()
    rows = AnswerHistory.objects.filter(response_id=response.pk).order_by("history_date", "pk")
    for r in rows.values_list("history_type", "question__code", "choice__code"):
        if r[0] == "+":
            state.add(r[1:])
        else:
            state.remove(r[1:])
    return state


def response_records(response: Response) -> list[tuple[Any, ...]]:
    rows = ResponseHistory.objects.filter(id=response.pk).order_by("history_id")
    return list(rows.values_list("history_type", "status", "history_change_reason", "history_user"))


ANSWER_RECORD = ("history_type", "question__code", "choice__code", "history_change_reason")


def answer_records(response: Response) -> list[tuple[Any, ...]]:
    rows = AnswerHistory.objects.filter(response_id=response.pk)
    return sorted(rows.values_list(*ANSWER_RECORD, "history_user"))


def rows_of(answers: dict[str, object]) -> set[tuple[str, str]]:
    return {
        (code, str(choice))
        for code, value in answers.items()
        for choice in (value if isinstance(value, list) else [value])
    }


# --- The lookup ---------------------------------------------------------------------------


def test_the_lookup_hands_over_an_explicit_value_and_nothing_hidden_on_the_models(participant):
    before = link(participant)
    assert before.response is None
    assert before.participant == participant
    assert before.site.study_id == participant.site.study_id
    assert before.current_instrument_id == instrument_current(participant.site.study).pk  # type: ignore[union-attr]
    services.response_save_draft(participant=before, answers={"tool": "line"}, language="ja")

    after = link(participant)
    assert after.response is not None
    assert (after.response.pk, after.response.status) == (
        Response.objects.get(participant=participant).pk,
        "draft",
    )
    assert after.response.instrument.pk == after.current_instrument_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.response = None  # type: ignore[misc]
    # No state in the participant's reverse relation cache or in attributes of its own.
    assert not Participant.response.is_cached(after.participant)  # type: ignore[attr-defined]
    assert not hasattr(after.participant, "current_instrument_id")


# --- Each case, on each path ----------------------------------------------------------------


def test_a_first_submission_stores_the_response_its_answers_and_one_created_record_each(
    participant, path, outcomes
):
    answers = complete_answers()
    response = services.response_submit(
        participant=link(participant), answers=answers, language="en"
    )

    assert outcomes == expect(path, Fast.WRITTEN)
    response = Response.objects.get(pk=response.pk)
    assert (response.status, response.language, response.source) == ("submitted", "en", "web")
    assert stored(response) == rows_of(answers)
    assert response_records(response) == [("+", "submitted", "participant submission (web)", None)]
    assert answer_records(response) == sorted(
        ("+", q, c, "participant submission (web)", None) for q, c in rows_of(answers)
    )


def test_a_first_draft_save_is_recorded_as_a_draft(participant, path, outcomes):
    response = services.response_save_draft(
        participant=link(participant), answers={"tool": "line"}, language="ja", source="api"
    )

    assert outcomes == expect(path, Fast.WRITTEN)
    assert Response.objects.get(pk=response.pk).status == "draft"
    assert response_records(response) == [("+", "draft", "participant draft (api)", None)]
    assert answer_records(response) == [("+", "tool", "line", "participant draft (api)", None)]


def test_the_draft_submitted_as_autosaved_writes_only_the_responses_record(
    participant, path, outcomes
):
    answers = complete_answers()
    services.response_save_draft(participant=link(participant), answers=answers, language="ja")
    response = Response.objects.get(participant=participant)
    answers_before = answer_records(response)

    services.response_submit(participant=link(participant), answers=answers, language="ja")

    assert outcomes[1:] == expect(path, Fast.WRITTEN)
    response.refresh_from_db()
    assert response.is_submitted
    assert stored(response) == rows_of(answers)
    assert [r[:3] for r in response_records(response)] == [
        ("+", "draft", "participant draft (web)"),
        ("~", "submitted", "participant submission (web)"),
    ]
    assert answer_records(response) == answers_before


def test_a_changed_draft_is_submitted_by_the_general_path_recording_only_the_change(
    participant, path, outcomes
):
    services.response_save_draft(
        participant=link(participant), answers=complete_answers(tool="line"), language="ja"
    )
    services.response_submit(
        participant=link(participant), answers=complete_answers(tool="phone"), language="ja"
    )

    assert outcomes[1:] == expect(path, Fast.DRAFT_CHANGED)
    response = Response.objects.get(participant=participant)
    assert response.is_submitted
    assert stored(response) == rows_of(complete_answers(tool="phone"))
    changed = [r for r in answer_records(response) if r[1] == "tool"]
    assert changed == [
        ("+", "tool", "line", "participant draft (web)", None),
        ("+", "tool", "phone", "participant submission (web)", None),
        ("-", "tool", "line", "participant submission (web)", None),
    ]
    assert replayed(response) == stored(response)


def test_a_draft_saved_again_is_written_by_the_general_path(participant, path, outcomes):
    services.response_save_draft(participant=link(participant), answers={}, language="ja")
    services.response_save_draft(
        participant=link(participant), answers={"tool": "email"}, language="en"
    )

    assert outcomes[1:] == expect(path, Fast.DRAFT_SAVED_AGAIN)
    response = Response.objects.get(participant=participant)
    assert (response.status, response.language) == ("draft", "en")
    assert stored(response) == {("tool", "email")}


def test_quick_autosaves_then_the_submission_leave_a_history_that_adds_up(
    participant, path, outcomes
):
    """The saves in between are not recorded; the draft as it last stood is, at the
    submission, whichever path submits it."""
    for tool in ["line", "phone", "email"]:
        services.response_save_draft(
            participant=link(participant), answers=complete_answers(tool=tool), language="ja"
        )
    response = Response.objects.get(participant=participant)
    assert response.answers.filter(recorded=False).exists()
    services.response_submit(
        participant=link(participant), answers=complete_answers(tool="email"), language="ja"
    )

    assert outcomes[-1:] == expect(path, Fast.WRITTEN)
    response.refresh_from_db()
    assert response.is_submitted
    assert replayed(response) == stored(response) == rows_of(complete_answers(tool="email"))
    assert [r[0] for r in response_records(response)] == ["+", "~"]


# --- Races: the statements' conditions and the row lock decide, not what was read --------------


def test_a_submission_that_lost_the_race_is_refused_and_changes_nothing(
    participant, path, outcomes
):
    stale = link(participant)  # looked up before the other request stored its answers
    services.response_submit(
        participant=link(participant), answers=complete_answers(tool="line"), language="ja"
    )
    with pytest.raises(AlreadySubmitted):
        services.response_submit(
            participant=stale, answers=complete_answers(tool="phone"), language="en"
        )

    assert outcomes[1:] == expect(path, Fast.LOST_RACE)
    response = Response.objects.get(participant=participant)
    assert (response.language, stored(response)) == ("ja", rows_of(complete_answers()))
    assert [r[0] for r in response_records(response)] == ["+"]


def test_a_draft_saved_again_after_the_lookup_is_submitted_with_the_posted_answers(
    participant, path, outcomes
):
    services.response_save_draft(
        participant=link(participant), answers=complete_answers(tool="line"), language="ja"
    )
    stale = link(participant)  # sees the draft with "line"
    Response.objects.filter(participant=participant).update(
        updated_at=timezone.now() - dt.timedelta(seconds=5)
    )  # as if another tab saved it since, unchanged
    services.response_submit(
        participant=stale, answers=complete_answers(tool="line"), language="ja"
    )

    assert outcomes[1:] == expect(path, Fast.LOST_RACE)
    response = Response.objects.get(participant=participant)
    assert response.is_submitted
    assert stored(response) == rows_of(complete_answers(tool="line"))
    assert [r[:2] for r in response_records(response)] == [("+", "draft"), ("~", "submitted")]


def test_a_new_version_published_in_between_refuses_the_answers_and_changes_nothing(
    participant, path, outcomes
):
    stale = link(participant)  # version 1 is current
    published = instrument_current(participant.site.study)
    assert published is not None
    version_2 = services.instrument_new_version(instrument=published)
    services.instrument_publish(instrument=version_2)
    services.response_save_draft(participant=link(participant), answers={}, language="ja")

    with pytest.raises(AnswersInvalid):
        services.response_submit(participant=stale, answers=complete_answers(), language="ja")

    response = Response.objects.get(participant=participant)
    assert (response.status, response.instrument_id) == ("draft", version_2.pk)
    assert not response.answers.exists()


# --- Cleaned once ---------------------------------------------------------------------------


@pytest.mark.parametrize("draft", [None, complete_answers(), complete_answers(tool="phone")])
def test_the_answers_are_cleaned_once_per_request_whatever_the_path(
    participant, path, monkeypatch, draft
):
    if draft is not None:
        services.response_save_draft(participant=link(participant), answers=draft, language="ja")
    calls = []
    clean = InstrumentForm.clean

    def counted(self, raw, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return clean(self, raw, **kwargs)

    monkeypatch.setattr(InstrumentForm, "clean", counted)
    services.response_submit(
        participant=link(participant), answers=complete_answers(), language="ja"
    )
    assert calls == [{"complete": True}]


@pytest.mark.postgres
def test_both_paths_store_the_same_rows_and_records(participant, site, monkeypatch):
    """The same requests by two participants, one per path: the same answers, statuses
    and history (types, reasons, users) on each."""
    other = ParticipantFactory(site=site)
    steps = [
        ("save", complete_answers(tool="line")),
        ("save", complete_answers(tool="phone")),
        ("submit", complete_answers(tool="phone")),
    ]

    def run(who: Participant) -> Response:
        for action, answers in steps:
            write = services.response_submit if action == "submit" else services.response_save_draft
            write(participant=link(who), answers=answers, language="ja")
        return Response.objects.get(participant=who)

    fast = run(participant)
    monkeypatch.setattr(statements, "can_write_in_one_statement", lambda: False)
    general = run(other)

    assert stored(fast) == stored(general)
    assert (fast.status, fast.choice_bits) == (general.status, general.choice_bits)
    assert response_records(fast) == response_records(general)
    assert answer_records(fast) == answer_records(general)
