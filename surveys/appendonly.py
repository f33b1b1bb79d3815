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

One narrow way past them, for the erasure of personal data (``surveys/erasure.py``): a
table may name **redactions**, personal columns each with the one condition its new value
must meet (``reference`` becomes ``'erased-' || id``, ``text_value`` becomes ``''``). An
UPDATE then passes only if it changes at least one of those columns, each to its redacted
value, and leaves every other column as it was; any other UPDATE, every DELETE (and
TRUNCATE) is refused as before. The same ``WHEN`` condition guards the trigger on both
databases (on PostgreSQL the row trigger is split: ``BEFORE DELETE``, and ``BEFORE
UPDATE … WHEN (NOT redaction)``). The other columns are those of the table when the
triggers are installed: a migration that adds a column to such a table runs
``operation(...)`` again with the same redactions (a test checks that every column is
guarded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import migrations

MARK = "__append_only_"  # in every trigger name, so that they can be found
# In the names of other triggers that refuse writes (kpi/registration/lock.py): a test
# database's wipe (``flush_sql``) steps past them too.
GUARD_MARK = "__guard_"
PG_ROW_TRIGGER = "history_append_only_rows"
PG_TRUNCATE_TRIGGER = "history_append_only_truncate"
# On a table with redactions, the row trigger refuses DELETE and this one UPDATE.
PG_UPDATE_TRIGGER = "history_append_only_updates"

# table -> {personal column: SQL condition its NEW value must meet}
Redactions = Mapping[str, Mapping[str, str]]


def _columns(connection: Any, table: str) -> list[str]:
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def redaction_condition(vendor: str, columns: Sequence[str], redacted: Mapping[str, str]) -> str:
    """True for an UPDATE that only redacts: every column outside ``redacted`` unchanged,
    each redacted column unchanged or meeting its condition, at least one changed."""
    same = "IS NOT DISTINCT FROM" if vendor == "postgresql" else "IS"
    differs = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    kept = [f'NEW."{c}" {same} OLD."{c}"' for c in columns if c not in redacted]
    each = [f'(NEW."{c}" {same} OLD."{c}" OR ({cond}))' for c, cond in redacted.items()]
    changed = " OR ".join(f'NEW."{c}" {differs} OLD."{c}"' for c in redacted)
    return " AND ".join([*kept, *each, f"({changed})"])


def _pg_function(app_label: str) -> str:
    return f"{app_label}_history_append_only"


def install_sql(
    vendor: str,
    app_label: str,
    tables: Sequence[str],
    redactions: Redactions | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The statements that make ``tables`` append-only; a table in ``redactions`` (whose
    ``columns`` are given) lets erasure redact its personal columns."""
    redactions = redactions or {}
    columns = columns or {}

    def only_redacting(table: str) -> str:
        return redaction_condition(vendor, columns[table], redactions[table])

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
                f'DROP TRIGGER IF EXISTS {PG_UPDATE_TRIGGER} ON "{table}"',
            ]
            if table in redactions:
                statements += [
                    f'CREATE TRIGGER {PG_ROW_TRIGGER} BEFORE DELETE ON "{table}" '
                    f"FOR EACH ROW EXECUTE FUNCTION {function}()",
                    f'CREATE TRIGGER {PG_UPDATE_TRIGGER} BEFORE UPDATE ON "{table}" '
                    f"FOR EACH ROW WHEN (NOT ({only_redacting(table)})) "
                    f"EXECUTE FUNCTION {function}()",
                ]
            else:
                statements.append(
                    f'CREATE TRIGGER {PG_ROW_TRIGGER} BEFORE UPDATE OR DELETE ON "{table}" '
                    f"FOR EACH ROW EXECUTE FUNCTION {function}()"
                )
            statements += [
                f'DROP TRIGGER IF EXISTS {PG_TRUNCATE_TRIGGER} ON "{table}"',
                f'CREATE TRIGGER {PG_TRUNCATE_TRIGGER} BEFORE TRUNCATE ON "{table}" '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            ]
        return statements
    if vendor == "sqlite":
        statements = []
        for table in tables:
            for op in ("UPDATE", "DELETE"):
                name = f"{table}{MARK}{op.lower()}"
                when = ""
                if op == "UPDATE" and table in redactions:
                    # Replaced, not kept: the one before may have had no redactions.
                    statements.append(f'DROP TRIGGER IF EXISTS "{name}"')
                    when = f"WHEN NOT ({only_redacting(table)}) "
                statements.append(
                    f'CREATE TRIGGER IF NOT EXISTS "{name}" BEFORE {op} ON "{table}" '
                    f"FOR EACH ROW {when}BEGIN "
                    f"SELECT RAISE(ABORT, 'history is append-only: {op} on {table} refused'); END"
                )
        return statements
    return []  # another database: no triggers (the project supports these two)


def uninstall_sql(vendor: str, app_label: str, tables: Sequence[str]) -> list[str]:
    if vendor == "postgresql":
        statements = [
            f'DROP TRIGGER IF EXISTS {name} ON "{table}"'
            for table in tables
            for name in (PG_ROW_TRIGGER, PG_UPDATE_TRIGGER, PG_TRUNCATE_TRIGGER)
        ]
        # The function goes with the app's last trigger (another migration's tables may
        # still call it). Its name is the app's label, not input.
        function = _pg_function(app_label)
        drop_function = (
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p "  # noqa: S608
            f"ON p.oid = t.tgfoid WHERE p.proname = '{function}') "
            f"THEN DROP FUNCTION IF EXISTS {function}(); END IF; END $$"
        )
        return [*statements, drop_function]
    if vendor == "sqlite":
        return [
            f'DROP TRIGGER IF EXISTS "{table}{MARK}{op}"'
            for table in tables
            for op in ("update", "delete")
        ]
    return []


def _install(schema_editor: Any, app_label: str, tables: Sequence[str], redactions: Any) -> None:
    connection = schema_editor.connection
    columns = {table: _columns(connection, table) for table in redactions or {}}
    for sql in install_sql(connection.vendor, app_label, tables, redactions, columns):
        schema_editor.execute(sql, params=None)


def operation(
    app_label: str, tables: Sequence[str], redactions: Redactions | None = None
) -> migrations.RunPython:
    """A migration operation that makes ``tables`` append-only (and, reversed, not), the
    tables in ``redactions`` open to erasure's redacting UPDATE only."""
    tables = list(tables)

    def forwards(apps: Any, schema_editor: Any) -> None:
        _install(schema_editor, app_label, tables, redactions)

    def backwards(apps: Any, schema_editor: Any) -> None:
        for sql in uninstall_sql(schema_editor.connection.vendor, app_label, tables):
            schema_editor.execute(sql, params=None)

    return migrations.RunPython(forwards, backwards, elidable=False)


def redaction_operation(app_label: str, redactions: Redactions) -> migrations.RunPython:
    """A migration operation that opens the already append-only tables of ``redactions``
    to erasure's redacting UPDATE; reversed, they refuse every UPDATE again."""
    tables = list(redactions)

    def forwards(apps: Any, schema_editor: Any) -> None:
        _install(schema_editor, app_label, tables, redactions)

    def backwards(apps: Any, schema_editor: Any) -> None:
        vendor = schema_editor.connection.vendor
        # On SQLite, "IF NOT EXISTS" would keep the redacting trigger: drop it first.
        drop = [s for s in uninstall_sql(vendor, app_label, tables) if s.startswith("DROP TRIGGER")]
        for sql in [*drop, *install_sql(vendor, app_label, tables)]:
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
                   WHERE t.tgname IN (%s, %s, %s) AND t.tgenabled <> 'D'""",
                [PG_ROW_TRIGGER, PG_UPDATE_TRIGGER, PG_TRUNCATE_TRIGGER],
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
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND (name GLOB %s OR name GLOB %s)",
                [f"*{MARK}*", f"*{GUARD_MARK}*"],
            )
            triggers = cursor.fetchall()
        return [f'DROP TRIGGER "{name}"' for name, _sql in triggers], [sql for _n, sql in triggers]
    return [], []
