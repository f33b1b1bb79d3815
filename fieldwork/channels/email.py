"""The e-mail channel: a delivery made into a message (text and HTML, Japanese or English
by the contact's language, from the site's sender), and an SMTP answer sorted into
transient (retried) or permanent (failed).

Messages go through Django's e-mail framework: SMTP in production (``EMAIL_URL``), a file
per message under ``var/mail/`` in the embedded mode.
"""

from __future__ import annotations

import contextlib
import smtplib
from dataclasses import dataclass
from email.utils import formataddr
from types import TracebackType
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from surveys.errors import LinkUnavailable
from surveys.links import Invitation
from surveys.links import invitation as participant_invitation
from surveys.models import Language, Site

from ..campaigns.messages import campaign_text
from ..line import codes
from ..models import Contact, Delivery, Sender

TEMPLATES = "fieldwork/email"


def message_id(delivery_id: int) -> str:
    """The delivery's Message-ID, the same on every attempt: a message sent again after a
    worker died between sending and recording it is recognisably the same message (a
    mail client or a provider that deduplicates shows it once)."""
    return f"<hyoka-delivery-{delivery_id}@{settings.HYOKA_MESSAGE_ID_DOMAIN}>"


class Undeliverable(Exception):
    """This delivery cannot become a message (no address, no sender): a permanent failure."""


def standard(
    *,
    site: Site,
    sender: Sender,
    kind: str,
    language: str,
    link: str,
    line_code: str | None = None,
    line_account: str = "",
) -> tuple[str, str, str]:
    """The standard message of ``kind`` (subject, text, HTML) in ``language`` for a
    participant of ``site`` whose link is ``link`` (also the campaign admin's preview)."""
    context = {
        "link": link,
        "line_code": line_code,
        "line_account": line_account,
        "site_name": site.name_en if language == Language.EN and site.name_en else site.name_ja,
        "study_name": (
            site.study.name_en
            if language == Language.EN and site.study.name_en
            else site.study.name_ja
        ),
        "sender_name": sender.display_name(language),
        "reply_to": sender.reply_to or sender.from_address,
        "closes_at": site.survey_closes_at,
        "kind": kind,
        "language": language,
    }
    with translation.override(language):
        name = f"{TEMPLATES}/{language}/{kind}"
        subject = " ".join(render_to_string(f"{name}_subject.txt", context).split())
        text: str = render_to_string(f"{name}.txt", context)
        html: str = render_to_string(f"{name}.html", {**context, "subject": subject})
    return subject, text, html


def build(delivery: Delivery, *, invitation: Invitation | None = None) -> EmailMultiAlternatives:
    """The message for ``delivery`` (its participant, contact and site's sender loaded);
    ``invitation``: the participant's link if the caller has it (a batch renders them at
    once), else it is rendered here.

    An invitation carries a short LINE paragraph (the official account and the
    participant's link code, ``fieldwork.line.codes``) when LINE is on,
    ``LINE_OFFICIAL_ACCOUNT_ID`` is set and the participant's LINE account is not linked
    yet; a reminder does not."""
    participant = delivery.participant
    contact: Contact | None = getattr(participant, "contact", None)
    if contact is None or not contact.email:
        raise Undeliverable(_("The participant has no e-mail address."))
    sender: Sender | None = getattr(participant.site, "sender", None)
    if sender is None:
        raise Undeliverable(_("The site has no sender: set one in Fieldwork › Senders."))
    language = contact.language if contact.language in Language.values else Language.JA
    site = participant.site
    try:
        invitation = invitation or participant_invitation(participant)
    except LinkUnavailable as exc:  # erased, withdrawn, or its link key no longer configured
        raise Undeliverable(exc.message) from exc
    account = settings.LINE_OFFICIAL_ACCOUNT_ID
    line_code = (
        codes.for_invitation(invitation)
        if account and delivery.kind == Delivery.Kind.INVITATION and not contact.line_user_id
        else None
    )
    with translation.override(language):
        subject, text, html = standard(
            site=site,
            sender=sender,
            kind=delivery.kind,
            language=language,
            link=invitation.url,
            line_code=line_code,
            line_account=account if line_code else "",
        )
        # A campaign's own text, if it has one for this message, replaces the standard one.
        custom = campaign_text(delivery, language=language, link=invitation.url)
        if custom is not None:
            text = custom
            html = render_to_string(
                f"{TEMPLATES}/campaign.html",
                {"subject": subject, "text": custom, "language": language},
            )
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=formataddr((sender.display_name(language), sender.from_address)),
        to=[contact.email],
        reply_to=[sender.reply_to] if sender.reply_to else [],
        headers={
            "Message-ID": message_id(delivery.pk),
            # RFC 3834: sent by a program; vacation responders should not answer it.
            "Auto-Submitted": "auto-generated",
            "Content-Language": language,
        },
    )
    message.attach_alternative(html, "text/html")
    return message


# --- Sending and what an SMTP answer means ------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why a message was not sent: ``transient`` (try again later) or not; whether the
    connection is gone (the rest of the batch waits for the next run)."""

    reason: str
    transient: bool
    connection_lost: bool = False


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def classify(exc: BaseException) -> Failure:
    """An exception of ``smtplib`` or the socket, as a ``Failure``. 4xx answers and
    connection problems are transient; 5xx answers are permanent. A refused login (535)
    is a configuration problem, not this message's: transient, so the messages wait
    (up to their attempts) while the operator fixes it."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        code = min((c for c, _m in answers), default=550)
        reason = "; ".join(f"{c} {_text(m)}" for c, m in answers) or "recipient refused"
        return Failure(reason=reason, transient=code < 500)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Failure(
            reason=f"{exc.smtp_code} {_text(exc.smtp_error)} (check EMAIL_URL)",
            transient=True,
            connection_lost=True,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        # 421: the server is closing the connection.
        return Failure(
            reason=f"{code} {_text(exc.smtp_error)}",
            transient=code < 500,
            connection_lost=code == 421 or isinstance(exc, smtplib.SMTPConnectError),
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
        return Failure(reason=f"connection: {exc}", transient=True, connection_lost=True)
    return Failure(reason=f"{type(exc).__name__}: {exc}", transient=False)


class Transport:
    """One connection of Django's configured backend for a batch, opened on first use and
    opened again after it was lost."""

    def __init__(self) -> None:
        self.connection: Any = None

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, message: EmailMultiAlternatives) -> None:
        """Send one message; raises what the backend raised (see ``classify``)."""
        if self.connection is None:
            connection = get_connection(fail_silently=False)
            try:
                connection.open()
            except Exception:
                connection.close()
                raise
            self.connection = connection
        try:
            sent = self.connection.send_messages([message])
        except Exception as exc:
            if classify(exc).connection_lost:
                self.close()  # the next message starts on a fresh connection
            raise
        if not sent:
            raise smtplib.SMTPException("the backend sent nothing")

    def close(self) -> None:
        if self.connection is not None:
            # A broken connection closes as best it can.
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
