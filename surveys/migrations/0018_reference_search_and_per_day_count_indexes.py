"""Two kinds of PostgreSQL index for the manager's pages at a million responses (issue 15,
bench/admin.py); nothing on SQLite (the embedded mode's small studies need neither).

- ``participant_reference_trgm``: a trigram index (``pg_trgm``) on
  ``UPPER(reference)``, what the admin's search (``icontains``) compares, so that
  searching the participant or response list for a reference reads the index instead
  of every participant in scope. ``pg_trgm`` is a trusted extension: a role that may
  create objects in the database may create it (``TrigramExtension`` is a no-op when it
  is there, and on SQLite).
- ``response_started_day``, ``response_submitted_day``, ``participant_active_day``: the
  site and the Japanese day (``settings.TIME_ZONE``, as ``TruncDate`` writes it) of
  each start, submission and registration, with the moment itself included, so that
  the per-day counts of the fieldwork watch and the dashboard are index-only scans in
  (site, day) order: no table read, and no time-zone conversion per row (which cost
  more than reading the rows). Should ``TIME_ZONE`` change, the counts stay right and
  only lose these indexes (the expression no longer matches); migrating again with a
  new zone means dropping and re-creating them.
"""

from django.conf import settings
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

TRIGRAM = (
    'CREATE INDEX IF NOT EXISTS "participant_reference_trgm" ON "surveys_participant" '
    'USING gin ((UPPER("reference"::text)) gin_trgm_ops)'
)


def day(column: str) -> str:
    """The expression of ``TruncDate(column, tzinfo=TIME_ZONE)`` on PostgreSQL."""
    zone = settings.TIME_ZONE.replace("'", "''")
    return f"""(("{column}" AT TIME ZONE '{zone}')::date)"""


def per_day() -> list[str]:
    return [
        'CREATE INDEX IF NOT EXISTS "response_started_day" ON "surveys_response" '
        f'("site_id", {day("started_at")}) INCLUDE ("started_at")',
        'CREATE INDEX IF NOT EXISTS "response_submitted_day" ON "surveys_response" '
        f'("site_id", {day("submitted_at")}) INCLUDE ("submitted_at") '
        "WHERE \"status\" = 'submitted'",
        'CREATE INDEX IF NOT EXISTS "participant_active_day" ON "surveys_participant" '
        f'("site_id", {day("created_at")}) INCLUDE ("created_at") '
        "WHERE \"status\" = 'active'",
    ]


class TrigramExtensionOnPostgreSQL(TrigramExtension):
    """Django's operation skips other databases going forwards, not backwards (it would
    look for ``pg_extension`` on SQLite)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


INDEXES = (
    "participant_reference_trgm",
    "response_started_day",
    "response_submitted_day",
    "participant_active_day",
)


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        for statement in [TRIGRAM, *per_day()]:
            schema_editor.execute(statement)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0017_response_export_files_expire"),
    ]

    operations = [
        TrigramExtensionOnPostgreSQL(),
        migrations.RunPython(create, drop),
    ]
