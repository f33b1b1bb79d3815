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
4. Times three hand-written baselines the same way (without tracemalloc), each ONE SQL
   statement that also counts the invited participants per site in a CTE: (a) over
   ``surveys_response.choice_bits`` with bit masks taken from the instrument; (b) over the
   normalized ``surveys_answer`` rows, grouped by response and then by site, without the
   bits; (c) the same counting as (a) over a two-column copy (site, choice bits) of the
   submitted responses, a temporary table made (untimed) just before: one scan of nothing
   but what the counts need, the floor the engine is compared with. It prints EXPLAIN
   (ANALYZE, BUFFERS) of the engine's two counting queries when 1,000,000 responses miss
   the time target (or with ``--explain``).
5. Checks that every KPIResult of every engine run (numerator, denominator, overlap,
   respondents and invited, per KPI, per site and overall) equals the baselines' counts;
   exits 1 on any mismatch. Targets that are missed are reported as FAIL, not as an exit
   status (as bench/submit.py does).

Targets: 1,000,000 responses scored in under 1 s, within 2x of the one scan over the
two-column copy (baseline c; issue 15), peak memory under 200 MB, time growing at most
linearly with size. The ratio to (a) is printed beside it.
"""

from __future__ import annotations

import argparse
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
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/score.py`` puts bench/ first, not the project
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402
from bench.studydata import SITES, Built, build  # noqa: E402

DB_NAME = "hyoka_bench_score"
DEFAULT_SIZES = [10_000, 100_000, 1_000_000]
REPEATS = 3

TARGET_SIZE = 1_000_000
TARGET_SECONDS = 1.0
TARGET_RATIO = 2.0
TARGET_MB = 200.0
LINEAR_SLACK = 1.25  # seconds per response may grow by this factor from one size to the next


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


Counts = dict[int, dict[str, int]]  # site id -> count name -> value


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


def bits_sql(built: Built, *, source: str = "") -> str:
    """(a) One statement over the per-response bits; with ``source``, (c) the same
    counting over that two-column copy of the submitted responses (see ``make_copy``)."""
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
        + (
            f"    FROM {source}\n"
            if source
            else "    FROM surveys_response\n"
            "    WHERE instrument_id = %(instrument)s AND status = 'submitted'\n"
            "      AND submitted_at <= %(cutoff)s\n"
        )
        + "    GROUP BY site_id\n"
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


COPY_TABLE = "bench_site_bits"


def make_copy(built: Built) -> None:
    """(c)'s data: a two-column copy (site, choice bits) of the submitted responses, as a
    temporary table of this connection, analysed. Made before any clock starts: the
    baseline is the one scan over it, the least any counting of these bits can cost."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        cursor.execute(
            f"CREATE TEMP TABLE {COPY_TABLE} AS SELECT site_id, choice_bits "
            "FROM surveys_response WHERE instrument_id = %(instrument)s "
            "AND status = 'submitted' AND submitted_at <= %(cutoff)s",
            _params(built),
        )
        cursor.execute(f"ANALYZE {COPY_TABLE}")


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
    copy: Timed
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
    make_copy(built)
    copy_timed, copy_counts = measure(
        lambda: run_baseline(bits_sql(built, source=COPY_TABLE), built)
    )

    problems: list[str] = []
    reference = bits_counts[-1]
    assert isinstance(reference, dict)
    if sum(c["respondents"] for c in reference.values()) != size:
        problems.append(f"baseline (a) does not count {size} respondents")
    for label, results in (
        ("baseline (a)", bits_counts),
        ("baseline (b)", answers_counts),
        ("baseline (c)", copy_counts),
    ):
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
        + " s; baseline (c) two-column copy: timed "
        + ", ".join(f"{s:.3f}" for s in copy_timed.seconds)
        + " s"
    )
    checked = len(runs) * len(EXPECTED) * (SITES + 1)
    print(
        f"  counts: {'equal' if equal else 'MISMATCH'} ({len(runs)} engine runs x "
        f"{len(EXPECTED)} KPIs x {SITES} sites + overall = {checked} results, each against "
        "baselines (a), (b) and (c))"
    )
    for problem in problems[:20]:
        print("    " + problem)
    if want_explain or (size == TARGET_SIZE and engine.median >= TARGET_SECONDS):
        explain(built.study_id)
    row = Row(size, built.seconds, engine, bits_timed, answers_timed, copy_timed, equal, breakdown)
    return row, problems


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
        "copy s",
        "engine/copy",
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
                f"{r.copy.median:.3f}",
                harness.ratio(r.engine.median, r.copy.median),
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
    ratio = largest.engine.median / largest.copy.median
    print(
        f"  within {TARGET_RATIO:g}x of one scan over the two-column copy (c) at "
        f"{largest.size:,}: {verdict(ratio <= TARGET_RATIO)} (engine "
        f"{largest.engine.median:.3f} s / copy SQL {largest.copy.median:.3f} s = "
        f"{harness.ratio(largest.engine.median, largest.copy.median)}; other sizes: "
        + ", ".join(f"{r.size:,} {harness.ratio(r.engine.median, r.copy.median)}" for r in rows)
        + ")"
    )
    print(
        f"  beside the hand-written SQL over the response table (a) at {largest.size:,}: "
        f"engine {largest.engine.median:.3f} s / bits SQL {largest.bits.median:.3f} s = "
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
