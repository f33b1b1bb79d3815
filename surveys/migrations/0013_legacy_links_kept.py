"""Links issued before links were derived from the link key keep working: each
participant's current hash (of a random token nobody can show again) is kept as a
``LegacyLink``. The participant gets a derived link beside it the first time one is
needed (``surveys/links.py``). Erased participants have no link to keep.

Reverse: the kept hashes are dropped. A participant whose derived link was not made yet
keeps the earlier link (it is still their ``token_hash``); one who already has a derived
link keeps that one, and the earlier link stops working.
"""

from django.db import migrations

BATCH = 1000


def keep_legacy_links(apps, schema_editor):
    Participant = apps.get_model("surveys", "Participant")
    LegacyLink = apps.get_model("surveys", "LegacyLink")
    rows = (
        Participant.objects.filter(erasure__isnull=True, stable_link__isnull=True)
        .order_by("pk")
        .values_list("pk", "token_hash")
    )
    batch = []
    for pk, token_hash in rows.iterator(chunk_size=BATCH):
        batch.append(LegacyLink(participant_id=pk, token_hash=token_hash))
        if len(batch) >= BATCH:
            LegacyLink.objects.bulk_create(batch)
            batch = []
    LegacyLink.objects.bulk_create(batch)


def drop_legacy_links(apps, schema_editor):
    apps.get_model("surveys", "LegacyLink").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("surveys", "0012_participant_links_derived_from_a_key")]

    operations = [migrations.RunPython(keep_legacy_links, drop_legacy_links)]
