"""The PostgreSQL indexes of migration surveys 0018 (issue 15, bench/admin.py): the admin's
reference search and the per-day counts of the fieldwork watch and the dashboard are
answered from them. Plans are read with EXPLAIN; on a test's few rows the planner would
rather read the table, so the plans are taken with table scans ruled out (as
``surveys.planner.index_scans`` does for the counts in production): what is checked is
that each query's expression is the one indexed, which a change of either would break.
The migration is a no-op on SQLite and reversible on both. Timings: bench/admin.py."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fieldwork.watch import study_watch
from surveys import scoping
from surveys.models import Participant, Response, Site, Study
from surveys.planner import index_scans
from tests.factories import SiteFactory, StudyFactory, reference_instrument
from workspace.figures import dashboard_figures

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

NAME = "_reference_search_and_per_day_count_indexes"  # the migration, whatever its number
INDEXES = {
    "participant_reference_trgm",
    "response_started_day",
    "response_submitted_day",
    "participant_active_day",
}


def indexes() -> set[str]:
    """The names of the indexes on the participant and response tables."""
    names: set[str] = set()
    with connection.cursor() as cursor:
        for table in ("surveys_participant", "surveys_response"):
            constraints = connection.introspection.get_constraints(cursor, table)
            names |= {name for name, c in constraints.items() if c["index"]}
    return names


@pytest.mark.django_db(transaction=True)
def test_the_migration_adds_the_indexes_on_postgresql_only_and_goes_back() -> None:
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    leaves = graph.leaf_nodes()
    [migration] = [k for k in graph.nodes if k[0] == "surveys" and k[1].endswith(NAME)]
    [before] = [p.key for p in graph.node_map[migration].parents if p.key[0] == "surveys"]
    try:
        executor.migrate([before])
        assert not indexes() & INDEXES
        MigrationExecutor(connection).migrate([migration])
        assert indexes() & INDEXES == (INDEXES if connection.vendor == "postgresql" else set())
    finally:
        MigrationExecutor(connection).migrate(leaves)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            assert cursor.fetchone() is not None


# --- Plans (PostgreSQL) -----------------------------------------------------------------


@pytest.fixture
def study(db) -> Study:  # type: ignore[no-untyped-def]
    """Two sites with participants registered, started and submitted over several days,
    some drafts, some never started."""
    study = StudyFactory(code="plans")
    instrument = reference_instrument(study)
    now = timezone.now()
    for site in (SiteFactory(study=study, code="one"), SiteFactory(study=study, code="two")):
        participants = Participant.objects.bulk_create(
            Participant(
                site=site, reference=f"{site.code}-{k:04d}", token_hash=secrets.token_hex(32)
            )
            for k in range(120)
        )
        Response.objects.bulk_create(
            Response(
                participant=p,
                site=site,
                instrument=instrument,
                source="web",
                started_at=now - dt.timedelta(days=k % 9, hours=k % 5),
                status="submitted" if k % 4 else "draft",
                submitted_at=now - dt.timedelta(days=k % 7) if k % 4 else None,
            )
            for k, p in enumerate(participants[:100])
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE surveys_participant")
        cursor.execute("ANALYZE surveys_response")
    return study


@pytest.fixture
def superuser(db) -> User:  # type: ignore[no-untyped-def]
    return User.objects.create_superuser("plans-admin", password=None)


@contextmanager
def ruled_out(*scans: str) -> Iterator[None]:
    """Plans without these kinds of scan (``seqscan``, ``bitmapscan``)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for scan in scans:
            cursor.execute(f"SET LOCAL enable_{scan} = off")
        yield


def plan_of(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def per_day_plans(queries: CaptureQueriesContext) -> str:
    """The plans of the captured per-day counts, as ``index_scans`` has them planned,
    with bitmap scans and sorts ruled out too: on a few rows the planner would rather
    read the rows of a site or a status and sort them (at a million, bench/admin.py, it
    reads the day index with ``index_scans`` alone)."""
    per_day = [q["sql"] for q in queries.captured_queries if "AT TIME ZONE" in q["sql"]]
    assert per_day
    with index_scans(), ruled_out("bitmapscan", "sort", "incremental_sort"):
        return "\n".join(plan_of(sql) for sql in per_day)


@pytest.mark.postgres
def test_the_response_lists_search_can_use_the_trigram_index(study: Study, superuser: User) -> None:
    request = RequestFactory().get("/", {"q": "two-0042"})
    request.user = superuser
    model_admin = admin.site._registry[Response]
    queryset, _ = model_admin.get_search_results(request, Response.objects.all(), "two-0042")
    assert queryset.count() == 1
    # Whatever the join order, the reference is matched by the index, not row by row.
    with ruled_out("seqscan", "indexscan"):
        plan = queryset.explain()
    assert "participant_reference_trgm" in plan, plan


@pytest.mark.postgres
def test_the_watchs_per_day_counts_read_the_day_indexes(study: Study, superuser: User) -> None:
    with CaptureQueriesContext(connection) as queries:
        study_watch(study, scoping.sites(superuser, Site.objects.all()))
    plans = per_day_plans(queries)
    for name in ("participant_active_day", "response_started_day", "response_submitted_day"):
        assert f"using {name}" in plans, plans


@pytest.mark.postgres
def test_the_dashboards_per_day_count_reads_the_submission_day_index(
    study: Study, superuser: User
) -> None:
    with CaptureQueriesContext(connection) as queries:
        [figures] = dashboard_figures(superuser, may_read_results=True)
    assert figures.submitted == Response.objects.filter(status="submitted").count()
    plans = per_day_plans(queries)
    assert "using response_submitted_day" in plans, plans


@pytest.mark.postgres
def test_the_planner_settings_are_the_callers_again_after_the_counts(db) -> None:  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        before = cursor.fetchone()[0]
        with index_scans():
            cursor.execute("SHOW enable_seqscan")
            assert cursor.fetchone()[0] == "off"
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == before
