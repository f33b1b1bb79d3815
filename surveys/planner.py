"""Planner settings for a few statements, on PostgreSQL only.

The per-day counts of the fieldwork watch and the dashboard group a million rows by site
and Japanese day. Migration 0017 gives each an index holding the day itself, read in
(site, day) order by an index-only scan; but the planner prices the time-zone conversion
a sequential scan does per row at almost nothing, so it picks that scan (in parallel
where it can) or another index plus a hash of converted days. Measured at 1,000,000 rows
(bench/admin.py, EXPLAIN ANALYZE, a 2-core machine with a load of 6): about 0.2 s per
count from the day index, 0.4 to 1.0 s per count otherwise. ``index_scans()`` turns those
alternatives off for the statements inside it and restores the caller's settings after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

# No sequential scan, no hash of converted days, no parallel workers (on a busy machine
# they wait for a core; the index-only scan is faster alone).
INDEX_SCANS = {
    "enable_seqscan": "off",
    "enable_hashagg": "off",
    "max_parallel_workers_per_gather": "0",
}


@contextmanager
def index_scans() -> Iterator[None]:
    """The statements inside use the indexes of migration 0017 (see the module's doc)."""
    if connection.vendor != "postgresql":
        yield
        return
    names = list(INDEX_SCANS)
    with transaction.atomic(), connection.cursor() as cursor:
        # ``set_config(..., true)`` is SET LOCAL: it ends with the transaction, or with the
        # savepoint if this runs inside a caller's transaction, where the caller's values
        # are put back explicitly when the block ends well.
        cursor.execute(
            "SELECT " + ", ".join(["current_setting(%s)"] * len(names)),
            names,
        )
        before = dict(zip(names, cursor.fetchone(), strict=True))
        _set(cursor, INDEX_SCANS)
        yield
        _set(cursor, before)


def _set(cursor: object, values: dict[str, str]) -> None:
    params: list[str] = []
    for name, value in values.items():
        params += [name, value]
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)), params
    )
