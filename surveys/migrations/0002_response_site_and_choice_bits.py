import django.db.models.deletion
from django.db import migrations, models


def copy_site_from_participant(apps, schema_editor):
    Response = apps.get_model("surveys", "Response")
    Participant = apps.get_model("surveys", "Participant")
    Response.objects.update(
        site_id=models.Subquery(
            Participant.objects.filter(pk=models.OuterRef("participant_id")).values("site_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [("surveys", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="response",
            name="site",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="responses",
                to="surveys.site",
                verbose_name="site",
            ),
        ),
        # No responses existed outside development before this migration: bits start at 0.
        migrations.AddField(
            model_name="response",
            name="choice_bits",
            field=models.BigIntegerField(
                default=0, editable=False, verbose_name="chosen choices (bits)"
            ),
        ),
        migrations.RunPython(copy_site_from_participant, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="response",
            name="site",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="responses",
                to="surveys.site",
                verbose_name="site",
            ),
        ),
        migrations.AddIndex(
            model_name="response",
            index=models.Index(fields=["site", "status"], name="response_site_status"),
        ),
        migrations.AddConstraint(
            model_name="response",
            constraint=models.CheckConstraint(
                condition=models.Q(("choice_bits__gte", 0)),
                name="response_choice_bits_non_negative",
            ),
        ),
    ]
