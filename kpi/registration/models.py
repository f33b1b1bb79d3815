"""Registrations of KPI specifications and the deviations recorded after them.

Both tables are append-only in the database (``surveys/appendonly.py``): a registration
or a deviation, once written, is never changed or removed. ``DeviationWindow`` is the one
scratch table of the lock (``lock.py``): a row lives only inside the transaction of the
deviation that opens it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from surveys.models import Instrument, Study
from surveys.text import no_control_characters


class BytesField(models.BinaryField):
    """Binary data read back as ``bytes`` on every database (PostgreSQL's driver gives a
    ``memoryview``), so that callers hash and parse it the same everywhere."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        return None if value is None else bytes(value)


class Registration(models.Model):
    """A study's KPI specification as registered before its fieldwork: the canonical JSON
    (``canonical.py``), its SHA-256, a detached CMS signature by the programme's
    certificate over the JSON, and an RFC 3161 timestamp token over the SHA-256, whose
    time (``timestamped_at``, the authority's genTime) is the registration's time."""

    study = models.OneToOneField(
        Study, on_delete=models.PROTECT, related_name="registration", verbose_name=_("study")
    )
    instrument = models.ForeignKey(
        Instrument,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("questionnaire version"),
    )
    canonical_json = BytesField(_("registered specification (canonical JSON)"))
    sha256 = models.CharField(_("SHA-256 of the specification"), max_length=64, editable=False)
    signature = BytesField(_("signature (CMS, DER)"))
    timestamp_token = BytesField(_("timestamp token (RFC 3161, DER)"))
    timestamped_at = models.DateTimeField(_("timestamped at (time-stamping authority)"))
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("registered by"),
    )
    registered_at = models.DateTimeField(_("registered at (server clock)"), auto_now_add=True)
    statement = models.TextField(_("statement"), validators=[no_control_characters])

    class Meta:
        verbose_name = _("KPI specification registration")
        verbose_name_plural = _("KPI specification registrations")
        ordering = ["-timestamped_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="registration_sha256_hex"
            ),
            models.CheckConstraint(condition=Q(statement__gt=""), name="registration_statement"),
        ]

    def __str__(self) -> str:
        return gettext("Registration of %(study)s") % {"study": self.study.code}


class Deviation(models.Model):
    """A recorded change to a registered specification: what, the old and the new value
    (as the specification's JSON has them), why, who, when."""

    registration = models.ForeignKey(
        Registration,
        on_delete=models.PROTECT,
        related_name="deviations",
        verbose_name=_("registration"),
    )
    what = models.CharField(_("what changed"), max_length=200, editable=False)  # the service's
    old_value = models.JSONField(_("registered value"))
    new_value = models.JSONField(_("new value"))
    reason = models.TextField(_("reason"), validators=[no_control_characters])
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("made by"),
    )
    made_at = models.DateTimeField(_("made at"), auto_now_add=True)

    class Meta:
        verbose_name = _("deviation from the registration")
        verbose_name_plural = _("deviations from the registration")
        ordering = ["registration", "made_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(reason__gt=""), name="deviation_has_reason"),
        ]

    def __str__(self) -> str:
        return self.what


class DeviationWindow(models.Model):
    """Lets one row of one locked table change, inside the transaction of ``deviation``
    only: written after the deviation, deleted before the transaction commits
    (``lock.deviation_window``). The lock's triggers look for it."""

    deviation = models.ForeignKey(
        Deviation,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("deviation from the registration"),
    )
    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="+", verbose_name=_("study")
    )
    locked_table = models.CharField(_("locked table"), max_length=64, editable=False)
    row_id = models.BigIntegerField(_("row id"))

    class Meta:
        verbose_name = _("open deviation")
        verbose_name_plural = _("open deviations")
        constraints = [
            models.UniqueConstraint(
                fields=["locked_table", "row_id"], name="deviation_window_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.locked_table} #{self.row_id}"
