"""The manager's pages and API lists at national scale, on PostgreSQL.

    .venv/bin/python bench/admin.py [--size 1000000] [--repeats 10] [--reuse] [--keep]
                                    [--only participant] [--no-export]
                                    [--file-exports local|national|both|none]
                                    [--database hyoka_bench_admin]

1. (Re)creates the database ``hyoka_bench_admin`` (``--database``: another name, one per
   person where several share the server; ``--reuse``: keeps it when it already
   holds a study of ``--size``; the build takes minutes) and builds the study of
   ``bench/studydata.py``: 50 sites, ``--size`` participants and as many submitted
   responses, the reference KPIs; one scoring run (``run_execute``, what the task runs), so
   that the run and results pages have results to show.
2. Two staff users who are not superusers, with every model permission of the project's
   apps: ``national`` (the manager role on all 50 sites) and ``local`` (on one site); and
   a ``superuser`` (no membership: every site) for the pages that name it
   (``Page.users``: the dashboard and the fieldwork watch).
3. Logs each in with ``django.test.Client`` (``force_login``) and requests every entry of
   ``PAGES`` in this process (embedded mode, ``DEBUG`` off: no HTTP server, so the
   figures are Django's and PostgreSQL's time, without gunicorn's or the network's):
   one untimed warm-up, then ``--repeats`` timed requests (fewer when an entry has taken
   ``--budget`` seconds: at least 3; none when the warm-up alone took longer, which is
   then the one figure, n = 1), and one more with the queries captured. Prints per
   entry and user: status, p50 and p95 (nearest-rank) of the wall time, rows on the page
   (the admin list's table rows, the API list's ``results``), bytes, queries, and PASS or
   FAIL against the target (p95 under 1 s, and a 200).
4. Streams the CSV export of every response (``/api/v1/responses/export/``) for the
   national manager once: total time (target under 60 s), MB/s, rows, and the increase of
   the peak resident set (memory bounded: target under 200 MB whatever the size).
5. The export page's XLSX, ``.sav`` and ``.dta`` files (``--file-exports``): the POST that
   asks for one (embedded mode: the task writes the file within it) and the download,
   timed together, once per format. By default for the local manager only (one site:
   some 20,000 responses at 1,000,000); ``national`` writes every response (minutes per
   format: bench/export.py has the per-format figures at size).

``PAGES`` is a list of ``Page(name, url)`` entries, ``url`` a function of the built
``World`` (``post``: a POST of that form data instead, as the KPI form's "Preview";
``users``: who is measured): add a page by adding a line. The index of every registered
model admin's list is added by ``model_lists()`` too, so a new model admin is measured
without a line.

The machine is shared (2 cores): the bench prints how idle it was before measuring;
repeat a run when in doubt.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/admin.py`` puts bench/ first
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402
from bench.studydata import Built, build  # noqa: E402

DB_NAME = "hyoka_bench_admin"
TARGET_P95 = 1.0  # seconds
TARGET_EXPORT = 60.0  # seconds for every response as CSV
TARGET_EXPORT_MB = 200.0  # peak resident set increase while exporting
PROJECT_APPS = ("surveys", "kpi", "fieldwork")
CROSSTAB_QUESTION = "reassured"  # a closed question of the reference instrument
EXPORT_FORMATS = ("xlsx", "sav", "dta")  # the export page's files (the CSV: measure_export)


@dataclass
class World:
    """What the URLs are built from."""

    study_id: int
    site_ids: list[int]
    local_site_id: int
    participant_id: int  # at the local manager's site
    response_id: int  # the same participant's
    reference: str  # the same participant's reference, to search for
    run_id: int
    kpi_id: int
    share_kpi_id: int  # a share of those who gave some answers: what a preview counts
    instrument_id: int
    later_page: int  # a page number well into the list, even for the local manager


def admin_url(name: str, *args: Any, query: str = "") -> str:
    from django.urls import reverse

    return reverse(f"admin:{name}", args=args) + (f"?{query}" if query else "")


def api_url(name: str, *args: Any, query: str = "") -> str:
    from django.urls import reverse

    return reverse(f"api:{name}", args=args) + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Page:
    name: str
    url: Callable[[World], str]
    #: A POST of this form data (a function of the world and the user) instead of a GET.
    post: Callable[[World, Any], dict[str, Any]] | None = None
    #: Measured for these users only (default: the two managers).
    users: tuple[str, ...] = ("national", "local")


def kpi_preview_data(world: World, user: Any) -> dict[str, Any]:
    """The KPI change form as the page shows it to ``user``, with "Preview" pressed: the
    form's own initial values (as tests/kpi/test_admin.py's ``form_data`` reads them)."""
    from django.contrib import admin
    from django.test import RequestFactory

    from kpi.models import KPI

    kpi = KPI.objects.get(pk=world.share_kpi_id)
    request = RequestFactory().get("/")
    request.user = user
    form = admin.site._registry[KPI].get_form(request, kpi, change=True)(instance=kpi)
    data: dict[str, Any] = {"_preview": "1"}
    for bound in form:
        value = bound.value()
        if value is None or value == [] or value is False:
            continue  # what a browser sends for an empty choice, list or checkbox
        if value is True:
            data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        else:
            data[bound.html_name] = str(value)
    return data


# The manager's pages and the API's lists. Add an entry to measure another page.
PAGES: list[Page] = [
    Page("admin index", lambda w: admin_url("index"), users=("national", "local", "superuser")),
    Page("study change", lambda w: admin_url("surveys_study_change", w.study_id)),
    Page("site change", lambda w: admin_url("surveys_site_change", w.local_site_id)),
    Page(
        "participant list, later page",
        lambda w: admin_url("surveys_participant_changelist", query=f"p={w.later_page}"),
    ),
    Page(
        "participant list, search",
        lambda w: admin_url("surveys_participant_changelist", query=f"q={w.reference}"),
    ),
    Page(
        "participant list, site + status",
        lambda w: admin_url(
            "surveys_participant_changelist", query=f"site={w.local_site_id}&status__exact=active"
        ),
    ),
    Page(
        "participant list, response filter",
        lambda w: admin_url("surveys_participant_changelist", query="response=submitted"),
    ),
    Page(
        "participant change",
        lambda w: admin_url("surveys_participant_change", w.participant_id),
    ),
    Page(
        "participant history",
        lambda w: admin_url("surveys_participant_history", w.participant_id),
    ),
    Page(
        "response list, later page",
        lambda w: admin_url("surveys_response_changelist", query=f"p={w.later_page}"),
    ),
    Page(
        "response list, search",
        lambda w: admin_url("surveys_response_changelist", query=f"q={w.reference}"),
    ),
    Page(
        "response list, site + status",
        lambda w: admin_url(
            "surveys_response_changelist", query=f"site={w.local_site_id}&status__exact=submitted"
        ),
    ),
    Page("response change", lambda w: admin_url("surveys_response_change", w.response_id)),
    Page("response history", lambda w: admin_url("surveys_response_history", w.response_id)),
    Page("KPI change", lambda w: admin_url("kpi_kpi_change", w.kpi_id)),
    Page(
        "KPI change, preview",
        lambda w: admin_url("kpi_kpi_change", w.share_kpi_id),
        post=kpi_preview_data,
    ),
    Page("run results", lambda w: admin_url("kpi_evaluationrun_change", w.run_id)),
    Page("study results", lambda w: admin_url("kpi_studyresults_change", w.study_id)),
    Page(
        "cross-tab by site",
        lambda w: admin_url(
            "kpi_studyresults_crosstab", w.study_id, query=f"question={CROSSTAB_QUESTION}&by=site"
        ),
    ),
    Page(
        "fieldwork watch",
        lambda w: admin_url("fieldwork_studyfieldwork_change", w.study_id),
        users=("national", "local", "superuser"),
    ),
    Page("API studies", lambda w: api_url("study-list")),
    Page("API sites", lambda w: api_url("site-list")),
    Page("API sites, study", lambda w: api_url("site-list", query=f"study={w.study_id}")),
    Page("API instruments", lambda w: api_url("instrument-list")),
    Page("API participants", lambda w: api_url("participant-list")),
    Page(
        "API participants, site",
        lambda w: api_url("participant-list", query=f"site={w.local_site_id}"),
    ),
    Page(
        "API participants, reference",
        lambda w: api_url("participant-list", query=f"reference={w.reference}"),
    ),
    Page("API responses", lambda w: api_url("response-list")),
    Page("API responses, later page", lambda w: api_url("response-list", query="page=40")),
    Page(
        "API responses, site + status",
        lambda w: api_url("response-list", query=f"site={w.local_site_id}&status=submitted"),
    ),
    Page("API segments", lambda w: api_url("segment-list")),
    Page("API KPIs", lambda w: api_url("kpi-list")),
    Page("API runs", lambda w: api_url("run-list")),
    Page("API run", lambda w: api_url("run-detail", w.run_id)),
    Page("API evaluations", lambda w: api_url("evaluation-list")),
    Page("API exports", lambda w: api_url("export-list")),
]


def model_lists() -> list[Page]:
    """The list page of every model admin of the project's apps (first page)."""
    from django.contrib import admin

    pages = []
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label in PROJECT_APPS:
            name = f"{opts.app_label}_{opts.model_name}_changelist"
            pages.append(Page(f"{opts.model_name} list", lambda w, n=name: admin_url(n)))
    return sorted(pages, key=lambda p: p.name)


