"""Response exports on PostgreSQL: time, size and memory of each format.

    .venv/bin/python bench/export.py [--sizes 100000] [--keep]

(Re)creates the PostgreSQL database ``hyoka_bench_export`` on 127.0.0.1, builds N
submitted responses to the reference questionnaire over 50 sites with ``bench/studydata.py``'s
``build()`` (choice bits and answer rows), then writes each format as the export task does
(``surveys/exports/services.WRITERS`` over the responses a superuser sees) to a
temporary file: seconds, rows, bytes, and the peak resident set above the one before the
export (VmHWM, reset before each). The baseline, measured in the same run: one ``COPY``
of the exported columns of ``surveys_response`` to nowhere (what PostgreSQL alone costs).
Targets (issue 15, at 1,000,000 responses): CSV under 60 s, ``.sav`` under 2 minutes,
memory bounded.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/x.py`` puts bench/ first
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402

DB_NAME = "hyoka_bench_export"
FORMATS = ("csv", "xlsx", "sav", "dta")


def baseline_copy() -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        sql = (
            "COPY (SELECT r.id, r.site_id, p.reference, r.instrument_id, r.status, r.source, "
            "r.language, r.started_at, r.submitted_at, r.choice_bits FROM surveys_response r "
            "JOIN surveys_participant p ON p.id = r.participant_id) TO STDOUT"
        )
        with cursor.cursor.copy(sql) as copy:
            for _block in copy:
                pass
    return time.perf_counter() - started


def run_format(format: str, folder: Path) -> tuple[float, int, int, float]:
    from django.contrib.auth.models import User

    from surveys.exports.reading import Reader
    from surveys.exports.records import WRITERS
    from surveys.models import Response

    user = User.objects.get(username="bench-export")
    from surveys import scoping

    before = (harness.status_kb("VmRSS") or 0) / 1024
    harness.reset_peak_rss()
    started = time.perf_counter()
    reader = Reader(scoping.responses(user, Response.objects.all()), language="ja")
    path = folder / f"export.{format}"
    rows = WRITERS[format](reader, path)
    seconds = time.perf_counter() - started
    peak = (harness.status_kb("VmHWM") or 0) / 1024
    return seconds, rows, path.stat().st_size, peak - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    harness.recreate_database(DB_NAME)
    harness.setup_django(harness.embedded_environment(harness.database_url(DB_NAME)))
    harness.migrate()
    from django.contrib.auth.models import User

    from bench import studydata

    User.objects.create_superuser("bench-export", password=None)
    rng = random.Random(args.seed)
    table = []
    try:
        for size in sorted(set(args.sizes)):
            built = studydata.build(size, rng)
            print(f"== {size:,} responses built in {built.seconds:.1f} s", flush=True)
            harness.idle_warning("measuring", "the timings below are inflated and noisy")
            base = baseline_copy()
            print(f"  baseline COPY of the response columns: {base:.2f} s", flush=True)
            with tempfile.TemporaryDirectory() as folder:
                for format in args.formats:
                    seconds, rows, size_bytes, rss = run_format(format, Path(folder))
                    assert rows == size, (format, rows, size)
                    table.append((size, format, seconds, rows, size_bytes, rss, base))
                    print(
                        f"  {format:5} {seconds:7.1f} s  {rows:,} rows  "
                        f"{size_bytes / 1e6:7.1f} MB  peak RSS +{rss:.0f} MB  "
                        f"({harness.ratio(seconds, base)} the COPY)",
                        flush=True,
                    )
    finally:
        if not args.keep:
            harness.drop_database(DB_NAME)
    print("\n| responses | format | seconds | rows/s | MB | peak RSS + MB | x COPY |")
    print("|---|---|---|---|---|---|---|")
    for size, format, seconds, rows, size_bytes, rss, base in table:
        print(
            f"| {size:,} | {format} | {seconds:.1f} | {rows / seconds:,.0f} | "
            f"{size_bytes / 1e6:.1f} | {rss:.0f} | {harness.ratio(seconds, base)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
