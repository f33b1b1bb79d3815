"""The historical tables of participants, responses, answers and memberships become
append-only: the database refuses UPDATE, DELETE and TRUNCATE on them (surveys/appendonly.py)."""

from django.db import migrations

from surveys import appendonly

TABLES = [
    "surveys_historicalparticipant",
    "surveys_historicalresponse",
    "surveys_historicalanswer",
    "surveys_historicalmembership",
]


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0006_participant_response_answer_membership_history"),
    ]

    operations = [appendonly.operation("surveys", TABLES)]
