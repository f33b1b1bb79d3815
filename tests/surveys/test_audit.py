"""The audit trail of participants and responses: every change leaves a historical row
saying who (an account, or none for the participant), when, how (the reason) and the row
as it then was, so that old → new can be read off consecutive rows; and a participant's
submission pays for it with as few statements as possible."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from surveys import history, services
from surveys.models import Answer, Participant, Response
from tests.factories import ParticipantFactory, complete_answers

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

ParticipantHistory: Any = Participant.history.model  # type: ignore[attr-defined]
ResponseHistory: Any = Response.history.model  # type: ignore[attr-defined]
AnswerHistory: Any = Answer.history.model  # type: ignore[attr-defined]


def post(client: Client, participant: Participant, action: str, answers: dict) -> Any:
    return client.post(f"/r/{participant.token}/", {**answers, "action": action})  # type: ignore[attr-defined]


def answer_records(response: Response) -> list[tuple[str, str, str]]:
    """(type, question code, choice code or value) of every answer record, oldest first."""
    rows = AnswerHistory.objects.filter(response_id=response.pk).order_by("history_id")
    return [
        (
            r.history_type,
            r.question.code,
            r.choice.code if r.choice_id else str(r.text_value or r.number_value),
        )
        for r in rows.select_related("question", "choice")
    ]


def history_statements(queries: list[dict[str, Any]]) -> list[str]:
    """The INSERTs into history tables, whether statements of their own or chained in one
    (PostgreSQL writes a submission and its history in one statement)."""
    return [
        found for q in queries for found in re.findall(r'INSERT INTO "\w+_historical\w*"', q["sql"])
    ]


# --- Responses and answers ---------------------------------------------------------------


def test_a_web_submission_is_one_created_record_by_the_participant_with_every_answer(
    participant,
):
    # A manager logged in in the same browser is not who submitted: the participant is.
    manager = User.objects.create_superuser("kato", password="pw-kato-12345")
    client = Client()
    client.force_login(manager)
    assert post(client, participant, "submit", complete_answers()).status_code == 303

    response = Response.objects.get(participant=participant)
    (record,) = ResponseHistory.objects.filter(id=response.pk)
    assert record.history_type == "+"
    assert record.history_user is None
    assert record.history_change_reason == "participant submission (web)"
    assert (record.status, record.source, record.language) == ("submitted", "web", "ja")
    assert record.submitted_at == response.submitted_at
    assert record.choice_bits == response.choice_bits
    assert sorted(answer_records(response)) == sorted(
        ("+", a.question.code, a.choice.code if a.choice else "")
        for a in response.answers.select_related("question", "choice")
    )
    assert set(
        AnswerHistory.objects.filter(response_id=response.pk).values_list(
            "history_user", "history_change_reason"
        )
    ) == {(None, "participant submission (web)")}


def test_a_draft_then_a_changed_submission_records_old_and_new(client, participant):
    post(client, participant, "save", complete_answers(tool="line"))
    response = Response.objects.get(participant=participant)
    post(client, participant, "submit", complete_answers(tool="phone"))

    records = list(ResponseHistory.objects.filter(id=response.pk).order_by("history_id"))
    assert [(r.history_type, r.status, r.history_change_reason) for r in records] == [
        ("+", "draft", "participant draft (web)"),
        ("~", "submitted", "participant submission (web)"),
    ]
    changes = {c.field: (c.old, c.new) for c in records[1].diff_against(records[0]).changes}
    assert changes["status"] == ("draft", "submitted")
    assert changes["submitted_at"][0] is None
    # Only the answer that changed is recorded again: line removed, phone added.
    submitted = [r for r in answer_records(response)][-2:]
    assert sorted(submitted) == [("+", "tool", "phone"), ("-", "tool", "line")]
    assert AnswerHistory.objects.filter(response_id=response.pk).count() == (
        len(complete_answers()["channels"]) + 5 + 2  # type: ignore[arg-type]
    )


def replayed(response: Response) -> set[tuple[Any, ...]]:
    """The answers the history says the response holds: its "+" and "-" records applied
    in the order of their times."""
    state: set[tuple[Any, ...]] = set()
    records = AnswerHistory.objects.filter(response_id=response.pk)
    for r in records.order_by("history_date", "history_id"):
        key = (r.question_id, r.choice_id, r.text_value, r.number_value)
        if r.history_type == "+":
            state.add(key)
        else:
            state.remove(key)
    return state


def stored(response: Response) -> set[tuple[Any, ...]]:
    return set(
        response.answers.values_list("question_id", "choice_id", "text_value", "number_value")
    )


def test_autosaves_in_quick_succession_record_the_start_the_last_draft_and_the_submission(
    client, participant
):
    """Twenty autosaves a few seconds apart: the history keeps when the draft was started
    (with its answers), the draft as it last stood (recorded at the submission, at the
    time of that last save) and the submission; not a row set per save."""
    tools = ["line", "phone", "email", "other"]
    post(client, participant, "save", complete_answers(tool="line"))
    response = Response.objects.get(participant=participant)
    started = AnswerHistory.objects.filter(response_id=response.pk).count()
    for n in range(1, 21):
        assert (
            post(client, participant, "save", complete_answers(tool=tools[n % 4])).status_code
            == 303
        )
    response.refresh_from_db()
    last_saved = response.updated_at
    assert ResponseHistory.objects.filter(id=response.pk).count() == 1  # the start only
    # The one recorded answer that went ("-" line); nothing for the nineteen in between.
    assert AnswerHistory.objects.filter(response_id=response.pk).count() == started + 1
    assert stored(response) != replayed(response)  # the last draft is not recorded yet

    assert (
        post(client, participant, "submit", complete_answers(tool=tools[20 % 4])).status_code == 303
    )
    response.refresh_from_db()
    records = ResponseHistory.objects.filter(id=response.pk).order_by("history_id")
    assert [(r.history_type, r.history_change_reason) for r in records] == [
        ("+", "participant draft (web)"),
        ("~", "participant submission (web)"),
    ]
    assert replayed(response) == stored(response)
    (last_draft,) = (
        AnswerHistory.objects.filter(response_id=response.pk, history_id__gt=0)
        .filter(question__code="tool", history_type="+", choice__code="line")
        .exclude(history_date__lt=last_saved)
    )
    assert (last_draft.history_date, last_draft.history_change_reason) == (
        last_saved,
        "participant draft (web)",
    )
    assert AnswerHistory.objects.filter(response_id=response.pk).count() == started + 2


def _pause(response: Response, minutes: int = 11) -> None:
    """As if the draft had been saved ``minutes`` ago (the setting is 10 minutes)."""
    Response.objects.filter(pk=response.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


def test_a_save_after_a_pause_is_recorded_after_the_draft_as_it_stood(
    client, participant, settings
):
    settings.HYOKA_DRAFT_HISTORY_INTERVAL = 600
    post(client, participant, "save", complete_answers(tool="line"))
    response = Response.objects.get(participant=participant)
    post(client, participant, "save", complete_answers(tool="phone"))  # soon: unrecorded
    _pause(response)
    post(client, participant, "save", complete_answers(tool="email"))  # a participant back
    response.refresh_from_db()
    records = ResponseHistory.objects.filter(id=response.pk).order_by("history_id")
    assert [r.history_type for r in records] == ["+", "~"]
    tool = [r for r in answer_records(response) if r[1] == "tool"]
    assert tool == [("+", "tool", "line"), ("-", "tool", "line"), ("+", "tool", "phone"),
                    ("-", "tool", "phone"), ("+", "tool", "email")]  # fmt: skip
    assert replayed(response) == stored(response)
    # The draft as it stood is dated at its (unrecorded) save, before the pause.
    phone = AnswerHistory.objects.get(
        response_id=response.pk, history_type="+", choice__code="phone"
    )
    assert phone.history_date < timezone.now() - dt.timedelta(minutes=10)
    assert not response.answers.filter(recorded=False).exists()


def test_a_changed_submission_after_quick_autosaves_records_the_last_draft_then_the_change(
    client, participant
):
    post(client, participant, "save", complete_answers(tool="line"))
    post(client, participant, "save", complete_answers(tool="phone"))
    response = Response.objects.get(participant=participant)
    post(client, participant, "submit", complete_answers(tool="email"))
    response.refresh_from_db()
    assert response.is_submitted
    tool = [(r[0], r[2]) for r in answer_records(response) if r[1] == "tool"]
    assert tool == [("+", "line"), ("-", "line"), ("+", "phone"), ("-", "phone"), ("+", "email")]
    assert replayed(response) == stored(response)
    reasons = AnswerHistory.objects.filter(response_id=response.pk, choice__code="phone")
    assert list(reasons.order_by("history_id").values_list("history_change_reason", flat=True)) == [
        "participant draft (web)",
        "participant submission (web)",
    ]


def test_an_api_draft_and_submission_say_api(participant):
    client = APIClient()
    token = participant.token  # type: ignore[attr-defined]
    draft = reverse("api:invitation-draft", args=[token])
    assert client.put(draft, {"answers": complete_answers()}, format="json").status_code == 200
    submit = reverse("api:invitation-submission", args=[token])
    assert client.post(submit, {"answers": complete_answers()}, format="json").status_code == 201
    response = Response.objects.get(participant=participant)
    reasons = list(
        ResponseHistory.objects.filter(id=response.pk)
        .order_by("history_id")
        .values_list("history_type", "history_change_reason", "history_user")
    )
    assert reasons == [
        ("+", "participant draft (api)", None),
        ("~", "participant submission (api)", None),
    ]


def test_imported_responses_are_recorded_as_imported_with_their_answers(site):
    from surveys.selectors import instrument_current

    participants = [ParticipantFactory(site=site) for _ in range(3)]
    when = timezone.now() - dt.timedelta(days=2)
    with history.acting(history.command("import_paper_forms")):
        responses = services.responses_import(
            instrument=instrument_current(site.study),  # type: ignore[arg-type]
            rows=[
                services.ImportedResponse(
                    participant=p, answers=complete_answers(), submitted_at=when
                )
                for p in participants
            ],
        )
    records = ResponseHistory.objects.filter(id__in=[r.pk for r in responses])
    assert {(r.history_type, r.status, r.history_change_reason) for r in records} == {
        ("+", "submitted", "responses imported")
    }
    assert records.count() == 3
    answers = AnswerHistory.objects.filter(response_id__in=[r.pk for r in responses])
    assert answers.count() == Answer.objects.filter(response__in=responses).count()
    assert set(answers.values_list("history_type", "history_change_reason")) == {
        ("+", "responses imported")
    }


def test_a_fresh_web_submission_adds_two_history_inserts_and_nothing_else(client, participant):
    """Before the audit trail a fresh web submission took 10 statements (1 was an
    always-empty DELETE of answers); now at most 11: the response's record and the
    answers' records, one INSERT each, and no DELETE (on PostgreSQL the INSERTs are
    chained in one statement)."""
    client.get(f"/r/{participant.token}/")
    with CaptureQueriesContext(connection) as ctx:
        assert post(client, participant, "submit", complete_answers()).status_code == 303
    assert sorted(history_statements(ctx.captured_queries)) == [
        'INSERT INTO "surveys_historicalanswer"',
        'INSERT INTO "surveys_historicalresponse"',
    ]
    assert not [q for q in ctx.captured_queries if q["sql"].startswith("DELETE")]
    assert len(ctx.captured_queries) <= 11


def test_submitting_an_unchanged_draft_writes_only_the_responses_record(client, participant):
    """8 statements before and after: reading the draft's answers replaces deleting and
    re-inserting them, and the response's record is the one INSERT added (on PostgreSQL
    chained to the UPDATE in one statement)."""
    post(client, participant, "save", complete_answers())
    answers_recorded = AnswerHistory.objects.count()
    with CaptureQueriesContext(connection) as ctx:
        assert post(client, participant, "submit", complete_answers()).status_code == 303
    # One statement writes history; on PostgreSQL it also holds the INSERT that records
    # answers an autosave left unrecorded, which finds none here (the draft's one save
    # was recorded).
    (writing,) = [q for q in ctx.captured_queries if history_statements([q])]
    assert history_statements([writing])[0] == 'INSERT INTO "surveys_historicalresponse"'
    assert AnswerHistory.objects.count() == answers_recorded
    assert not [q for q in ctx.captured_queries if 'INSERT INTO "surveys_answer"' in q["sql"]]
    assert len(ctx.captured_queries) <= 8


# --- Participants --------------------------------------------------------------------------


def participant_records(participant: Participant) -> list[tuple[str, str, str | None]]:
    return list(
        ParticipantHistory.objects.filter(id=participant.pk)
        .order_by("history_id")
        .values_list("history_type", "history_change_reason", "history_user__username")
    )


def test_the_history_never_holds_a_link_or_its_hash(site):
    invitation = services.participant_create(site=site, reference="P-1")
    (reissued,) = services.participant_replace_links(participants=[invitation.participant])
    columns = {f.attname for f in ParticipantHistory._meta.fields}
    assert "token_hash" not in columns
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ParticipantHistory._meta.db_table}")  # noqa: S608
        stored = repr(cursor.fetchall())
    participant = Participant.objects.get(pk=invitation.participant.pk)
    for secret in (invitation.token, reissued.token, participant.token_hash):
        assert secret not in stored


def test_created_reissued_and_withdrawn_participants_are_recorded_with_old_and_new(site):
    invitation = services.participant_create(site=site, reference="P-1")
    participant = invitation.participant
    issued = participant.token_issued_at
    services.participant_replace_links(participants=[participant])
    services.participant_withdraw(participant=participant)

    assert participant_records(participant) == [
        ("+", "participant created", None),
        ("~", "invitation link reissued", None),
        ("~", "participant withdrawn", None),
    ]
    created, reissued, withdrawn = ParticipantHistory.objects.filter(id=participant.pk).order_by(
        "history_id"
    )
    link = {c.field: (c.old, c.new) for c in reissued.diff_against(created).changes}
    assert link == {"token_issued_at": (issued, participant.token_issued_at)}
    status = {c.field: (c.old, c.new) for c in withdrawn.diff_against(reissued).changes}
    assert status == {"status": ("active", "withdrawn")}


def test_a_participant_import_records_every_participant_with_the_manager(site):
    from simple_history.models import HistoricalRecords

    manager = User.objects.create_user("sato", password="pw-sato-12345")
    request = type("Request", (), {"user": manager, "path_info": "/admin/"})()
    HistoricalRecords.context.request = request
    try:
        invitations = services.participants_import_csv(
            study=site.study, data=f"reference,site\nA-1,{site.code}\nA-2,{site.code}\n"
        )
    finally:
        del HistoricalRecords.context.request
    for invitation in invitations:
        assert participant_records(invitation.participant) == [
            ("+", "participants imported", "sato")
        ]


def test_deleting_a_participant_is_not_blocked_by_its_history_and_is_recorded(site):
    participant = services.participant_create(site=site, reference="P-1").participant
    pk = participant.pk
    with history.acting(history.command("tidy")):
        participant.delete()
    assert not Participant.objects.filter(pk=pk).exists()
    assert [r[:2] for r in participant_records(Participant(pk=pk))] == [
        ("+", "participant created"),
        ("-", "command: tidy"),
    ]


def test_reasons_are_stored_in_english_and_shown_in_the_managers_language():
    with translation.override("ja"):
        assert history.reason_label("participant submission (web)") != (
            "participant submission (web)"
        )
    with translation.override("en"):
        assert history.reason_label("participant submission (web)") == (
            "participant submission (web)"
        )
        assert history.reason_label("command: demo") == "command demo"
        assert history.reason_label("task: kpi.render_evaluation") == (
            "background task kpi.render_evaluation"
        )


def test_only_the_participants_own_acts_are_shown_as_theirs(site):
    from surveys.admin.history import actor

    participant = services.participant_create(site=site, reference="P-1").participant
    response = services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    with translation.override("en"):
        assert actor(ParticipantHistory.objects.get(id=participant.pk)) == "the system"
        assert actor(ResponseHistory.objects.get(id=response.pk)) == "the participant"
