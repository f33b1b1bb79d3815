"""Fault: PostgreSQL cannot be reached from the web app.

Real processes: the web app as production runs it (gunicorn, ``HYOKA_ENV=production``)
whose ``DATABASE_URL`` goes through a TCP proxy the test controls, in front of the shared
PostgreSQL (never touched itself). The test cuts the proxy (every connection dropped, new
ones refused) and then hangs it (connections accepted, never answered): participants get a
"please try again shortly" page with 503 and Retry-After, in Japanese or English; API
clients the API's JSON error with 503; ``/healthz`` a 503 naming the database. Once the
database is back, the participant submits, and the data show nothing of the attempts made
during the outage.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.db import connection

from surveys.models import Answer, Response
from tests.celery_worker import test_database_url as database_url
from tests.celery_worker import wait_until
from tests.factories import complete_answers

from .processes import (
    HOST,
    HTTPS,
    open_form,
    post_form,
    production_environment,
    redis_server,
    tcp_proxy,
    web_server,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WAIT = 60  # seconds, for each bounded wait
CONNECT_TIMEOUT = 2  # DATABASE_CONNECT_TIMEOUT for the web app (5 s in production)


def stored(participant) -> tuple[str | None, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """The participant's response status and answer rows, read directly (not through the
    proxy)."""
    response = Response.objects.filter(participant=participant).first()
    rows = Answer.objects.filter(response__participant=participant).values_list(
        "question__code", "choice__code"
    )
    return (response.status if response else None, sorted(rows))


def assert_try_again(page: httpx.Response, *words: str) -> None:
    assert page.status_code == 503, (page.status_code, page.text[:300])
    assert page.headers["Retry-After"] == "120"
    for word in words:
        assert word in page.text, word


def test_an_unreachable_database_gives_503_pages_and_nothing_half_written(
    tmp_path, static_root, participant
):
    db = connection.settings_dict
    with (
        redis_server(tmp_path / "redis") as broker,
        tcp_proxy((db["HOST"], int(db["PORT"] or 5432))) as proxy,
    ):
        env = production_environment(
            database_url=f"postgres://{db['USER']}@{HOST}:{proxy.port}/{db['NAME']}",
            broker_url=broker.url(),
            static_root=static_root,
            DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        )
        with web_server(env, tmp_path / "web.log") as web:
            api = f"{web.url}/api/v1/invitations/{participant.token}/submission/"
            # Probes come over plain http: /healthz is exempt from the HTTPS redirect,
            # a participant's page is not.
            health = httpx.get(f"{web.url}/healthz", timeout=WAIT)
            assert health.status_code == 200, health.text
            assert health.json()["checks"]["database"] == "up"
            assert httpx.get(f"{web.url}/r/{participant.token}/").status_code == 301

            form = open_form(web, participant.token)
            assert post_form(web, form, "save", {"channels": ["night"]}).status_code == 303
            draft = stored(participant)
            assert draft == ("draft", [("channels", "night")])

            # The database goes away: existing connections drop, new ones are refused.
            proxy.cut()
            assert_try_again(
                httpx.get(form.url, headers=HTTPS, timeout=WAIT),
                'lang="ja"',
                "しばらくしてから、もう一度お試しください",
            )
            assert_try_again(
                httpx.get(f"{form.url}?lang=en", headers=HTTPS, timeout=WAIT),
                'lang="en"',
                "Please try again shortly",
            )
            failed = post_form(web, form, "submit", complete_answers(tool="phone"))
            assert_try_again(failed, "もう一度送信してください")
            answer = httpx.post(
                api,
                json={"answers": complete_answers(tool="email")},
                headers={**HTTPS, "Accept-Language": "en", "Idempotency-Key": "fault-1"},
                timeout=WAIT,
            )
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "120"
            assert answer.json()["error"]["code"] == "service_unavailable"
            assert set(answer.json()["error"]) == {"code", "message", "fields"}
            health = httpx.get(f"{web.url}/healthz", timeout=WAIT)
            assert health.status_code == 503
            assert health.json()["status"] == "unavailable"
            assert health.json()["checks"]["database"] == "down"
            assert stored(participant) == draft

            # Worse: the database host answers nothing at all. The connect timeout turns
            # that into the same page instead of a request held until the server's own
            # timeout kills it.
            proxy.hang()
            started = time.monotonic()
            page = httpx.get(form.url, headers=HTTPS, timeout=WAIT)
            hung_for = time.monotonic() - started
            assert_try_again(page, "しばらくしてから")
            failed = post_form(web, form, "submit", complete_answers(tool="other"))
            assert_try_again(failed)
            assert stored(participant) == draft

            # Back: the participant submits, and only that submission is stored.
            proxy.restore()
            wait_until(
                lambda: httpx.get(f"{web.url}/healthz", timeout=WAIT).status_code == 200,
                WAIT,
                "the web app sees the database again",
                web.log,
            )
            assert stored(participant) == draft  # nothing of the failed attempts
            assert post_form(web, form, "submit", complete_answers(tool="line")).status_code == 303

    status, rows = stored(participant)
    assert status == "submitted"
    final = {**complete_answers(tool="line"), "channels": None}
    channels = [("channels", "anytime"), ("channels", "ward_phone")]
    assert rows == sorted([*channels, *((code, value) for code, value in final.items() if value)])
    assert Response.objects.filter(participant=participant).count() == 1
    print(f"with the database host silent, the 503 page came after {hung_for:.1f} s")


def test_a_submission_cut_off_in_the_middle_of_its_transaction_leaves_nothing(
    tmp_path, static_root, participant
):
    """The hard case of "nothing half-written": the connection drops in the middle of a
    submission's transaction. A first submission, or a draft submitted as it was saved, is
    one statement on PostgreSQL and cannot be cut in two; a submission that changes the
    saved draft is several. The test holds a lock on the answers' history table, so that
    the transaction waits there, deterministically, after replacing the draft's answers,
    then cuts the proxy."""
    db = connection.settings_dict
    blocker = psycopg.connect(database_url())  # the test's own transaction, not proxied
    try:
        with (
            redis_server(tmp_path / "redis") as broker,
            tcp_proxy((db["HOST"], int(db["PORT"] or 5432))) as proxy,
        ):
            env = production_environment(
                database_url=f"postgres://{db['USER']}@{HOST}:{proxy.port}/{db['NAME']}",
                broker_url=broker.url(),
                static_root=static_root,
            )
            with web_server(env, tmp_path / "web.log") as web:
                form = open_form(web, participant.token)
                assert post_form(web, form, "save", {"channels": ["night"]}).status_code == 303
                draft = stored(participant)
                blocker.execute("LOCK TABLE surveys_historicalanswer IN ACCESS EXCLUSIVE MODE")
                with ThreadPoolExecutor(max_workers=1) as phone:
                    sent = phone.submit(
                        post_form, web, form, "submit", complete_answers(tool="phone")
                    )
                    wait_until(
                        lambda: bool(writers_waiting_on("surveys_historicalanswer")),
                        WAIT,
                        "the submission waits to record its answers",
                        web.log,
                    )
                    ((backend, has_written),) = writers_waiting_on("surveys_historicalanswer")
                    assert has_written  # its transaction has already written (the answers)
                    proxy.cut()
                    assert_try_again(sent.result(timeout=WAIT), "もう一度送信してください")

                # The orphaned transaction ends, rolled back, once it gets the lock and
                # finds its client gone.
                blocker.rollback()
                wait_until(
                    lambda: not backend_alive(backend), WAIT, "the cut-off backend ends", web.log
                )
                assert stored(participant) == draft

                proxy.restore()
                wait_until(
                    lambda: httpx.get(f"{web.url}/healthz", timeout=WAIT).status_code == 200,
                    WAIT,
                    "the web app sees the database again",
                    web.log,
                )
                done = post_form(web, form, "submit", complete_answers(tool="line"))
                assert done.status_code == 303
    finally:
        blocker.close()

    status, rows = stored(participant)
    assert status == "submitted"
    assert ("tool", "line") in rows and len(rows) == 7
    assert Response.objects.filter(participant=participant).count() == 1


def writers_waiting_on(table: str) -> list[tuple[int, bool]]:
    """Backends of the test database blocked on a lock in a statement naming ``table``,
    and whether their transaction has written anything yet (it has an xid)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_xid IS NOT NULL FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query ILIKE %s AND pid <> pg_backend_pid()",
            [f"%{table}%"],
        )
        return list(cursor.fetchall())


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None
