"""Test set-up shared by the whole suite.

Tests marked ``postgres`` need PostgreSQL, tests marked ``redis`` a broker
(``CELERY_BROKER_URL``). Locally, without them, they are skipped; in CI (``CI=true``) they
fail instead, so that CI can never pass by silently skipping them.

The suite runs in parallel (pytest-xdist, ``make test``); each worker process has a test
database of its own (pytest-django names it ``<TEST NAME>_gw0``, ``_gw1``...), its own
cache (in memory), media folder (``_files_of_this_worker``) and signing certificate
(``signing_settings``).
The tests that start real processes (servers, Celery workers, a browser; marked ``redis``,
``e2e`` or ``processes``) share one xdist group: they run one at a time, on one worker, so
that they neither fight each other for the two cores nor share the broker's database.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from tests import committed
from tests.factories import (
    ParticipantFactory,
    SiteFactory,
    StudyFactory,
    build_reference_study,
    reference_instrument,
)

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


# Markers of the tests that start real processes: one xdist group (see the docstring).
REAL_PROCESSES = ("redis", "e2e", "processes")
REAL_PROCESS_GROUP = "real-processes"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (``--dist loadgroup``)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(marker) for marker in REAL_PROCESSES):
            item.add_marker(pytest.mark.xdist_group(REAL_PROCESS_GROUP))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (``make test``): a worker per core and one more. The real-process tests
    spend much of their time waiting for the servers, workers and browser they started,
    and a third worker on two cores uses that time: the PostgreSQL run took 6:52 with two
    workers, 5:47 with three and 5:59 with four (2026-12-05, 2 cores).
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still sets the number (xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return len(os.sched_getaffinity(0)) + 1  # the cores this process may use


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """``--dist loadgroup``, with each test module as one unit of work besides the groups,
    and the real-process group handed out first.

    A module's tests then run one after the other on one worker, so that what a module
    builds once (``scope="module"``: the reference study, a signed report, the settings
    tests' forking interpreter) is built once per run, not again each time a worker comes
    back to the module after tests of others. The real-process group, the longest unit
    by far, starts first so that the other worker is never left idle waiting for it at the
    end; the modules follow, largest first (xdist's order for scopes)."""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModulesAndGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return nodeid.split("::", 1)[0] if scope == nodeid else scope

        def _assign_work_unit(self, node):  # type: ignore[no-untyped-def]
            if REAL_PROCESS_GROUP in self.workqueue:
                self.workqueue.move_to_end(REAL_PROCESS_GROUP, last=False)
            super()._assign_work_unit(node)

    return ModulesAndGroups(config, log)


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
    superuser, as in CI; on SQLite, by dropping and recreating them).

    On PostgreSQL the wipe deletes the rows instead of truncating the tables, as Django
    does on SQLite: TRUNCATE gives every table and index a new file and syncs them at
    commit, about 0.9 s a wipe with three workers (a run wipes some ninety times), where
    deleting the few rows a test leaves takes milliseconds. With the triggers skipped the
    foreign keys are too, so the order of the tables does not matter."""
    from surveys import appendonly

    ops = type(connection.ops)
    original, original_sql = ops.execute_sql_flush, ops.sql_flush

    def execute_sql_flush(self, sql_list):  # type: ignore[no-untyped-def]
        before, after = appendonly.flush_sql(self.connection)
        return original(self, [*before, *sql_list, *after])

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if reset_sequences:  # no test asks for it; TRUNCATE … RESTART IDENTITY then
            return original_sql(
                self, style, tables, reset_sequences=True, allow_cascade=allow_cascade
            )
        delete = style.SQL_KEYWORD("DELETE FROM")
        return [f"{delete} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]

    ops.execute_sql_flush = execute_sql_flush
    if connection.vendor == "postgresql":
        ops.sql_flush = sql_flush
    yield
    ops.execute_sql_flush, ops.sql_flush = original, original_sql


# A deliberately slow hash is the point in production and a third of a second for every
# user a test creates or logs in here. No test is about the hash itself.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _files_of_this_worker(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Uploaded and rendered files go to a folder of this test process (never the
    project's media/, never another worker's), and passwords hash fast."""
    from django.test import override_settings

    with override_settings(
        MEDIA_ROOT=str(tmp_path_factory.mktemp("media")), PASSWORD_HASHERS=FAST_HASHERS
    ):
        yield


@pytest.fixture(scope="session")
def signing_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The settings that sign with a development certificate made once per test process
    (RSA key generation is slow), and trust it: ``override_settings(**signing_settings)``."""
    from kpi.evaluations.signing import make_development_certificate

    passphrase = "test-passphrase"
    path = make_development_certificate(tmp_path_factory.mktemp("signing") / "dev.p12", passphrase)
    return {
        "HYOKA_SIGNING_P12": str(path),
        "HYOKA_SIGNING_PASSPHRASE": passphrase,
        "HYOKA_SIGNING_TRUST_ROOTS": [],
    }


@pytest.fixture(scope="session")
def tsa_files(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A development time-stamping authority's certificate and key, made once per process."""
    from kpi.evidence.tsa import make_authority

    return make_authority(tmp_path_factory.mktemp("tsa"))


@pytest.fixture
def tsa(tsa_files):  # type: ignore[no-untyped-def]
    """A real RFC 3161 authority on 127.0.0.1, configured as ``HYOKA_TSA_URL`` and trusted
    through ``HYOKA_TSA_TRUST_ROOTS``; ``tsa.requests_served`` lists what it stamped."""
    from django.test import override_settings

    from kpi.evidence.timestamps import forget_client
    from kpi.evidence.tsa import serve_authority

    forget_client()
    with (
        serve_authority(tsa_files) as authority,
        override_settings(
            HYOKA_TSA_URL=authority.url, HYOKA_TSA_TRUST_ROOTS=[str(tsa_files.certificate)]
        ),
    ):
        yield authority


@pytest.fixture(autouse=True)
def _committed_data_only_where_wanted(request, django_db_blocker):  # type: ignore[no-untyped-def]
    committed.flush_unless_wanted(request, django_db_blocker)


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


@pytest.fixture(scope="module")
def _module_reference_study(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """The reference study built once per module and committed (tests/committed.py)."""
    with committed.committed(django_db_blocker, private_to="reference_study"):
        with committed.without_after_commit_work():
            pk = build_reference_study().pk
        yield pk


@pytest.fixture
def reference_study(_module_reference_study, db):  # type: ignore[no-untyped-def]
    """The reference study with its KPIs and the 229 demo responses, not yet scored (each
    test's changes are rolled back after it)."""
    from surveys.models import Study

    study = Study.objects.filter(pk=_module_reference_study).first()
    # Gone when a test of this module that did not want it emptied the tables: build it
    # again, inside this test's transaction.
    return study if study is not None else build_reference_study()


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
