"""The historical tables of segments, their conditions, KPIs and evaluations become
append-only: the database refuses UPDATE, DELETE and TRUNCATE on them (surveys/appendonly.py)."""

from django.db import migrations

from surveys import appendonly

TABLES = [
    "kpi_historicalsegment",
    "kpi_historicalclause",
    "kpi_historicalclause_choices",
    "kpi_historicalkpi",
    "kpi_historicalevaluation",
]


class Migration(migrations.Migration):
    dependencies = [
        ("kpi", "0004_history_user_protected"),
    ]

    operations = [appendonly.operation("kpi", TABLES)]
