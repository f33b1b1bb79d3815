"""Append-only tables: database triggers that refuse to change or remove history rows.

The historical tables (``surveys/history.py``) take INSERT and SELECT; any UPDATE or
DELETE (and on PostgreSQL a TRUNCATE) fails in the database, whether it comes from the
ORM, raw SQL or a shell. Migrations install the triggers with ``operation(...)``:

- PostgreSQL: one PL/pgSQL function per app that raises ``restrict_violation``, called by
  a row trigger ``BEFORE UPDATE OR DELETE`` and a statement trigger ``BEFORE TRUNCATE``
  on each table. Only a role that may set ``session_replication_role`` (a superuser: a
  restore with ``pg_restore --disable-triggers``) or the tables' owner (``ALTER TABLE …
  DISABLE TRIGGER``) can get past them; production runs the application as a role that
  is neither (docs/security.md).
- SQLite: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers that ``RAISE(ABORT, …)``.
  Whoever can write the file can drop them; on SQLite they guard against the
  application's own code, not against its owner. Django's SQLite backend rebuilds a
  table for some ``ALTER``s and the rebuilt table has no triggers: a migration that
  alters a historical table must run ``operation(...)`` again (it is idempotent), and
  ``tests/test_audit_appendonly.py`` checks that every historical table has its triggers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import migrations

MARK = "__append_only_"  # in every trigger name, so that they can be found
PG_ROW_TRIGGER = "history_append_only_rows"
PG_TRUNCATE_TRIGGER = "history_append_only_truncate"


def _pg_function(app_label: str) -> str:
    return f"{app_label}_history_append_only"


def install_sql(vendor: str, app_label: str, tables: Sequence[str]) -> list[str]:
    if vendor == "postgresql":
        function = _pg_function(app_label)
        statements = [
            f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'History rows are never changed or removed; record a new change.';
END;
$$"""
        ]
        for table in tables:
            statements += [
                f'DROP TRIGGER IF EXISTS {PG_ROW_TRIGGER} ON "{table}"',
                f'CREATE TRIGGER {PG_ROW_TRIGGER} BEFORE UPDATE OR DELETE ON "{table}" '
                f"FOR EACH ROW EXECUTE FUNCTION {function}()",
                f'DROP TRIGGER IF EXISTS {PG_TRUNCATE_TRIGGER} ON "{table}"',
                f'CREATE TRIGGER {PG_TRUNCATE_TRIGGER} BEFORE TRUNCATE ON "{table}" '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            ]
        return statements
    if vendor == "sqlite":
        return [
            f'CREATE TRIGGER IF NOT EXISTS "{table}{MARK}{op.lower()}" BEFORE {op} ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'history is append-only: {op} on {table} refused'); END"
            for table in tables
            for op in ("UPDATE", "DELETE")
        ]
    return []  # another database: no triggers (the project supports these two)


def uninstall_sql(vendor: str, app_label: str, tables: Sequence[str]) -> list[str]:
    if vendor == "postgresql":
        statements = [
            f'DROP TRIGGER IF EXISTS {name} ON "{table}"'
            for table in tables
            for name in (PG_ROW_TRIGGER, PG_TRUNCATE_TRIGGER)
        ]
        return [*statements, f"DROP FUNCTION IF EXISTS {_pg_function(app_label)}()"]
    if vendor == "sqlite":
        return [
            f'DROP TRIGGER IF EXISTS "{table}{MARK}{op}"'
            for table in tables
            for op in ("update", "delete")
        ]
    return []


def operation(app_label: str, tables: Sequence[str]) -> migrations.RunPython:
    """A migration operation that makes ``tables`` append-only (and, reversed, not)."""
    tables = list(tables)

    def forwards(apps: Any, schema_editor: Any) -> None:
        for sql in install_sql(schema_editor.connection.vendor, app_label, tables):
            schema_editor.execute(sql, params=None)

    def backwards(apps: Any, schema_editor: Any) -> None:
        for sql in uninstall_sql(schema_editor.connection.vendor, app_label, tables):
            schema_editor.execute(sql, params=None)

    return migrations.RunPython(forwards, backwards, elidable=False)


def installed_tables(connection: Any) -> dict[str, set[str]]:
    """Each table with append-only triggers, and which operations they refuse."""
    found: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """SELECT c.relname, t.tgtype FROM pg_trigger t
                   JOIN pg_class c ON c.oid = t.tgrelid
                   WHERE t.tgname IN (%s, %s) AND t.tgenabled <> 'D'""",
                [PG_ROW_TRIGGER, PG_TRUNCATE_TRIGGER],
            )
            # tgtype bits: 8 DELETE, 16 UPDATE, 32 TRUNCATE (and 2 BEFORE).
            for table, tgtype in cursor.fetchall():
                ops = found.setdefault(table, set())
                ops.update(
                    op
                    for bit, op in ((8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE"))
                    if tgtype & bit
                )
        elif connection.vendor == "sqlite":
            cursor.execute(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' AND name GLOB %s",
                [f"*{MARK}*"],
            )
            for table, name in cursor.fetchall():
                found.setdefault(table, set()).add(name.rsplit("_", 1)[-1].upper())
    return found


def flush_sql(connection: Any) -> tuple[list[str], list[str]]:
    """Statements to run before and after wiping every table (a test database between
    transactional tests): PostgreSQL skips the triggers for the transaction (as a restore
    does, which takes a superuser); SQLite drops them and creates them again as they were."""
    if connection.vendor == "postgresql":
        return (
            ["SET LOCAL session_replication_role = replica"],
            ["SET LOCAL session_replication_role = origin"],
        )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name GLOB %s",
                [f"*{MARK}*"],
            )
            triggers = cursor.fetchall()
        return [f'DROP TRIGGER "{name}"' for name, _sql in triggers], [sql for _n, sql in triggers]
    return [], []
