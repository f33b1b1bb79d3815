from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0003_site_memberships"),
    ]

    operations = [
        migrations.AddField(
            model_name="response",
            name="idempotency_key",
            field=models.CharField(
                blank=True,
                editable=False,
                max_length=64,
                null=True,
                verbose_name="idempotency key",
            ),
        ),
    ]
