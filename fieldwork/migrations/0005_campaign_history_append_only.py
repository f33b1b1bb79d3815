"""The campaigns' history (and that of their sites) becomes append-only, as every other
history (surveys/appendonly.py)."""

from django.db import migrations

from surveys import appendonly


class Migration(migrations.Migration):
    dependencies = [
        ("fieldwork", "0004_campaigns"),
    ]

    operations = [
        appendonly.operation(
            "fieldwork", ["fieldwork_historicalcampaign", "fieldwork_historicalcampaign_sites"]
        )
    ]
