"""Concurrent submissions on a real PostgreSQL: one participant submits exactly once however
many requests race, and different participants never block each other.

Every racer is a real thread with its own database connection (Django gives each thread
one), started together by a barrier; the test database is shared, not a transaction, so
the row lock in ``response_submit`` is what is tested.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connection, connections

from surveys import selectors, services
from surveys.errors import AlreadySubmitted
from surveys.models import Answer, Choice, Participant, Response
from surveys.submission import link_for_token
from tests.celery_worker import test_database_url as database_url
from tests.factories import ParticipantFactory, complete_answers

ResponseHistory: Any = Response.history.model  # type: ignore[attr-defined]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT = 30  # seconds; a deadlock or a lost wake-up fails the test instead of hanging it
TOOLS = ["line", "phone", "face_to_face", "email", "other_sns", "other", "line", "phone"]


def race(workers: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Run the callables in threads released together; each gives ("ok", result) or
    ("error", exception). Each thread closes its own database connection at its end."""
    barrier = threading.Barrier(len(workers), timeout=JOIN_TIMEOUT)
    outcomes: list[tuple[str, Any]] = [("missing", None)] * len(workers)

    def run(i: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            outcomes[i] = ("ok", work())
        except Exception as exc:
            outcomes[i] = ("error", exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(i, w), name=f"racer-{i}") for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racer is still running: deadlock?"
    return outcomes


def submit_as(token: str, answers: dict[str, object]) -> Callable[[], Response]:
    """What a request does: find the participant by its token, then submit."""

    def work() -> Response:
        participant = selectors.participant_for_token(token)
        assert participant is not None
        return services.response_submit(participant=participant, answers=answers, language="ja")

    return work


@pytest.mark.parametrize("racers", [2, 8])
def test_a_participant_racing_itself_submits_exactly_once(site, racers):
    participant = ParticipantFactory(site=site)
    # Each racer sends a different answer to "tool", so the stored rows show who won.
    answers = [complete_answers(tool=TOOLS[i]) for i in range(racers)]

    outcomes = race([submit_as(participant.token, a) for a in answers])

    won = [i for i, (kind, _) in enumerate(outcomes) if kind == "ok"]
    assert len(won) == 1, outcomes
    lost = [value for kind, value in outcomes if kind == "error"]
    assert len(lost) == racers - 1
    assert all(isinstance(exc, AlreadySubmitted) for exc in lost), lost
    response = Response.objects.get(participant=participant)
    assert response.status == Response.Status.SUBMITTED
    assert response.pk == outcomes[won[0]][1].pk
    stored = list(
        Answer.objects.filter(response__participant=participant).values_list(
            "question__code", "choice__code"
        )
    )
    # One set of rows: the winner's (channels has two choices, the five other items one
    # each), not a mixture and not twice.
    assert sorted(stored) == sorted(
        [("channels", "anytime"), ("channels", "ward_phone")]
        + [(code, answers[won[0]][code]) for code in ("reassured", "continue", "reuse")]
        + [("understood", "fully"), ("tool", TOOLS[won[0]])]
    )


def test_a_participant_racing_itself_after_a_draft_still_submits_once(site):
    participant = ParticipantFactory(site=site)
    services.response_save_draft(
        participant=participant, answers={"channels": ["night"]}, language="ja"
    )

    outcomes = race([submit_as(participant.token, complete_answers()) for _ in range(4)])

    assert sorted(kind for kind, _ in outcomes) == ["error", "error", "error", "ok"]
    assert Response.objects.filter(participant=participant).count() == 1
    assert Response.objects.get(participant=participant).status == Response.Status.SUBMITTED
    assert Answer.objects.filter(response__participant=participant).count() == 7


def test_different_participants_submitting_together_all_succeed(site):
    participants = ParticipantFactory.create_batch(8, site=site)

    outcomes = race([submit_as(p.token, complete_answers()) for p in participants])

    assert [kind for kind, _ in outcomes] == ["ok"] * 8, outcomes
    assert (
        Response.objects.filter(
            participant__in=participants, status=Response.Status.SUBMITTED
        ).count()
        == 8
    )
    assert Answer.objects.filter(response__participant__in=participants).count() == 8 * 7


def submit_after_opening(token: str, answers: dict[str, object]) -> Callable[[], Response]:
    """What the form's POST does: find the participant and the response their page saw."""

    def work() -> Response:
        participant = link_for_token(token)
        assert participant is not None
        return services.response_submit(participant=participant, answers=answers, language="ja")

    return work


def in_own_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    """``work`` for another thread, closing the database connection it opens there."""

    def run() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    return run


def stored_answers(participant: Participant) -> list[tuple[str, str]]:
    rows = Answer.objects.filter(response__participant=participant)
    return sorted(rows.values_list("question__code", "choice__code"))


def expected_rows(answers: dict[str, object]) -> list[tuple[str, str]]:
    """The (question, choice) rows of ``complete_answers(...)``."""
    rows = [("channels", "anytime"), ("channels", "ward_phone")]
    rows += [(code, str(answers[code])) for code in ("reassured", "continue", "reuse")]
    return sorted([*rows, ("understood", "fully"), ("tool", str(answers["tool"]))])


def test_a_participant_racing_itself_with_the_draft_as_saved_submits_once(site):
    """The usual case on a phone: the page autosaved the answers, then the participant
    taps submit twice. Each request saw the draft; one submits it."""
    participant = ParticipantFactory(site=site)
    answers = complete_answers()
    services.response_save_draft(participant=participant, answers=answers, language="ja")

    outcomes = race([submit_after_opening(participant.token, answers) for _ in range(4)])

    assert sorted(kind for kind, _ in outcomes) == ["error", "error", "error", "ok"], outcomes
    assert all(isinstance(v, AlreadySubmitted) for kind, v in outcomes if kind == "error")
    response = Response.objects.get(participant=participant)
    assert response.status == Response.Status.SUBMITTED
    assert stored_answers(participant) == expected_rows(answers)
    submissions = ResponseHistory.objects.filter(id=response.pk, status="submitted")
    assert submissions.count() == 1  # one record of the submission, not one per tap


def test_a_draft_save_in_flight_is_not_overtaken_by_the_submission(site):
    """A draft save that holds the participant's row has replaced the answers but not yet
    touched the response row when the submission of the draft as it was comes in. The
    submission must wait for it, see the draft changed, and store its own answers; if it
    went ahead, the save would then overwrite a submitted response's answers."""
    participant = ParticipantFactory(site=site)
    submitted = complete_answers(tool="line")
    services.response_save_draft(participant=participant, answers=submitted, language="ja")
    response = Response.objects.get(participant=participant)
    other = Choice.objects.get(question__instrument=response.instrument_id, code="other")

    saver = psycopg.connect(database_url())  # the save's transaction, by hand
    try:
        saver.execute(
            "SELECT 1 FROM surveys_participant WHERE id = %s FOR UPDATE", [participant.pk]
        )
        saver.execute(
            "UPDATE surveys_answer SET choice_id = %s WHERE response_id = %s AND question_id = %s",
            [other.pk, response.pk, other.question_id],
        )
        with ThreadPoolExecutor(max_workers=1) as phone:
            sent = phone.submit(in_own_thread(submit_after_opening(participant.token, submitted)))
            deadline = time.monotonic() + JOIN_TIMEOUT
            while not sent.done() and not waiting_for_a_lock():
                assert time.monotonic() < deadline, "the submission neither ended nor waited"
                time.sleep(0.05)
            saver.execute(
                "UPDATE surveys_response SET updated_at = clock_timestamp() WHERE id = %s",
                [response.pk],
            )
            saver.commit()
            sent.result(timeout=JOIN_TIMEOUT)
    finally:
        saver.close()

    assert Response.objects.get(participant=participant).status == Response.Status.SUBMITTED
    assert stored_answers(participant) == expected_rows(submitted)


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone() is not None


# --- Through HTTP -----------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


def form_fields(answers: dict[str, object]) -> dict[str, Any]:
    """The submit form's fields (a list value: the field repeated)."""
    return {"action": "submit", **answers}


def test_two_simultaneous_submit_posts_give_one_303_and_one_409(live_server, site):
    participant = ParticipantFactory(site=site)
    url = f"{live_server.url}/r/{participant.token}/"
    with httpx.Client(timeout=JOIN_TIMEOUT) as browser:
        page = browser.get(url)
        assert page.status_code == 200
        csrf = CSRF_FIELD.search(page.text)
        assert csrf is not None, "the form has no csrfmiddlewaretoken field"
        cookies = dict(browser.cookies)
    body = {"csrfmiddlewaretoken": csrf.group(1), **form_fields(complete_answers())}

    def post() -> int:
        with httpx.Client(cookies=cookies, timeout=JOIN_TIMEOUT) as tab:
            return tab.post(url, data=body, headers={"Referer": url}).status_code

    outcomes = race([post, post])

    assert sorted(status for _, status in outcomes) == [303, 409], outcomes
    assert Response.objects.get(participant=participant).status == Response.Status.SUBMITTED
    assert Answer.objects.filter(response__participant=participant).count() == 7