# --- Set-up -----------------------------------------------------------------------------


def built_size() -> int | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('surveys_response') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT count(*) FROM surveys_response")
        return int(cursor.fetchone()[0])


def make_users(site_ids: list[int], local_site: int) -> dict[str, Any]:
    from django.contrib.auth.models import Permission, User

    from surveys.models import Membership

    permissions = list(Permission.objects.filter(content_type__app_label__in=PROJECT_APPS))
    users = {}
    for username, sites in (("national", site_ids), ("local", [local_site])):
        user, _ = User.objects.get_or_create(username=f"bench-{username}", is_staff=True)
        user.user_permissions.set(permissions)
        Membership.objects.filter(user=user).delete()
        Membership.objects.bulk_create(
            Membership(user=user, site_id=site, role=Membership.Role.MANAGER) for site in sites
        )
        users[username] = User.objects.get(pk=user.pk)  # fresh permission cache
    # A superuser (no membership: every site) for the pages that scope by site ids, where
    # "every site" is another plan (the pages naming it in ``Page.users``).
    superuser, _ = User.objects.get_or_create(
        username="bench-superuser", defaults={"is_staff": True, "is_superuser": True}
    )
    users["superuser"] = superuser
    return users


def make_world(study_id: int) -> World:
    from kpi.models import KPI, EvaluationRun
    from kpi.scoring.execution import run_execute
    from surveys.models import Instrument, Response, Site

    site_ids = list(
        Site.objects.filter(study_id=study_id).order_by("pk").values_list("pk", flat=True)
    )
    local = site_ids[len(site_ids) // 2]
    response = (
        Response.objects.filter(site_id=local).select_related("participant").order_by("pk").first()
    )
    assert response is not None
    run = EvaluationRun.objects.filter(study_id=study_id, status="succeeded").first()
    if run is None:
        started = time.perf_counter()
        queued = EvaluationRun.objects.create(study_id=study_id, trigger="command")
        run = run_execute(run_id=queued.pk)
        print(f"  scored the study in {time.perf_counter() - started:.1f} s (run #{run.pk})")
    kpi = KPI.objects.filter(study_id=study_id).order_by("pk").first()
    share = (
        KPI.objects.filter(study_id=study_id, kind=KPI.Kind.SHARE, numerator__isnull=False)
        .order_by("order", "pk")
        .first()
    )
    instrument = Instrument.objects.filter(study_id=study_id).first()
    assert kpi is not None and share is not None and instrument is not None
    return World(
        study_id=study_id,
        site_ids=site_ids,
        local_site_id=local,
        participant_id=response.participant_id,
        response_id=response.pk,
        reference=response.participant.reference,
        run_id=run.pk,
        kpi_id=kpi.pk,
        share_kpi_id=share.pk,
        instrument_id=instrument.pk,
        later_page=max(2, min(100, Response.objects.filter(site_id=local).count() // 200)),
    )


# --- Measuring --------------------------------------------------------------------------


@dataclass
class Measured:
    page: str
    user: str
    url: str
    status: int = 0
    seconds: list[float] = field(default_factory=list)
    rows: int | None = None
    bytes: int = 0
    queries: int = 0
    error: str = ""

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.percentile(95) < TARGET_P95


RESULT_LIST = re.compile(r'<table id="result_list".*?<tbody>(.*?)</tbody>', re.S)


def rows_of(response: Any) -> int | None:
    content_type = response.get("Content-Type", "")
    if content_type.startswith("application/json"):
        import json

        data = json.loads(response.content)
        if isinstance(data, dict) and "results" in data:
            return len(data["results"])
        return len(data) if isinstance(data, list) else None
    match = RESULT_LIST.search(response.content.decode("utf-8", "replace"))
    return match.group(1).count("<tr") if match else None


def measure(
    client: Any,
    page: Page,
    world: World,
    user: str,
    *,
    repeats: int,
    budget: float,
    client_user: Any = None,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = page.url(world)
    m = Measured(page.name, user, url)
    data = page.post(world, client_user) if page.post else None

    def request() -> Any:
        return client.post(url, data) if data is not None else client.get(url)

    try:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as warm_up_queries:
            first = request()  # warm-up, untimed unless it is all there will be
        warm_up = time.perf_counter() - started
    except Exception as exc:  # reported in the table; the bench goes on
        m.error = f"{type(exc).__name__}: {exc}"[:200]
        return m
    m.status = first.status_code
    m.bytes = len(first.content)
    m.rows = rows_of(first) if first.status_code == 200 else None
    if warm_up > budget:  # a page far over the target: its one request is its figure
        m.seconds.append(warm_up)
        m.queries = len(warm_up_queries.captured_queries)
        return m
    spent = 0.0
    for n in range(repeats):
        gc.collect()
        started = time.perf_counter()
        response = request()
        _ = response.content
        elapsed = time.perf_counter() - started
        m.seconds.append(elapsed)
        m.status = response.status_code if m.status == 200 else m.status
        spent += elapsed
        if n >= 2 and spent > budget:
            break
    with CaptureQueriesContext(connection) as queries:
        request()
    m.queries = len(queries.captured_queries)
    return m


@dataclass
class Export:
    seconds: float
    bytes: int
    rows: int
    rss_mb: float | None


def measure_export(client: Any) -> Export:
    url = api_url("response-list").rstrip("/") + "/export/"
    gc.collect()
    resettable = harness.reset_peak_rss()
    before = harness.status_kb("VmRSS") or 0
    started = time.perf_counter()
    response = client.get(url)
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    peak = harness.status_kb("VmHWM") if resettable else None
    rss = max(peak - before, 0) / 1024 if peak is not None else None
    return Export(seconds, size, lines - 1, rss)


@dataclass
class FileExport:
    user: str
    format: str
    seconds: float  # asking on the export page (the task writes the file) + downloading it
    status: str
    rows: int
    bytes: int


def measure_file_export(client: Any, world: World, user: Any, label: str, fmt: str) -> FileExport:
    """The export page's POST (embedded mode: the task writes the file during the request,
    as a worker would after it) and the download of the file, timed together; the file
    is removed after."""
    from pathlib import Path

    from django.conf import settings

    from surveys.models import ResponseExport

    gc.collect()
    started = time.perf_counter()
    asked = client.post(
        admin_url("surveys_study_export", world.study_id), {"format": fmt, "language": "ja"}
    )
    export = (
        ResponseExport.objects.filter(requested_by=user, study_id=world.study_id, format=fmt)
        .order_by("-pk")
        .first()
    )
    size = 0
    if asked.status_code == 302 and export is not None and export.status == "succeeded":
        download = client.get(admin_url("surveys_study_export_download", world.study_id, export.pk))
        for chunk in download.streaming_content:
            size += len(chunk)
        download.close()
    seconds = time.perf_counter() - started
    if export is not None and export.file.name:
        (Path(settings.MEDIA_ROOT) / export.file.name).unlink(missing_ok=True)
    return FileExport(
        label,
        fmt,
        seconds,
        export.status if export else f"HTTP {asked.status_code}",
        (export.rows or 0) if export else 0,
        size,
    )


# --- Report -----------------------------------------------------------------------------


def print_table(results: list[Measured]) -> None:
    header = ["page", "user", "status", "n", "p50 s", "p95 s", "rows", "bytes", "queries", "<1 s"]
    table = [header]
    for m in results:
        table.append(
            [
                m.page,
                m.user,
                str(m.status) if not m.error else "error",
                str(len(m.seconds)),
                f"{m.percentile(50):.3f}",
                f"{m.percentile(95):.3f}",
                "" if m.rows is None else str(m.rows),
                f"{m.bytes:,}",
                str(m.queries),
                "PASS" if m.ok else "FAIL",
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(f"\n== pages (target: p95 under {TARGET_P95:g} s and a 200)")
    for n, line in enumerate(table):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(line[2:], widths[2:], strict=True)]
        print("  " + " | ".join(cells))
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))
    for m in results:
        if m.error:
            print(f"  {m.page} ({m.user}): {m.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="responses (%(default)s)")
    parser.add_argument("--repeats", type=int, default=10, help="timed requests per page")
    parser.add_argument(
        "--budget", type=float, default=15.0, help="seconds per page after which it stops"
    )
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument(
        "--database", default=DB_NAME, help="the bench database (%(default)s): one per person"
    )
    parser.add_argument("--reuse", action="store_true", help="keep a database of this size")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--only", default="", help="only pages whose name contains this")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV export")
    parser.add_argument(
        "--file-exports",
        default="local",
        help="users whose XLSX, .sav and .dta exports are timed: local (one site, the "
        "default), national (every response: minutes), both, or none",
    )
    parser.add_argument(
        "--no-model-lists", action="store_true", help="skip the first page of every model list"
    )
    args = parser.parse_args(argv)
    if args.size < 100:
        parser.error("--size must be at least 100")

    started = time.perf_counter()
    db_name = args.database
    media = tempfile.TemporaryDirectory(prefix="hyoka-bench-admin-")  # the export files
    env = harness.embedded_environment(
        harness.database_url(db_name),
        MEDIA_ROOT=media.name,
        ALLOWED_HOSTS="testserver",
        API_THROTTLE_USER="1000000/minute",
    )
    if not args.reuse:
        harness.recreate_database(db_name)
    else:
        import psycopg

        with psycopg.connect(harness.database_url("postgres"), autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db_name]
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{db_name}"')
    harness.setup_django(env)
    harness.migrate()
    from django.test import Client

    from surveys.models import Study

    if built_size() == args.size and Study.objects.filter(code=f"bench-{args.size}").exists():
        study_id = Study.objects.get(code=f"bench-{args.size}").pk
        print(f"reusing {db_name}: {args.size:,} responses")
    else:
        from kpi.models import EvaluationRun

        EvaluationRun.objects.all().delete()
        built: Built = build(args.size, random.Random(args.seed))
        study_id = built.study_id
        print(
            f"built {args.size:,} participants and submitted responses over "
            f"{len(built.site_ids)} sites in {built.seconds:.0f} s ({built.answers:,} answers)"
        )
    world = make_world(study_id)
    users = make_users(world.site_ids, world.local_site_id)
    pages = [PAGES[0], *([] if args.no_model_lists else model_lists()), *PAGES[1:]]
    if args.only:
        pages = [p for p in pages if args.only.lower() in p.name.lower()]

    harness.idle_warning("measuring", "the timings below are inflated and noisy")
    load_before = os.getloadavg()
    results = []
    try:
        for page in pages:
            for label, user in users.items():
                if label not in page.users:
                    continue
                client = Client()
                client.force_login(user)
                m = measure(
                    client,
                    page,
                    world,
                    label,
                    repeats=args.repeats,
                    budget=args.budget,
                    client_user=user,
                )
                results.append(m)
                print(
                    f"  {page.name} ({label}): {m.status} p50 {m.percentile(50):.3f} s, "
                    f"p95 {m.percentile(95):.3f} s, {m.queries} queries",
                    flush=True,
                )
        print_table(results)
        export_ok = True
        if not args.no_export:
            client = Client()
            client.force_login(users["national"])
            e = measure_export(client)
            mb = e.bytes / 2**20
            export_ok = e.seconds < TARGET_EXPORT and (e.rss_mb or 0) < TARGET_EXPORT_MB
            print(
                f"\n== CSV export of every response (national manager): {e.rows:,} rows, "
                f"{mb:.1f} MB in {e.seconds:.1f} s = {mb / e.seconds:.1f} MB/s; peak RSS "
                f"+{e.rss_mb if e.rss_mb is not None else float('nan'):.0f} MB; target under "
                f"{TARGET_EXPORT:g} s and {TARGET_EXPORT_MB:g} MB: "
                + ("PASS" if export_ok else "FAIL")
            )
        exporters = {"both": ("local", "national"), "none": ()}.get(
            args.file_exports, (args.file_exports,)
        )
        if exporters:
            print("\n== the export page's files (ask + the task's writing + download)")
        for label in exporters:
            client = Client()
            client.force_login(users[label])
            for fmt in EXPORT_FORMATS:
                f = measure_file_export(client, world, users[label], label, fmt)
                print(
                    f"  {fmt:4} ({f.user}): {f.status}, {f.rows:,} rows, "
                    f"{f.bytes / 2**20:.1f} MB in {f.seconds:.1f} s",
                    flush=True,
                )
        failed = [m for m in results if not m.ok]
        print(
            f"\n== {len(results) - len(failed)} of {len(results)} pages PASS"
            + (": FAIL " + ", ".join(f"{m.page} ({m.user})" for m in failed) if failed else "")
        )
        if any(m.seconds for m in results):
            print(
                "  median of the p95s: "
                f"{statistics.median(m.percentile(95) for m in results if m.seconds):.3f} s"
            )
        print(
            "  load average (1, 5, 15 min) before measuring: "
            + ", ".join(f"{x:.2f}" for x in load_before)
            + "; after: "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        )
    finally:
        if args.keep or args.reuse:
            print(f"\nkept the database {db_name}")
        else:
            harness.drop_database(db_name)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
