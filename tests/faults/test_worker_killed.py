"""Fault: the Celery worker scoring a run is killed (SIGKILL) in the middle of its work.

The run is idempotent (kpi.scoring.execution.run_execute claims it with a compare-and-set that also
re-claims a RUNNING run, and writes every result in one transaction) and its task is
``acks_late``: the broker still holds the unacknowledged message, and redelivers it once
the visibility timeout has passed. This test proves the whole chain with real processes:
a ``celery -A config worker`` on Redis (a private one: ``own_broker``) and PostgreSQL,
killed with SIGKILL (main process and pool child at once, so that nothing is acknowledged
or rejected on the way out), then a new worker that finishes the run.

"In the middle" is made deterministic without a hook in production code: the test holds
an ACCESS EXCLUSIVE lock on the results table, so the worker claims the run, counts, and
then blocks in its final write; the test waits until PostgreSQL shows it waiting on that
lock, kills it, and releases the lock.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from config.celery import app
from kpi.definitions.loading import kpis_path, load_kpis
from kpi.models import EvaluationRun, KPIResult
from kpi.scoring import execution, receivers, services
from surveys.demo import generate_demo_responses
from surveys.loading import load_study
from tests.celery_worker import celery_worker, own_broker, wait_until
from tests.celery_worker import test_database_url as database_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Short for the test (900 s by default): the broker redelivers the killed worker's
# message this many seconds after that worker took it.
VISIBILITY_TIMEOUT = 10
WAIT = 120  # seconds, for each bounded wait below

# Every figure of a result, as a comparable tuple (not its id, run or timestamps).
FIGURES = [
    f.attname
    for f in KPIResult._meta.concrete_fields
    if f.attname not in {"id", "run_id", "kpi_id"}
]


def figures(run: EvaluationRun) -> list[tuple[object, ...]]:
    return sorted(run.results.values_list(*FIGURES), key=lambda row: tuple(str(v) for v in row))


def backends_waiting_on_results() -> list[tuple[int, str]]:
    """PostgreSQL backends of the test database blocked on a lock while touching the
    results table, with their statement: the worker's final write, held up by the test."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s AND pid <> pg_backend_pid()",
            ["%kpi_kpiresult%"],
        )
        return list(cursor.fetchall())


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def test_a_run_whose_worker_is_killed_mid_write_completes_once_on_a_new_worker(
    tmp_path, monkeypatch
):
    # The study without the automatic runs its 229 submissions would ask for.
    monkeypatch.setattr(receivers, "run_request_debounced", lambda **kwargs: None)
    study = load_study()
    load_kpis(study=study, path=kpis_path())
    generate_demo_responses(study)
    # What a normal scoring of the same data gives, scored here in-process.
    normal = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    execution.run_execute(run_id=normal.pk)
    expected = figures(normal)
    assert expected

    env = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    log = tmp_path / "worker.log"
    blocker = psycopg.connect(database_url())  # a transaction of the test's own
    try:
        with own_broker(tmp_path / "redis"):
            queue = app.conf.task_default_queue
            with celery_worker(queue, log, extra_env=env) as first:
                blocker.execute("LOCK TABLE kpi_kpiresult IN ACCESS EXCLUSIVE MODE")
                run = services.run_request(study=study, trigger=EvaluationRun.Trigger.COMMAND)

                def stuck_in_final_write() -> bool:
                    state = EvaluationRun.objects.get(pk=run.pk)
                    return state.status == "running" and bool(backends_waiting_on_results())

                wait_until(stuck_in_final_write, WAIT, "the worker blocks in its write", first.log)
                ((backend, statement),) = backends_waiting_on_results()
                # The first statement of the final write: it has claimed and counted.
                assert statement.startswith('DELETE FROM "kpi_kpiresult"'), statement
                assert len(first.pids()) >= 2, "expected the main process and a pool child"
                first.kill()
                killed_at = time.monotonic()

            # The killed worker's transaction dies with its connection once the lock is
            # released: nothing of it is committed.
            blocker.rollback()
            wait_until(
                lambda: not backend_alive(backend), WAIT, "the orphan backend ends", first.log
            )
            state = EvaluationRun.objects.get(pk=run.pk)
            assert (state.status, state.attempts, state.results.count()) == ("running", 1, 0)

            with celery_worker(queue, log, extra_env=env) as second:
                wait_until(
                    lambda: EvaluationRun.objects.get(pk=run.pk).is_finished,
                    WAIT,
                    "a new worker finishes the run",
                    second.log,
                )
                redelivered_after = time.monotonic() - killed_at
    finally:
        blocker.close()

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.attempts >= 2  # claimed by the killed worker, then again by the new one
    assert run.cutoff is not None and run.responses_counted == 229
    results = list(run.results.values_list("kpi_code", "site_id"))
    assert len(results) == len(set(results)) == len(expected)  # one set, no duplicates
    assert figures(run) == expected  # what a normal scoring gives
    print(f"run {run.pk}: finished {redelivered_after:.1f} s after the kill")
