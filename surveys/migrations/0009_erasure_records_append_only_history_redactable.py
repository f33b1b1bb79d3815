"""Erasure records are append-only like the history; and the historical tables of
participants, responses and answers let through one UPDATE only: erasure's, which sets a
personal column to its redacted value and changes nothing else (surveys/appendonly.py).
Reversed, those tables refuse every UPDATE again and erasure records lose their triggers."""

from django.db import migrations

from surveys import appendonly

# A frozen copy of surveys.erasure.HISTORY_REDACTIONS: the one value each personal column
# may be set to, as the trigger's condition.
REDACTIONS = {
    "surveys_historicalparticipant": {
        "reference": "NEW.\"reference\" = 'erased-' || NEW.\"id\"",
    },
    "surveys_historicalresponse": {"idempotency_key": 'NEW."idempotency_key" IS NULL'},
    "surveys_historicalanswer": {
        "text_value": "OLD.\"text_value\" IS NOT NULL AND NEW.\"text_value\" = ''",
    },
}


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0008_study_retention_and_erasure_records"),
    ]

    operations = [
        appendonly.operation("surveys", ["surveys_erasurerecord"]),
        appendonly.redaction_operation("surveys", REDACTIONS),
    ]
