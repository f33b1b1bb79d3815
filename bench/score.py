"""Scoring speed and memory of the KPI engine on PostgreSQL, beside hand-written SQL.

    .venv/bin/python bench/score.py [--sizes 10000 100000 1000000] [--keep] [--explain]

1. (Re)creates the PostgreSQL database ``hyoka_bench_score`` on 127.0.0.1 and migrates it
   (embedded mode: no broker, the scoring runs in this process as a task would).
2. For each size N: empties the participant, response and answer tables (each size is
   measured alone), creates a study with the reference instrument, 50 sites and the
   reference KPIs, then N participants and N submitted responses spread unevenly over the
   sites, with random but valid answers (a seeded ``random.Random``), their
   ``choice_bits`` from ``InstrumentForm.bit_of`` and one ``Answer`` row per chosen
   choice. All of it in one transaction, written with COPY (FREEZE), with the foreign-key
   triggers off and the secondary indexes built again after the COPY; then VACUUM ANALYZE.
3. Times ``run_execute`` (what the Celery task runs) on fresh runs: one untimed warm-up,
   then 3 timed runs (median and min); then one more run under ``tracemalloc`` for the
   peak of Python memory (tracemalloc slows Python down, so it is never timed). The RSS
   increase is the peak resident set (VmHWM, reset through /proc/self/clear_refs before
   each run) minus the resident set before it.
4. Times two hand-written baselines the same way (without tracemalloc), each ONE SQL
   statement that also counts the invited participants per site in a CTE: (a) over
   ``surveys_response.choice_bits`` with bit masks taken from the instrument; (b) over the
   normalized ``surveys_answer`` rows, grouped by response and then by site, without the
   bits. It also times the engine's two counting queries alone, and prints EXPLAIN
   (ANALYZE, BUFFERS) of them when 1,000,000 responses miss the time target (or with
   ``--explain``).
5. Checks that every KPIResult of every engine run (numerator, denominator, overlap,
   respondents and invited, per KPI, per site and overall) equals both baselines' counts;
   exits 1 on any mismatch. Targets that are missed are reported as FAIL, not as an exit
   status (as bench/submit.py does).

Targets: 1,000,000 responses scored in under 1 s, within 2x of the hand-written SQL
(baseline a), peak memory under 200 MB, time growing at most linearly with size.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/score.py`` puts bench/ first, not the project
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402
from bench.harness import CHANNEL_P, SINGLE_WEIGHTS, UNDERSTOOD_WEIGHTS  # noqa: E402

DB_NAME = "hyoka_bench_score"
DEFAULT_SIZES = [10_000, 100_000, 1_000_000]
SITES = 50
REPEATS = 3
CHUNK = 50_000  # responses generated and copied at a time: bounds this process's memory

TARGET_SIZE = 1_000_000
TARGET_SECONDS = 1.0
TARGET_RATIO = 2.0
TARGET_MB = 200.0
LINEAR_SLACK = 1.25  # seconds per response may grow by this factor from one size to the next

NONE_SHARE = 0.05  # respondents who tick only "none", besides those who tick nothing else
TIMESTAMP = "2021-10-15 09:00:00+09"  # every participant and response; long before now

# The counts the reference KPIs stand on, per site. KPI code -> (numerator, denominator,
# overlap) as names of these counts (DESIGN.md and surveys/reference/.../kpis.toml).
COUNTS = [
    "invited",
    "respondents",
    "online",
    "municipal",
    "both",
    "online_only",
    "municipal_only",
    "neither",
    "reassured",
    "continue",
    "reuse",
    "understood",
    "line",
]
EXPECTED: dict[str, tuple[str, str, str | None]] = {
    "response_rate": ("respondents", "invited", None),
    "reassured": ("reassured", "respondents", None),
    "continue": ("continue", "respondents", None),
    "reuse": ("reuse", "respondents", None),
    "understood": ("understood", "online", None),
    "line_share": ("line", "respondents", None),
    "reach_ratio": ("online", "municipal", "both"),
    "channels_online_only": ("online_only", "respondents", None),
    "channels_both": ("both", "respondents", None),
    "channels_municipal_only": ("municipal_only", "respondents", None),
    "channels_neither": ("neither", "respondents", None),
}

DATA_TABLES = ("surveys_answer", "surveys_response", "surveys_participant")

Counts = dict[int, dict[str, int]]  # site id -> count name -> value


# --- Set-up -----------------------------------------------------------------------------


# --- Building a study -------------------------------------------------------------------


@dataclass
class Built:
    size: int
    study_id: int
    instrument_id: int
    site_ids: list[int]
    masks: dict[str, int]  # hand-written bit masks of the baseline (a)
    choice_ids: dict[str, list[int]]  # the same sets as choice ids, for baseline (b)
    answers: int
    seconds: float
    phases: dict[str, float]


def _answer_tables(
    choices: dict[str, dict[str, Any]], bit_of: dict[int, int]
) -> tuple[list[tuple[int, list[str], bool]], list[float], dict[str, list[tuple[int, str]]]]:
    """What one response can answer, with its bits and its answer rows' tails.

    Channels: every set of ticked channels as (bits, answer-row tails, ticks an online
    channel) with its probability; index 0 is "none" alone. Singles: per question (and
    ``understood``), every choice as (bit, answer-row tail)."""

    def tail(question: str, code: str) -> str:
        c = choices[question][code]
        return f"\t{c.question_id}\t{c.pk}\n"

    def bit(question: str, code: str) -> int:
        return 1 << bit_of[choices[question][code].pk]

    codes = list(CHANNEL_P)
    online = {c for c, ch in choices["channels"].items() if "online" in ch.tags}
    nothing = 1.0
    for p in CHANNEL_P.values():
        nothing *= 1 - p
    sets = [(bit("channels", "none"), [tail("channels", "none")], False)]
    weights = [NONE_SHARE + (1 - NONE_SHARE) * nothing]
    for m in range(1, 1 << len(codes)):
        ticked = [c for i, c in enumerate(codes) if m >> i & 1]
        weight = 1 - NONE_SHARE
        for i, p in enumerate(CHANNEL_P.values()):
            weight *= p if m >> i & 1 else 1 - p
        bits = 0
        for c in ticked:
            bits |= bit("channels", c)
        sets.append((bits, [tail("channels", c) for c in ticked], bool(online & set(ticked))))
        weights.append(weight)
    singles = {
        q: [(bit(q, c), tail(q, c)) for c in w]
        for q, w in [*SINGLE_WEIGHTS.items(), ("understood", UNDERSTOOD_WEIGHTS)]
    }
    return sets, weights, singles


def build(size: int, rng: random.Random) -> Built:
    from django.db import connection, transaction

    from kpi.definitions.loading import kpis_path, load_kpis
    from surveys import appendonly
    from surveys.answers import InstrumentForm
    from surveys.models import Site, Study
    from tests.factories import SiteFactory, StudyFactory, reference_instrument

    started = time.perf_counter()
    phases = {"COPY": 0.0}
    answers = 0
    # One transaction: the tables are emptied in it, so COPY may write frozen rows.
    with transaction.atomic(), connection.cursor() as cursor:
        # Each size is measured alone; the results of earlier sizes' runs stay.
        # With the erasure records (none here), whose foreign key would refuse it otherwise;
        # they are append-only, so past their trigger as the test suite's flush does.
        before, after = appendonly.flush_sql(connection)
        for statement in before:
            cursor.execute(statement)
        # The participants' links (surveys/links.py), first openings and fieldwork's
        # contacts and deliveries refer to them: emptied with them (CASCADE: whatever
        # table comes to refer to them next).
        cursor.execute(
            f"TRUNCATE {', '.join(DATA_TABLES)}, surveys_erasurerecord, "
            "surveys_participantlink, surveys_legacylink RESTART IDENTITY CASCADE"
        )
        for statement in after:
            cursor.execute(statement)
        # Secondary indexes are dropped and built again after the COPY, several times
        # faster than maintaining them row by row; the constraints' indexes stay.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [list(DATA_TABLES)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        study = cast(Study, StudyFactory(code=f"bench-{size}"))
        instrument = reference_instrument(study)
        sites = [cast(Site, SiteFactory(study=study, code=f"site-{k:02d}")) for k in range(SITES)]
        path = kpis_path()
        assert path is not None
        load_kpis(study=study, path=path)
        form = InstrumentForm.load(instrument)
        choices = form.choices  # question code -> choice code -> Choice
        site_ids = [s.pk for s in sites]
        site_weights = [rng.uniform(0.5, 1.5) for _ in site_ids]
        channel_sets, channel_weights, singles = _answer_tables(choices, form.bit_of)
        asked = [(singles[q], list(w.values())) for q, w in SINGLE_WEIGHTS.items()]
        understood = singles["understood"], list(UNDERSTOOD_WEIGHTS.values())
        phases["set-up"] = time.perf_counter() - started

        # The rows are valid by construction (and every count is checked below); the
        # foreign keys' deferred checks of millions of rows would dominate the build.
        cursor.execute("SET LOCAL session_replication_role = replica")
        pg = cursor.cursor  # psycopg's own cursor, for COPY
        for start in range(0, size, CHUNK):
            n = min(CHUNK, size - start)
            site_of = rng.choices(site_ids, site_weights, k=n)
            channel_of = rng.choices(channel_sets, channel_weights, k=n)
            picks = [rng.choices(options, weights, k=n) for options, weights in asked]
            understood_of = rng.choices(*understood, k=n)
            participants, responses, rows = io.StringIO(), io.StringIO(), io.StringIO()
            for i in range(n):
                ident = start + i + 1  # participant and response ids: 1..N (tables restarted)
                site = site_of[i]
                token_hash = hashlib.sha256(f"bench-{study.pk}-{ident}".encode()).hexdigest()
                participants.write(
                    f"{ident}\t{site}\tB{ident:07d}\tactive\t{token_hash}\t"
                    f"{TIMESTAMP}\t{TIMESTAMP}\t{TIMESTAMP}\n"
                )
                bits, tails, online = channel_of[i]
                tails = list(tails)
                for pick in picks:
                    bits |= pick[i][0]
                    tails.append(pick[i][1])
                if online:  # "understood" is shown only to users of an online channel
                    bits |= understood_of[i][0]
                    tails.append(understood_of[i][1])
                responses.write(
                    f"{ident}\t{ident}\t{instrument.pk}\t{site}\tsubmitted\t{bits}\tja\timport\t"
                    f"{TIMESTAMP}\t{TIMESTAMP}\t{TIMESTAMP}\n"
                )
                prefix = str(ident)
                rows.write("".join([prefix + tail for tail in tails]))
                answers += len(tails)
            copying = time.perf_counter()
            for table, columns, buffer in (
                (
                    "surveys_participant",
                    "id, site_id, reference, status, token_hash, token_issued_at, "
                    "invited_at, created_at",
                    participants,
                ),
                (
                    "surveys_response",
                    "id, participant_id, instrument_id, site_id, status, choice_bits, "
                    "language, source, started_at, updated_at, submitted_at",
                    responses,
                ),
                ("surveys_answer", "response_id, question_id, choice_id", rows),
            ):
                with pg.copy(f"COPY {table} ({columns}) FROM STDIN (FREEZE)") as copy:
                    copy.write(buffer.getvalue())
            phases["COPY"] += time.perf_counter() - copying
        for table in ("surveys_participant", "surveys_response"):
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, max(size, 1)]
            )
        indexing = time.perf_counter()
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        phases["indexes"] = time.perf_counter() - indexing
        committing = time.perf_counter()
    phases["commit"] = time.perf_counter() - committing
    vacuuming = time.perf_counter()
    with connection.cursor() as cursor:
        for table in DATA_TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    phases["VACUUM ANALYZE"] = time.perf_counter() - vacuuming
    phases["generating"] = time.perf_counter() - started - sum(phases.values())

    # The baselines' sets, written out by hand from the instrument's codes and tags.
    def ids(question: str, codes: list[str] | None = None, tag: str = "") -> list[int]:
        return [
            c.pk
            for c in choices[question].values()
            if (codes is not None and c.code in codes) or (tag and tag in c.tags)
        ]

    top_two = ["agree", "somewhat_agree"]
    choice_ids = {
        "online": ids("channels", tag="online"),
        "municipal": ids("channels", tag="municipal"),
        "reassured": ids("reassured", top_two),
        "continue": ids("continue", top_two),
        "reuse": ids("reuse", top_two),
        "understood": ids("understood", ["fully", "fairly"]),
        "line": ids("tool", ["line"]),
    }
    masks = {name: sum(1 << form.bit_of[pk] for pk in pks) for name, pks in choice_ids.items()}
    return Built(
        size=size,
        study_id=study.pk,
        instrument_id=instrument.pk,
        site_ids=site_ids,
        masks=masks,
        choice_ids=choice_ids,
        answers=answers,
        seconds=time.perf_counter() - started,
        phases=phases,
    )


# --- The hand-written baselines ---------------------------------------------------------

# The invited participants per site: the active ones, plus the withdrawn ones who had
# responded by the cut-off. Written as two branches rather than "active OR responded":
# PostgreSQL costs an OR with a subquery as one probe per participant (or, past work_mem,
# as a materialized scan per participant), which pushes the plan's estimated cost past
# jit_optimize_above_cost, and JIT then spends seconds compiling a plan that never runs
# the subquery. Each branch is a plain (parallel) scan.
INVITED_CTE = """
invited AS (
    SELECT site_id, count(*) AS n FROM (
        SELECT p.site_id FROM surveys_participant p
        WHERE p.site_id = ANY(%(sites)s) AND p.created_at <= %(cutoff)s
          AND p.status = 'active'
        UNION ALL
        SELECT p.site_id FROM surveys_participant p
        JOIN surveys_response x ON x.participant_id = p.id
        WHERE p.site_id = ANY(%(sites)s) AND p.created_at <= %(cutoff)s
          AND p.status <> 'active' AND x.status = 'submitted' AND x.submitted_at <= %(cutoff)s
    ) AS i
    GROUP BY site_id
)"""

FINAL_SELECT = """
SELECT coalesce(invited.site_id, counted.site_id), coalesce(invited.n, 0), {columns}
FROM invited FULL JOIN counted ON counted.site_id = invited.site_id
"""


def _final(names: list[str]) -> str:
    return FINAL_SELECT.format(columns=", ".join(f"coalesce(counted.{n}, 0)" for n in names))


def bits_sql(built: Built) -> str:
    """(a) One statement over the per-response bits."""
    m = built.masks

    def has(name: str) -> str:
        return f"(choice_bits & {m[name]}) <> 0"

    conditions = {
        "online": has("online"),
        "municipal": has("municipal"),
        "both": f"{has('online')} AND {has('municipal')}",
        "online_only": f"{has('online')} AND NOT {has('municipal')}",
        "municipal_only": f"NOT {has('online')} AND {has('municipal')}",
        "neither": f"NOT {has('online')} AND NOT {has('municipal')}",
        "reassured": has("reassured"),
        "continue": has("continue"),
        "reuse": has("reuse"),
        "understood": f"{has('online')} AND {has('understood')}",
        "line": has("line"),
    }
    columns = ",\n        ".join(
        f"count(*) FILTER (WHERE {cond}) AS n_{name}" for name, cond in conditions.items()
    )
    return (
        "WITH counted AS (\n"
        "    SELECT site_id, count(*) AS n_respondents,\n"
        f"        {columns}\n"
        "    FROM surveys_response\n"
        "    WHERE instrument_id = %(instrument)s AND status = 'submitted'\n"
        "      AND submitted_at <= %(cutoff)s\n"
        "    GROUP BY site_id\n"
        f"),{INVITED_CTE}" + _final(["n_respondents"] + [f"n_{n}" for n in conditions])
    )


def answers_sql(built: Built) -> str:
    """(b) One statement over the answer rows: per response, then per site."""
    flags = ",\n        ".join(
        f"coalesce(bool_or(a.choice_id IN ({', '.join(map(str, pks))})), false) AS {name}"
        for name, pks in built.choice_ids.items()
    )
    conditions = {
        "online": "online",
        "municipal": "municipal",
        "both": "online AND municipal",
        "online_only": "online AND NOT municipal",
        "municipal_only": "NOT online AND municipal",
        "neither": "NOT online AND NOT municipal",
        "reassured": "reassured",
        "continue": "continue",
        "reuse": "reuse",
        "understood": "online AND understood",
        "line": "line",
    }
    columns = ",\n        ".join(
        f"count(*) FILTER (WHERE {cond}) AS n_{name}" for name, cond in conditions.items()
    )
    return (
        "WITH per_response AS (\n"
        "    SELECT r.id, r.site_id,\n"
        f"        {flags}\n"
        "    FROM surveys_response r\n"
        "    LEFT JOIN surveys_answer a ON a.response_id = r.id\n"
        "    WHERE r.instrument_id = %(instrument)s AND r.status = 'submitted'\n"
        "      AND r.submitted_at <= %(cutoff)s\n"
        "    GROUP BY r.id\n"
        "), counted AS (\n"
        "    SELECT site_id, count(*) AS n_respondents,\n"
        f"        {columns}\n"
        "    FROM per_response\n"
        "    GROUP BY site_id\n"
        f"),{INVITED_CTE}" + _final(["n_respondents"] + [f"n_{n}" for n in conditions])
    )


def _params(built: Built) -> dict[str, Any]:
    from django.utils import timezone

    return {
        "instrument": built.instrument_id,
        "cutoff": timezone.now(),
        "sites": built.site_ids,
    }


def run_baseline(sql: str, built: Built) -> Counts:
    """Counts per site; a site with neither participants nor responses has no row, so
    it is filled in with zeros (as the engine reports it)."""
    from django.db import connection

    counts = {site: dict.fromkeys(COUNTS, 0) for site in built.site_ids}
    with connection.cursor() as cursor:
        cursor.execute(sql, _params(built))
        for row in cursor:
            counts[row[0]] = dict(zip(COUNTS, map(int, row[1:]), strict=True))
    return counts


# --- Measuring --------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cold: float = 0.0
    peak_mb: float = 0.0  # tracemalloc
    rss_before_mb: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def measure(call: Callable[[], object], *, memory: bool = False) -> tuple[Timed, list[object]]:
    """One untimed warm-up, REPEATS timed calls (with their RSS increase), and with
    ``memory`` one more call under tracemalloc. Returns the figures and every result."""
    import gc

    timed, results = Timed(), []
    started = time.perf_counter()
    results.append(call())
    timed.cold = time.perf_counter() - started
    for _ in range(REPEATS):
        gc.collect()
        resettable = harness.reset_peak_rss()
        before = harness.status_kb("VmRSS") or 0
        timed.rss_before_mb = before / 1024
        started = time.perf_counter()
        results.append(call())
        timed.seconds.append(time.perf_counter() - started)
        peak = harness.status_kb("VmHWM") if resettable else None
        if peak is not None:
            timed.rss_mb.append(max(peak - before, 0) / 1024)
    if memory:
        gc.collect()
        tracemalloc.start()
        try:
            results.append(call())
            timed.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    return timed, results


def _category(sql: str) -> str:
    if sql.startswith("SELECT site_id, COUNT(*)"):
        return "response query"
    if 'FROM "surveys_participant"' in sql and "COUNT(" in sql:
        return "invited query"
    if sql.startswith('INSERT INTO "kpi_kpiresult"'):
        return "writing results"
    return "other SQL"


def engine_call(study_id: int) -> tuple[Callable[[], int], list[dict[str, float]]]:
    """``run_execute`` on a fresh run per call, and per call the seconds its SQL took by
    kind (through Django's execute_wrapper: no change to the engine). The runs are
    created (queued) before any clock starts, as the task finds its run already queued."""
    from django.db import connection

    from kpi.models import EvaluationRun
    from kpi.scoring.execution import run_execute

    pending = [
        EvaluationRun.objects.create(study_id=study_id, trigger="command").pk
        for _ in range(REPEATS + 2)  # warm-up, timed runs, tracemalloc run
    ]
    profiles: list[dict[str, float]] = []

    def call() -> int:
        run_id = pending.pop(0)
        spent: dict[str, float] = {}

        def timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                kind = _category(sql)
                spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        with connection.execute_wrapper(timer):
            run = run_execute(run_id=run_id)
        spent["Python"] = time.perf_counter() - started - sum(spent.values())
        assert run.status == EvaluationRun.Status.SUCCEEDED, run.error
        profiles.append(spent)
        return run_id

    return call, profiles


def engine_results(run_id: int) -> dict[tuple[str, int | None], tuple[int, ...]]:
    from kpi.models import KPIResult

    rows = KPIResult.objects.filter(run_id=run_id).values_list(
        "kpi_code", "site_id", "numerator", "denominator", "overlap", "respondents", "invited"
    )
    return {
        (code, site): tuple(v if v is not None else -1 for v in rest) for code, site, *rest in rows
    }


def expected_results(counts: Counts) -> dict[tuple[str, int | None], tuple[int, ...]]:
    scopes: dict[int | None, dict[str, int]] = {site: c for site, c in counts.items()}
    scopes[None] = {n: sum(c[n] for c in counts.values()) for n in COUNTS}
    return {
        (code, site): (
            c[numerator],
            c[denominator],
            c[overlap] if overlap else -1,
            c["respondents"],
            c["invited"],
        )
        for code, (numerator, denominator, overlap) in EXPECTED.items()
        for site, c in scopes.items()
    }


def compare(
    label: str, got: dict[tuple[str, int | None], tuple[int, ...]], want: dict
) -> list[str]:
    fields = ("numerator", "denominator", "overlap", "respondents", "invited")
    problems = []
    for key in sorted(set(got) | set(want), key=lambda k: (k[0], k[1] or 0)):
        if key not in got:
            problems.append(f"{label}: no engine result for {key}")
        elif key not in want:
            problems.append(f"{label}: unexpected engine result {key}")
        elif got[key] != want[key]:
            diff = ", ".join(
                f"{f} {g} != {w}"
                for f, g, w in zip(fields, got[key], want[key], strict=True)
                if g != w
            )
            problems.append(f"{label}: {key[0]} site {key[1] or 'overall'}: {diff}")
    return problems


def explain(study_id: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the engine's two counting queries."""
    from django.db import connection
    from django.db.models import Count, Q
    from django.utils import timezone

    from kpi.definitions.frozen import study_definitions
    from kpi.scoring.counting import count_sql, plan_for
    from surveys.answers import InstrumentForm
    from surveys.models import Instrument, Participant, Response

    plan = plan_for(study_definitions(study_id))
    instruments = Instrument.objects.filter(study_id=study_id).exclude(status="draft")
    forms = {i.pk: InstrumentForm.load(i) for i in instruments}
    cutoff = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + count_sql(forms, plan),
            [Response.Status.SUBMITTED, cutoff],
        )
        print("  EXPLAIN (ANALYZE, BUFFERS) of the engine's response query:")
        for (line,) in cursor.fetchall():
            print("    " + line)
    invited = (
        Participant.objects.filter(site__study_id=study_id, created_at__lte=cutoff)
        .filter(
            Q(status=Participant.Status.ACTIVE)
            | Q(response__status=Response.Status.SUBMITTED, response__submitted_at__lte=cutoff)
        )
        .values_list("site_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    print("  EXPLAIN (ANALYZE, BUFFERS) of the engine's invited query:")
    for line in invited.explain(analyze=True, buffers=True).splitlines():
        print("    " + line)


# --- One size ---------------------------------------------------------------------------


@dataclass
class Row:
    size: int
    build: float
    engine: Timed
    bits: Timed
    answers: Timed
    equal: bool
    breakdown: dict[str, float]


def run_size(size: int, rng: random.Random, *, want_explain: bool) -> tuple[Row, list[str]]:
    print(f"\n== {size:,} responses over {SITES} sites", flush=True)
    built = build(size, rng)
    print(
        f"  built in {built.seconds:.1f} s: {size:,} participants, {size:,} submitted "
        f"responses, {built.answers:,} answer rows ("
        + ", ".join(f"{name} {s:.1f} s" for name, s in built.phases.items())
        + ")",
        flush=True,
    )
    harness.idle_warning("measuring", "the timings below are inflated and noisy")
    call, profiles = engine_call(built.study_id)
    engine, runs = measure(call, memory=True)
    timed_profiles = profiles[1 : 1 + REPEATS]
    breakdown = {
        kind: statistics.median(p.get(kind, 0.0) for p in timed_profiles)
        for kind in ("response query", "invited query", "writing results", "other SQL", "Python")
    }
    bits_timed, bits_counts = measure(lambda: run_baseline(bits_sql(built), built))
    answers_timed, answers_counts = measure(lambda: run_baseline(answers_sql(built), built))

    problems: list[str] = []
    reference = bits_counts[-1]
    assert isinstance(reference, dict)
    if sum(c["respondents"] for c in reference.values()) != size:
        problems.append(f"baseline (a) does not count {size} respondents")
    for label, results in (("baseline (a)", bits_counts), ("baseline (b)", answers_counts)):
        for counts in results:
            assert isinstance(counts, dict)
            wrong = [site for site in reference if counts.get(site) != reference[site]]
            if wrong:
                problems.append(
                    f"{label} differs from baseline (a) at site {wrong[0]}: "
                    f"{counts.get(wrong[0])} != {reference[wrong[0]]}"
                )
                break
    want = expected_results(reference)  # type: ignore[arg-type]
    for run_id in runs:
        assert isinstance(run_id, int)
        problems += compare(f"run {run_id}", engine_results(run_id), want)
    equal = not problems
    print(
        f"  engine: cold {engine.cold:.3f} s, timed "
        + ", ".join(f"{s:.3f}" for s in engine.seconds)
        + f" s; tracemalloc peak {engine.peak_mb:.1f} MB; RSS + "
        + ", ".join(f"{m:.1f}" for m in engine.rss_mb)
        + f" MB (over {engine.rss_before_mb:.0f} MB before)"
    )
    print(
        "  inside the timed engine runs (medians): "
        + ", ".join(f"{kind} {s:.3f} s" for kind, s in breakdown.items())
        + f" (writing: {len(EXPECTED) * (SITES + 1)} KPIResult rows; Python: "
        "definitions, scoring and the ORM around the queries)"
    )
    print(
        "  baseline (a) bits: timed "
        + ", ".join(f"{s:.3f}" for s in bits_timed.seconds)
        + " s; baseline (b) answers: timed "
        + ", ".join(f"{s:.3f}" for s in answers_timed.seconds)
        + " s"
    )
    checked = len(runs) * len(EXPECTED) * (SITES + 1)
    print(
        f"  counts: {'equal' if equal else 'MISMATCH'} ({len(runs)} engine runs x "
        f"{len(EXPECTED)} KPIs x {SITES} sites + overall = {checked} results, each against "
        "baselines (a) and (b))"
    )
    for problem in problems[:20]:
        print("    " + problem)
    if want_explain or (size == TARGET_SIZE and engine.median >= TARGET_SECONDS):
        explain(built.study_id)
    return Row(size, built.seconds, engine, bits_timed, answers_timed, equal, breakdown), problems


# --- Report -----------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = [
        "size",
        "build s",
        "engine median s (min)",
        "engine peak MB",
        "RSS +MB",
        "bits s",
        "engine/bits",
        "answers s",
        "engine/answers",
        "counts equal",
    ]
    table = [header]
    for r in rows:
        table.append(
            [
                f"{r.size:,}",
                f"{r.build:.1f}",
                f"{r.engine.median:.3f} ({r.engine.best:.3f})",
                f"{r.engine.peak_mb:.1f}",
                f"{max(r.engine.rss_mb):.1f}" if r.engine.rss_mb else "n/a",
                f"{r.bits.median:.3f}",
                harness.ratio(r.engine.median, r.bits.median),
                f"{r.answers.median:.3f}",
                harness.ratio(r.engine.median, r.answers.median),
                "yes" if r.equal else "NO",
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print("\n== results (engine peak MB: tracemalloc; RSS +MB: peak resident set increase)")
    for n, line in enumerate(table):
        print("  " + " | ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_targets(rows: list[Row]) -> None:
    print("\n== targets")
    largest = max(rows, key=lambda r: r.size)
    at_target = next((r for r in rows if r.size == TARGET_SIZE), None)
    if at_target is None:
        print(f"  under {TARGET_SECONDS:g} s at {TARGET_SIZE:,}: not measured (size not run)")
    else:
        s = at_target.engine.median
        print(
            f"  under {TARGET_SECONDS:g} s at {TARGET_SIZE:,}: "
            f"{verdict(s < TARGET_SECONDS)} (median {s:.3f} s, min {at_target.engine.best:.3f} s)"
        )
    ratio = largest.engine.median / largest.bits.median
    print(
        f"  within {TARGET_RATIO:g}x of the hand-written SQL at {largest.size:,}: "
        f"{verdict(ratio <= TARGET_RATIO)} (engine {largest.engine.median:.3f} s / "
        f"bits SQL {largest.bits.median:.3f} s = "
        f"{harness.ratio(largest.engine.median, largest.bits.median)}; over the answer rows: "
        f"{harness.ratio(largest.engine.median, largest.answers.median)}; other sizes: "
        + ", ".join(f"{r.size:,} {harness.ratio(r.engine.median, r.bits.median)}" for r in rows)
        + ")"
    )
    peaks = [
        (r.size, r.engine.peak_mb, max(r.engine.rss_mb) if r.engine.rss_mb else 0.0) for r in rows
    ]
    memory_ok = all(p < TARGET_MB and rss < TARGET_MB for _, p, rss in peaks)
    print(
        f"  memory under {TARGET_MB:g} MB at every size: {verdict(memory_ok)} ("
        + ", ".join(f"{n:,}: tracemalloc {p:.1f} MB, RSS +{rss:.1f} MB" for n, p, rss in peaks)
        + ")"
    )
    per = [(r.size, r.engine.median / (r.size / 100_000)) for r in rows]
    linear = all(b <= a * LINEAR_SLACK for (_, a), (_, b) in itertools.pairwise(per))
    print(
        f"  growth at most linear (s per 100k responses never up more than "
        f"{LINEAR_SLACK:g}x from one size to the next): {verdict(linear)} ("
        + ", ".join(f"{n:,}: {s:.4f} s" for n, s in per)
        + "; memory: "
        + ", ".join(f"{n:,}: {p:.1f} MB" for n, p, _ in peaks)
        + ")"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=DEFAULT_SIZES,
        help="responses per study, e.g. --sizes 10000; default %(default)s",
    )
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the engine's queries at every size "
        f"(done anyway at {TARGET_SIZE:,} when the time target is missed)",
    )
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sizes):
        parser.error("sizes must be positive")
    sizes = sorted(set(args.sizes))

    started = time.perf_counter()
    harness.recreate_database(DB_NAME)
    harness.setup_django(harness.embedded_environment(harness.database_url(DB_NAME)))
    harness.migrate()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
        cursor.execute("SHOW max_parallel_workers_per_gather")
        (workers,) = cursor.fetchone()
        cursor.execute("SHOW jit")
        (jit,) = cursor.fetchone()
    print(
        f"PostgreSQL: {version.split(' on ')[0]}; max_parallel_workers_per_gather {workers}; "
        f"jit {jit}; {os.cpu_count()} cores; database {DB_NAME}"
    )
    rng = random.Random(args.seed)
    rows, problems = [], []
    try:
        for size in sizes:
            row, found = run_size(size, rng, want_explain=args.explain)
            rows.append(row)
            problems += found
        print_table(rows)
        print_targets(rows)
    finally:
        if args.keep:
            print(f"\nkept the database {DB_NAME}")
        else:
            harness.drop_database(DB_NAME)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if problems:
        print(f"FAILED: {len(problems)} count mismatches")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
