"""Fieldwork: reaching participants. Their contact details (encrypted), who the messages
come from (a site's sender), and every message as a row (a delivery).

Contacts live here, not in ``surveys``: ``surveys`` knows nothing of them, and erasure
reaches them through ``surveys.signals.participant_erasing`` (``receivers.py``). No
history is kept of contacts (an audit record would be a second, plain copy); deliveries
are their own log.
"""

from __future__ import annotations

import datetime

from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    validate_email,
)
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from surveys.history import AuditedHistory
from surveys.models import Language, Participant, Site, Study
from surveys.text import no_control_characters

from .campaigns import templating
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
    # Which claim took the row (a random value per batch): the sender reads back its own.
    claim = models.CharField(max_length=32, blank=True, editable=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    # A campaign's message: its step (0 the invitation, n the n-th reminder) and, for a
    # message that took over after a failure on another channel, how many went before it.
    campaign = models.ForeignKey(
        "Campaign",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("campaign"),
    )
    step = models.PositiveSmallIntegerField(_("step"), default=0)
    fallback = models.PositiveSmallIntegerField(_("fallback"), default=0)

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
            # Two scheduler runs at once never create a campaign's message twice
            # (campaigns/scheduling.py inserts with ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=["campaign", "participant", "step", "fallback"],
                name="delivery_one_per_campaign_step",
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


class StudyFieldwork(Study):
    """A study seen from its fieldwork: the watch page in the admin (``watch_admin.py``)."""

    class Meta:
        proxy = True
        verbose_name = _("fieldwork of a study")
        verbose_name_plural = _("fieldwork by study")


class Campaign(models.Model):
    """An invitation wave and its reminders for a study (or some of its sites). What is
    due when is worked out by ``campaigns/rules.py``; the beat task turns it into
    deliveries (``campaigns/scheduling.py``)."""

    class Audience(models.TextChoices):
        NOT_STARTED = "not_started", _("Those who have not started the questionnaire")
        DRAFTS = "drafts", _("Those who started but have not sent their answers")
        NOT_SUBMITTED = "not_submitted", _("Everyone who has not sent their answers yet")

    class ChannelOrder(models.TextChoices):
        LINE_EMAIL = "line,email", _("LINE if linked, else e-mail, else a printed letter")
        EMAIL_LINE = "email,line", _("E-mail if known, else LINE, else a printed letter")
        EMAIL = "email", _("E-mail if known, else a printed letter")
        LETTER = "letter", _("Printed letters only")

    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("study")
    )
    sites = models.ManyToManyField(
        Site,
        blank=True,
        related_name="campaigns",
        verbose_name=_("sites"),
        help_text=_("Leave empty to reach every site of the study."),
    )
    name = models.CharField(_("name"), max_length=100, validators=[no_control_characters])
    starts_at = models.DateTimeField(
        _("invitations sent from"),
        help_text=_("Date and time (Japan time) when the invitations go out."),
    )
    audience = models.CharField(
        _("who receives messages"),
        max_length=16,
        choices=Audience.choices,
        default=Audience.NOT_SUBMITTED,
        help_text=_("Checked again before each message: someone who has answered gets nothing."),
    )
    reminder_after_days = models.PositiveSmallIntegerField(
        _("days until a reminder"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("A reminder is sent this many days after the last message to the person."),
    )
    max_reminders = models.PositiveSmallIntegerField(
        _("reminders at most"),
        default=2,
        validators=[MaxValueValidator(10)],
        help_text=_("0: the invitation only."),
    )
    quiet_from = models.TimeField(
        _("no messages from"),
        default=datetime.time(21, 0),
        help_text=_("Japan time. A message that would fall in this period waits until its end."),
    )
    quiet_until = models.TimeField(_("no messages until"), default=datetime.time(8, 0))
    channel_order = models.CharField(
        _("how to reach people"),
        max_length=16,
        choices=ChannelOrder.choices,
        default=ChannelOrder.LINE_EMAIL,
        help_text=_(
            "If a message cannot be delivered, the next way is tried; in the end the person "
            "is put on the list of letters to print."
        ),
    )
    invitation_ja = models.TextField(
        _("invitation (Japanese)"),
        blank=True,
        validators=[no_control_characters, templating.check],
        help_text=templating.HELP,
    )
    invitation_en = models.TextField(
        _("invitation (English)"),
        blank=True,
        validators=[no_control_characters, templating.check],
        help_text=templating.HELP,
    )
    reminder_ja = models.TextField(
        _("reminder (Japanese)"),
        blank=True,
        validators=[no_control_characters, templating.check],
        help_text=templating.HELP,
    )
    reminder_en = models.TextField(
        _("reminder (English)"),
        blank=True,
        validators=[no_control_characters, templating.check],
        help_text=templating.HELP,
    )
    active = models.BooleanField(
        _("active"),
        default=False,
        help_text=_("Messages are sent only while this is ticked. Check the preview first."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    history = AuditedHistory(m2m_fields=[sites])

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reminder_after_days__gte=1), name="campaign_reminder_after_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def template(self, kind: str, language: str) -> str:
        """The manager's text for ``kind`` in ``language`` ("" if none: the channel's own)."""
        return str(getattr(self, f"{kind}_{'en' if language == Language.EN else 'ja'}"))
