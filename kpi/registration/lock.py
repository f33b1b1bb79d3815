"""The lock a registration puts on what it registered, in the services and in the database.

Once a study's specification is registered, its KPIs, segments, their conditions (and the
conditions' ticked choices), and the questions and choices of the registered
questionnaire version are locked: every INSERT, UPDATE and DELETE touching them is
refused, by ``ensure_unlocked`` (which the definition services call first, for a message
in the user's language) and by database triggers (for everything else: raw SQL, a shell,
a forgotten code path).

How a deviation gets through: ``kpi.registration.services`` first writes the ``Deviation``
row (append-only: what, old, new, reason, who, when), then, in the same transaction, a
``DeviationWindow`` row naming the one locked row it changes (``locked_table``,
``row_id``; a segment's window also opens its conditions and their choices), makes the
change, and deletes the window before the transaction commits (``deviation_window``). The
triggers let a change through only while such a window exists for its row. Another
transaction never sees the window: it is uncommitted for as long as it exists (PostgreSQL
reads committed rows only; SQLite has one writer at a time). Adding a KPI or a segment to
a registered study, and any change to the registered questionnaire, have no window: they
are refused outright.

The triggers (``install_sql``):

- SQLite: per table and operation, ``BEFORE INSERT|UPDATE|DELETE … WHEN <locked>
  BEGIN SELECT RAISE(ABORT, …) END``;
- PostgreSQL: per table, a PL/pgSQL function (PostgreSQL's ``WHEN`` takes no
  subqueries) raising ``restrict_violation``, called ``BEFORE INSERT OR UPDATE OR DELETE``.

Their names carry ``appendonly.GUARD_MARK``, so that a test database's wipe steps past
them as it steps past the append-only triggers. Django's SQLite backend rebuilds a table
for some ``ALTER``s without its triggers: a migration that alters a locked table must run
``operation()`` again (``tests/kpi/registration`` checks that every locked table has them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, migrations, transaction

from surveys.appendonly import GUARD_MARK

from .errors import SpecificationLocked
from .models import Deviation, DeviationWindow, Registration

PREFIX = f"{GUARD_MARK}registered_"
MESSAGE = "registered KPI specification is locked"

_BY_STUDY = "EXISTS (SELECT 1 FROM kpi_registration r WHERE r.study_id = {row}.study_id)"
_BY_SEGMENT = (
    "EXISTS (SELECT 1 FROM kpi_registration r JOIN kpi_segment s ON s.study_id = r.study_id "
    "WHERE s.id = {row}.segment_id)"
)
_BY_CLAUSE = (
    "EXISTS (SELECT 1 FROM kpi_registration r JOIN kpi_segment s ON s.study_id = r.study_id "
    "JOIN kpi_clause c ON c.segment_id = s.id WHERE c.id = {row}.clause_id)"
)
_BY_INSTRUMENT = (
    "EXISTS (SELECT 1 FROM kpi_registration r WHERE r.instrument_id = {row}.instrument_id)"
)
_BY_QUESTION = (
    "EXISTS (SELECT 1 FROM kpi_registration r JOIN surveys_question q "
    "ON q.instrument_id = r.instrument_id WHERE q.id = {row}.question_id)"
)


def _window(table: str, row_id: str) -> str:
    # The table names are this module's constants, never input.
    return (
        "EXISTS (SELECT 1 FROM kpi_deviationwindow w "  # noqa: S608
        f"WHERE w.locked_table = '{table}' AND w.row_id = {row_id})"
    )


#: table -> (is the row registered?, is a deviation's window open for it?), with ``{row}``
#: standing for OLD or NEW.
LOCKED: dict[str, tuple[str, str]] = {
    "kpi_kpi": (_BY_STUDY, _window("kpi_kpi", "{row}.id")),
    "kpi_segment": (_BY_STUDY, _window("kpi_segment", "{row}.id")),
    "kpi_clause": (_BY_SEGMENT, _window("kpi_segment", "{row}.segment_id")),
    "kpi_clause_choices": (
        _BY_CLAUSE,
        _window(
            "kpi_segment", "(SELECT c.segment_id FROM kpi_clause c WHERE c.id = {row}.clause_id)"
        ),
    ),
    "surveys_question": (_BY_INSTRUMENT, "FALSE"),
    "surveys_choice": (_BY_QUESTION, "FALSE"),
}


def _locked(table: str, row: str) -> str:
    registered, window = LOCKED[table]
    return f"({registered.format(row=row)} AND NOT {window.format(row=row)})"


def install_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    for table in LOCKED:
        if vendor == "sqlite":
            for op, rows in (("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])):
                name = f"{table}{PREFIX}{op.lower()}"
                when = " OR ".join(_locked(table, row) for row in rows)
                statements += [
                    f'DROP TRIGGER IF EXISTS "{name}"',
                    f'CREATE TRIGGER "{name}" BEFORE {op} ON "{table}" FOR EACH ROW '
                    f"WHEN {when} BEGIN "
                    f"SELECT RAISE(ABORT, '{MESSAGE}: {op} on {table} refused'); END",
                ]
        elif vendor == "postgresql":
            function, name = f"{table}_registered_lock", f"{table}{PREFIX}rows"
            statements += [
                f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP <> 'INSERT' AND {_locked(table, "OLD")})
       OR (TG_OP <> 'DELETE' AND {_locked(table, "NEW")}) THEN
        RAISE EXCEPTION '{MESSAGE}: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Record a deviation to change a registered specification.';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$""",
                f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"',
                f'CREATE TRIGGER "{name}" BEFORE INSERT OR UPDATE OR DELETE ON "{table}" '
                f"FOR EACH ROW EXECUTE FUNCTION {function}()",
            ]
    return statements


