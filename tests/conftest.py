"""Test set-up shared by the whole suite.

Tests marked ``postgres`` need PostgreSQL, tests marked ``redis`` a broker
(``CELERY_BROKER_URL``). Locally, without them, they are skipped; in CI (``CI=true``) they
fail instead, so that CI can never pass by silently skipping them.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, reference_instrument

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    broker = settings.CELERY_BROKER_URL or "none (tasks run in-process)"
    return [
        f"hyoka: database {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or db['NAME']}; "
        f"broker {broker}; CI={IN_CI}"
    ]


_MARKED = ("postgres", "redis", "e2e")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Say how many PostgreSQL, Redis and browser tests ran, so a CI log shows they ran."""
    counts = {m: {"passed": 0, "failed": 0, "skipped": 0} for m in _MARKED}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            for marker in _MARKED:
                if marker in getattr(report, "keywords", {}):
                    counts[marker]["failed" if outcome == "error" else outcome] += 1
    terminalreporter.write_sep("-", "tests needing services")
    for marker, c in counts.items():
        terminalreporter.write_line(
            f"{marker}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        )


def _needs(item: pytest.Item, what: str, available: bool, why: str) -> None:
    if item.get_closest_marker(what) and not available:
        if IN_CI:
            pytest.fail(f"CI must run {what} tests, but {why}", pytrace=False)
        pytest.skip(why)


def pytest_runtest_setup(item: pytest.Item) -> None:
    from django.conf import settings

    _needs(
        item,
        "postgres",
        connection.vendor == "postgresql",
        f"needs PostgreSQL (DATABASE_URL); the database is {connection.vendor}",
    )
    _needs(
        item,
        "redis",
        settings.CELERY_BROKER_URL.startswith("redis"),
        "needs a Redis broker (CELERY_BROKER_URL)",
    )


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_append_only_triggers():  # type: ignore[no-untyped-def]
    """Transactional tests end by wiping every table, history included, which the
    append-only triggers refuse: the wipe steps past them as a restore would (a PostgreSQL
    superuser, as in CI; on SQLite, by dropping and recreating them)."""
    from surveys import appendonly

    ops = type(connection.ops)
    original = ops.execute_sql_flush

    def execute_sql_flush(self, sql_list):  # type: ignore[no-untyped-def]
        before, after = appendonly.flush_sql(self.connection)
        return original(self, [*before, *sql_list, *after])

    ops.execute_sql_flush = execute_sql_flush
    yield
    ops.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _celery_mode(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Tasks run in-process (the embedded mode) unless a test starts real workers."""
    from config.celery import app

    eager = request.node.get_closest_marker("redis") is None
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _forget_taken_slots():  # type: ignore[no-untyped-def]
    """Each test starts with a database of its own, so with no debounce slot known taken
    (the process-wide memory of ``kpi.scoring.services``; ids are reused after a rollback)."""
    from kpi.scoring import services

    services._TAKEN_SLOTS.clear()
    yield


@pytest.fixture
def reference_study(db):  # type: ignore[no-untyped-def]
    """The reference study with its KPIs and the 229 demo responses, not yet scored."""
    from kpi.definitions.loading import kpis_path, load_kpis
    from surveys.demo import generate_demo_responses
    from surveys.loading import load_study

    study = load_study()
    load_kpis(study=study, path=kpis_path())
    generate_demo_responses(study)
    return study


@pytest.fixture
def study(db):  # type: ignore[no-untyped-def]
    """An open study with the reference questionnaire published."""
    study = StudyFactory()
    reference_instrument(study)
    return study


@pytest.fixture
def site(study):  # type: ignore[no-untyped-def]
    return SiteFactory(study=study)


@pytest.fixture
def participant(site):  # type: ignore[no-untyped-def]
    """A participant of an open site; ``participant.token`` is the plain token."""
    return ParticipantFactory(site=site)


@pytest.fixture(autouse=True)
def _no_counted_attempts():  # type: ignore[no-untyped-def]
    """Rate-limit counters (failed invitation tokens, API throttles) live in the cache:
    every test starts with none, whatever the tests before it tried."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """pytest-django's test database, dropped at the end only once no session is left on
    it. A process a test started and killed (a worker, a server) can leave its PostgreSQL
    session behind for a moment, and DROP DATABASE then fails the last test's teardown:
    end those sessions first, and name them, so that a real leak still shows."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 80) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        lingering = cursor.fetchall()
        for pid, application, state, query in lingering:
            print(f"\nhyoka: a session left on the test database: {pid} {application!r}")
            print(f"hyoka: ({state}) {query!r}; ending it")
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
