"""``response_newest_first`` (issue 15, bench/admin.py), on PostgreSQL only (SQLite cannot
index ``NULLS LAST``): the order of the response lists of the admin and the API (newest
submissions first, then drafts), so that a page is read from the index rather than
sorting every response in scope."""

from django.db import migrations

NEWEST_FIRST = (
    'CREATE INDEX IF NOT EXISTS "response_newest_first" ON "surveys_response" '
    '("submitted_at" DESC NULLS LAST, "started_at" DESC, "id" DESC)'
)


def newest_first(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NEWEST_FIRST)


def no_newest_first(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "response_newest_first"')


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0015_response_exports"),
    ]

    operations = [
        migrations.RunPython(newest_first, no_newest_first),
    ]
