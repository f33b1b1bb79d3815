"""Registrations and deviations become append-only (surveys/appendonly.py), and a
registered specification is locked in the database (kpi/registration/lock.py)."""

from django.db import migrations

from kpi.registration import lock
from surveys import appendonly


class Migration(migrations.Migration):
    dependencies = [
        ("kpi", "0007_registration"),
        ("surveys", "0016_response_lists_newest_first_index"),
    ]

    operations = [
        appendonly.operation("kpi", ["kpi_registration", "kpi_deviation"]),
        lock.operation(),
    ]
