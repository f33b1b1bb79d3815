"""The senders' history becomes append-only, as every other history
(surveys/appendonly.py): the database refuses UPDATE, DELETE and TRUNCATE on it."""

from django.db import migrations

from surveys import appendonly


class Migration(migrations.Migration):
    dependencies = [
        ("fieldwork", "0002_study_fieldwork_page"),
    ]

    operations = [appendonly.operation("fieldwork", ["fieldwork_historicalsender"])]
