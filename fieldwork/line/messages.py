"""A delivery made into LINE messages: the invitation or reminder text in the contact's
language with the participant's stable link typed out, and a button that opens it. Only a
participant whose LINE account is linked gets one (``linking.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from surveys.errors import LinkUnavailable
from surveys.links import participant_link
from surveys.models import Language, Site

from ..campaigns.messages import campaign_text
from ..models import Contact, Delivery
from . import client, texts

if TYPE_CHECKING:  # the SDK is imported when a message is built (see client.py)
    from linebot.v3.messaging import Message


class Undeliverable(Exception):
    """This delivery cannot become a LINE message (no linked account, no link): a permanent
    failure, and the next channel's turn."""


@dataclass(frozen=True)
class LineMessage:
    to: str
    messages: list[Message]


def standard_text(*, site: Site, kind: str, language: str) -> str:
    """The standard LINE text of ``kind`` in ``language`` for a participant of ``site``,
    with the deadline if the site has one (the link follows it as a button and typed out;
    also the campaign admin's preview)."""
    study = site.study
    english = language == Language.EN
    values = {
        "site": site.name_en if english and site.name_en else site.name_ja,
        "study": study.name_en if english and study.name_en else study.name_ja,
    }
    body = texts.INVITATION if kind == Delivery.Kind.INVITATION else texts.REMINDER
    with translation.override(language):
        text = str(body) % values
        if site.survey_closes_at:
            closes = timezone.localtime(site.survey_closes_at, timezone.get_default_timezone())
            text += "\n" + str(texts.DEADLINE) % {
                "deadline": date_format(closes, "DATETIME_FORMAT")
            }
    return text


def build(delivery: Delivery) -> LineMessage:
    """The push for ``delivery`` (its participant, contact and site loaded)."""
    participant = delivery.participant
    contact: Contact | None = getattr(participant, "contact", None)
    if contact is None or not contact.line_user_id:
        raise Undeliverable(_("The participant has not linked a LINE account."))
    try:
        link = participant_link(participant)
    except LinkUnavailable as exc:  # erased, withdrawn, or its link key is gone
        raise Undeliverable(str(exc)) from exc
    language = contact.language if contact.language in Language.values else Language.JA
    custom = campaign_text(delivery, language=language, link=link)
    with translation.override(language):
        if custom is None:
            text = standard_text(site=participant.site, kind=delivery.kind, language=language)
        else:
            text = custom
        messages = client.link_messages(
            text=text, link=link, button_text=str(texts.BUTTON_TEXT), label=str(texts.BUTTON_LABEL)
        )
    return LineMessage(to=contact.line_user_id, messages=messages)
