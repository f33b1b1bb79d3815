"""Fieldwork: reaching participants. Their contact details (encrypted), who the messages
come from (a site's sender), and every message as a row (a delivery).

Contacts live here, not in ``surveys``: ``surveys`` knows nothing of them, and erasure
reaches them through ``surveys.signals.participant_erasing`` (``receivers.py``). No
history is kept of contacts (an audit record would be a second, plain copy); deliveries
are their own log.
"""

from __future__ import annotations

from django.core.validators import RegexValidator, validate_email
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from surveys.history import AuditedHistory
from surveys.models import Language, Participant, Site
from surveys.text import no_control_characters

from .fields import EncryptedTextField

LINE_USER_ID = RegexValidator(
    r"^U[0-9a-f]{32}\Z",
    _("A LINE user id is “U” followed by 32 characters 0-9 and a-f."),
)


class Contact(models.Model):
    """How to reach one participant. Every personal value is encrypted at rest."""

    participant = models.OneToOneField(
        Participant,
        on_delete=models.CASCADE,
        related_name="contact",
        verbose_name=_("participant"),
    )
    email = EncryptedTextField(
        _("e-mail address"),
        blank=True,
        default="",
        validators=[validate_email, no_control_characters],
    )
    line_user_id = EncryptedTextField(
        _("LINE user id"),
        blank=True,
        default="",
        validators=[LINE_USER_ID, no_control_characters],
    )
    # HMAC of the LINE user id (crypto.line_user_index): found without decrypting.
    line_user_index = models.CharField(max_length=64, blank=True, default="", editable=False)
    postal_name = EncryptedTextField(
        _("name on letters"), blank=True, default="", validators=[no_control_characters]
    )
    postal_address = EncryptedTextField(
        _("postal address"),
        blank=True,
        default="",
        validators=[no_control_characters],
        help_text=_("As it is printed on the envelope, one line per line."),
    )
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.JA
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("contact details")
        verbose_name_plural = _("contact details")
        indexes = [
            models.Index(
                fields=["line_user_index"],
                condition=~Q(line_user_index=""),
                name="contact_line_user_index",
            )
        ]

    def __str__(self) -> str:
        # Not the participant's reference: the admin's log keeps this text, and erasure
        # renames only the participant's own entries.
        return str(_("Contact details #%(id)s") % {"id": self.pk})


class Sender(models.Model):
    """Who a site's letters and e-mails come from: the municipality."""

    site = models.OneToOneField(
        Site, on_delete=models.CASCADE, related_name="sender", verbose_name=_("site")
    )
    display_name_ja = models.CharField(
        _("sender name (Japanese)"), max_length=100, validators=[no_control_characters]
    )
    display_name_en = models.CharField(
        _("sender name (English)"),
        max_length=100,
        blank=True,
        validators=[no_control_characters],
        help_text=_("Empty: the Japanese name is used."),
    )
    from_address = models.EmailField(
        _("from address"),
        validators=[no_control_characters],
        help_text=_("An address your mail provider may send from (SPF and DKIM)."),
    )
    reply_to = models.EmailField(
        _("reply-to address"),
        blank=True,
        validators=[no_control_characters],
        help_text=_("Where participants' replies go. Empty: to the from address."),
    )
    postal_block_ja = models.TextField(
        _("sender block on letters (Japanese)"),
        blank=True,
        help_text=_("The department, postal address and telephone number, one per line."),
        validators=[no_control_characters],
    )
    postal_block_en = models.TextField(
        _("sender block on letters (English)"), blank=True, validators=[no_control_characters]
    )
    history = AuditedHistory()

    class Meta:
        verbose_name = _("sender")
        verbose_name_plural = _("senders")
        ordering = ["site"]

    def __str__(self) -> str:
        return str(self.site)

    def display_name(self, language: str) -> str:
        return (self.display_name_en if language == Language.EN else "") or self.display_name_ja

    def postal_block(self, language: str) -> str:
        return (self.postal_block_en if language == Language.EN else "") or self.postal_block_ja


class Delivery(models.Model):
    """One message to one participant on one channel: queued → sending → sent | failed,
    or cancelled while queued. Claimed with a compare-and-set (``services.py``)."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        LINE = "line", _("LINE")
        LETTER = "letter", _("Letter")

    class Kind(models.TextChoices):
        INVITATION = "invitation", _("Invitation")
        REMINDER = "reminder", _("Reminder")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    PENDING = (Status.QUEUED, Status.SENDING)

    participant = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        related_name="deliveries",
        verbose_name=_("participant"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("queued"), auto_now_add=True)
    due_at = models.DateTimeField(_("due"))
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sending", "sent", "failed", "cancelled"]),
                name="delivery_status_known",
            ),
            models.CheckConstraint(
                condition=Q(channel__in=["email", "line", "letter"]),
                name="delivery_channel_known",
            ),
            # Clicking "send invitations" twice queues one message, not two.
            models.UniqueConstraint(
                fields=["participant", "channel", "kind"],
                condition=Q(status__in=["queued", "sending"]),
                name="delivery_one_pending_per_participant_channel_kind",
            ),
        ]
        indexes = [
            models.Index(
                fields=["channel", "due_at"],
                condition=Q(status="queued"),
                name="delivery_due",
            ),
            models.Index(
                fields=["claimed_at"], condition=Q(status="sending"), name="delivery_sending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_channel_display()}) #{self.pk}"
