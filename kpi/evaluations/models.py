"""Evaluations: a report built from one succeeded run, signed off and frozen."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from surveys.history import AuditedHistory
from surveys.models import Study
from surveys.text import no_control_characters


def evaluation_upload_to(evaluation: Evaluation, filename: str) -> str:
    return f"evaluations/{evaluation.study.code}/{filename}"


class Evaluation(models.Model):
    """A report built from one succeeded run: a draft, then signed off and frozen.

    ``snapshot`` holds everything the report shows (results, definitions, distributions,
    the instrument), copied when the evaluation is created; ``snapshot_sha256`` is its
    digest, printed in the sign-off block. Once signed off nothing here changes except
    the rendering of the signed PDF (once) and a later withdrawal, which is a new act
    recorded beside it and leaves the signed file intact.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SIGNED_OFF = "signed_off", _("Signed off")
        WITHDRAWN = "withdrawn", pgettext_lazy("evaluation status", "Withdrawn")

    class Rendering(models.TextChoices):
        NONE = "", _("Not rendered")
        PENDING = "pending", _("Rendering")
        DONE = "done", _("Signed PDF ready")
        FAILED = "failed", _("Rendering failed")

    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, related_name="evaluations", verbose_name=_("study")
    )
    run = models.ForeignKey(
        "kpi.EvaluationRun",
        on_delete=models.PROTECT,
        related_name="evaluations",
        verbose_name=_("evaluation run"),
    )
    language = models.CharField(
        _("report language"), max_length=2, choices=[("ja", _("Japanese")), ("en", _("English"))]
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DRAFT
    )
    snapshot = models.JSONField(_("results snapshot"), editable=False)
    snapshot_sha256 = models.CharField(_("SHA-256 of the results"), max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("signed off by"),
    )
    signed_off_at = models.DateTimeField(_("signed off"), null=True, blank=True)
    signer_name = models.CharField(
        _("signer's name"), max_length=200, blank=True, validators=[no_control_characters]
    )
    signer_role = models.CharField(
        _("signer's role"), max_length=200, blank=True, validators=[no_control_characters]
    )
    statement = models.TextField(
        _("sign-off statement"), blank=True, validators=[no_control_characters]
    )
    rendering = models.CharField(
        _("signed PDF"), max_length=8, choices=Rendering.choices, default=Rendering.NONE, blank=True
    )
    rendering_error = models.TextField(_("rendering error"), blank=True)
    pdf = models.FileField(_("signed PDF"), upload_to=evaluation_upload_to, blank=True)
    pdf_sha256 = models.CharField(_("SHA-256 of the PDF"), max_length=64, blank=True)
    pdf_size = models.PositiveIntegerField(_("PDF size (bytes)"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("withdrawn by"),
    )
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    withdrawal_reason = models.TextField(
        _("reason for withdrawal"), blank=True, validators=[no_control_characters]
    )
    history = AuditedHistory()

    class Meta:
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        ordering = ["-created_at"]
        permissions = [
            ("sign_off_evaluation", _("Can sign off an evaluation")),
            ("withdraw_evaluation", _("Can withdraw a signed-off evaluation")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft")
                | Q(
                    signed_off_by__isnull=False,
                    signed_off_at__isnull=False,
                    statement__gt="",
                ),
                name="evaluation_signed_off_has_signer_time_statement",
            ),
            models.CheckConstraint(
                condition=~Q(status="withdrawn")
                | Q(withdrawn_by__isnull=False, withdrawn_at__isnull=False),
                name="evaluation_withdrawn_has_who_and_when",
            ),
            models.CheckConstraint(
                condition=Q(pdf="") | ~Q(status="draft"),
                name="evaluation_only_signed_off_has_a_stored_pdf",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(study)s evaluation #%(id)s (%(status)s)") % {
            "study": self.study.code,
            "id": self.pk,
            "status": self.get_status_display(),
        }

    @property
    def is_frozen(self) -> bool:
        return self.status != self.Status.DRAFT
