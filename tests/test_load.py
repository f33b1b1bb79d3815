"""A short, bounded run of the load benchmark (``bench/submit.py``) as CI's load test.

Real processes: gunicorn in production mode on PostgreSQL, the bench's own HTTP clients.
Participants open their links, then submit at once through the web form and the API,
with double taps (the same participant twice in parallel) and API retries with the same
Idempotency-Key. The bench itself checks the database afterwards; this test holds it to
its verdict: every accepted submission stored exactly once, nothing else stored, every
double tap answered 303 + 409, every retry 201 + 200 (replayed), no 5xx, no client error.
Throughput is printed, never asserted (make bench reports it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
@pytest.mark.processes
def test_a_short_load_run_loses_nothing_duplicates_nothing_and_never_answers_5xx() -> None:
    # A database named after this run's test database (TEST_DATABASE_NAME, the xdist
    # worker), so that two suites running at once never recreate each other's.
    database = f"{settings.DATABASES['default']['TEST']['NAME']}_load"
    command = [sys.executable, "bench/submit.py", "--database", database]
    # 400 measured participants after 100 of warm-up, 24 clients at once: about 25 double
    # taps, 35 API retries and 75 API submissions racing the form's, enough to catch a lost,
    # duplicated or wrongly answered one (900 took twice the time and proved no more).
    command += ["--participants", "500", "--warmup", "100", "--concurrency", "24"]
    command += ["--double-share", "0.05", "--api-share", "0.15", "--retry-share", "0.5"]
    command += ["--duration", "120"]
    run = subprocess.run(
        command,
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = run.stdout + run.stderr
    print(output)  # the figures, in the test log
    assert run.returncode == 0, output
    assert "0 lost, 0 duplicated" in output
    assert "5xx: 0" in output
    assert "answered other than 303 + 409: 0" in output
    assert "answered other than 201 + 200: 0" in output
    assert "client errors" not in output