def uninstall_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    for table in LOCKED:
        if vendor == "sqlite":
            statements += [
                f'DROP TRIGGER IF EXISTS "{table}{PREFIX}{op}"'
                for op in ("insert", "update", "delete")
            ]
        elif vendor == "postgresql":
            statements += [
                f'DROP TRIGGER IF EXISTS "{table}{PREFIX}rows" ON "{table}"',
                f"DROP FUNCTION IF EXISTS {table}_registered_lock()",
            ]
    return statements


def operation() -> migrations.RunPython:
    """A migration operation that installs the lock's triggers (reversed: removes them)."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        for sql in install_sql(schema_editor.connection.vendor):
            schema_editor.execute(sql, params=None)

    def backwards(apps: Any, schema_editor: Any) -> None:
        for sql in uninstall_sql(schema_editor.connection.vendor):
            schema_editor.execute(sql, params=None)

    return migrations.RunPython(forwards, backwards, elidable=False)


def installed_tables() -> set[str]:
    """The tables that carry the lock's triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname LIKE %s AND t.tgenabled <> 'D'",
                [f"%{PREFIX}rows"],
            )
        else:
            cursor.execute(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name GLOB %s",
                [f"*{PREFIX}*"],
            )
        return {table for (table,) in cursor.fetchall()}


# --- the services' side ----------------------------------------------------------------


def is_registered(study_id: int) -> bool:
    return Registration.objects.filter(study_id=study_id).exists()


def ensure_unlocked(*, study_id: int, table: str, row_id: int | None) -> None:
    """Raise ``SpecificationLocked`` if the study is registered and no deviation's window
    is open for this row (``row_id`` None: a new row, which no window opens)."""
    if not is_registered(study_id):
        return
    if (
        row_id is not None
        and DeviationWindow.objects.filter(locked_table=table, row_id=row_id).exists()
    ):
        return
    raise SpecificationLocked()


@contextmanager
def deviation_window(deviation: Deviation, table: str, row_id: int) -> Iterator[None]:
    """Open the lock for one row while the block runs, inside the deviation's transaction;
    the window is gone when the block ends (deleted, or rolled back with the error)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a deviation's window opens only inside its transaction")
    with transaction.atomic():  # an error inside rolls the window back with the change
        window = DeviationWindow.objects.create(
            deviation=deviation,
            study_id=deviation.registration.study_id,
            locked_table=table,
            row_id=row_id,
        )
        yield
        DeviationWindow.objects.filter(pk=window.pk).delete()
