"""The dashboard (the admin's first screen) at national scale, on PostgreSQL.

    .venv/bin/python bench/dashboard.py [--size 1000000] [--requests 10] [--keep]

1. (Re)creates the PostgreSQL database ``hyoka_bench_dashboard`` on 127.0.0.1, migrates
   it, and builds one study of ``--size`` participants and submitted responses over 50
   sites with ``bench/studydata.py``'s builder (COPY, then VACUUM ANALYZE); scores it once.
2. Times GET /admin/ through Django's test client (no network), one warm-up and then
   ``--requests`` timed requests, for a superuser (every site) and for a manager of one
   site; reports p50, p95, the number of queries and the page's size.
3. As a baseline measured in the same run: ``SELECT count(*)`` of the response table (the
   least any page that counts the responses must do), timed the same way.

Target (issue 15): under 1 s p95 at 1,000,000 responses.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/dashboard.py`` puts bench/ first
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402

DB_NAME = "hyoka_bench_dashboard"


def timed(call: Callable[[], object], n: int) -> list[float]:
    call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return sorted(times)


def p95(times: list[float]) -> float:
    return times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    harness.recreate_database(DB_NAME)
    harness.setup_django(
        harness.embedded_environment(harness.database_url(DB_NAME), ALLOWED_HOSTS="testserver")
    )
    harness.migrate()
    from django.contrib.auth.models import Permission, User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.studydata import build
    from kpi.models import EvaluationRun
    from kpi.scoring import execution
    from surveys.models import Membership, Site

    # bench/studydata.py's builder empties the participants with TRUNCATE, which PostgreSQL
    # refuses while tables newer than it (link openings, fieldwork's contacts and
    # deliveries) have foreign keys to them: empty here, so their keys are dropped in this
    # throwaway database. TODO: drop this once the builder truncates them too.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = 'surveys_participant'::regclass AND conrelid::regclass::text = "
            "ANY(%s)",
            [["surveys_linkopening", "fieldwork_contact", "fieldwork_delivery"]],
        )
        for table, name in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')

    started = time.perf_counter()
    built = build(args.size, random.Random(2021))
    study_id = built.study_id
    print(f"built {args.size:,} responses over 50 sites in {time.perf_counter() - started:.0f} s")
    run = EvaluationRun.objects.create(study_id=study_id, trigger=EvaluationRun.Trigger.COMMAND)
    execution.run_execute(run_id=run.pk)

    root = User.objects.create_superuser("root", password="bench-dashboard-1")  # noqa: S106
    manager = User.objects.create_user(
        "manager",
        password="bench-dashboard-1",  # noqa: S106
        is_staff=True,
    )
    for app, codename in [("surveys", "view_study"), ("kpi", "view_evaluationrun")]:
        manager.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    site = Site.objects.filter(study_id=study_id).order_by("code").first()
    Membership.objects.create(user=manager, site=site, role=Membership.Role.MANAGER)

    def baseline() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM surveys_response")
            cursor.fetchone()

    rows = [("SELECT count(*) baseline", timed(baseline, args.requests), 1, 0)]
    for label, user in [
        ("/admin/ superuser (50 sites)", root),
        ("/admin/ manager (1 site)", manager),
    ]:
        client = Client()
        client.force_login(user)
        size = 0

        def get(client: Client = client) -> None:
            nonlocal size
            response = client.get("/admin/")
            assert response.status_code == 200, response.status_code
            size = len(response.content)

        times = timed(get, args.requests)
        with CaptureQueriesContext(connection) as queries:
            get()
        rows.append((label, times, len(queries), size))

    base = statistics.median(rows[0][1])
    header = f"{'what':34} {'p50 ms':>8} {'p95 ms':>8} {'× baseline':>10}"
    print(f"\n{header} {'queries':>8} {'bytes':>8}")
    for label, times, queries, size in rows:
        p50 = statistics.median(times)
        print(
            f"{label:34} {p50 * 1000:8.0f} {p95(times) * 1000:8.0f} "
            f"{harness.ratio(p50, base):>10} {queries:8d} {size:8,d}"
        )
    worst = max(p95(times) for _, times, _, _ in rows[1:])
    print(f"\ntarget p95 < 1 s: {'ok' if worst < 1 else 'FAIL'} ({worst * 1000:.0f} ms)")
    if not args.keep:
        harness.drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
