"""The campaign admin's preview: every message a campaign sends, as a participant of a
site would read it, in Japanese and English, with a sample link: for each kind and
language, the e-mail's subject and text and the LINE message (the campaign's own text
where it has one, else the channel's standard one), and the printed letter's wording
(letters have one wording, for the invitation and the reminders alike).

The standard texts come from the channels themselves (``channels.email.standard``,
``line.messages.standard_text``, ``letters.texts``), so the preview is what is sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext

from surveys.models import Language, Site

from ..channels import email
from ..letters.build import _purpose, deadline_of
from ..letters.texts import WORDING, format_date
from ..line import messages as line_messages
from ..line import texts as line_texts
from ..models import Campaign, Delivery, Sender
from . import messages, rules, templating

LANGUAGES = (Language.JA, Language.EN)
KINDS = (Delivery.Kind.INVITATION, Delivery.Kind.REMINDER)


@dataclass(frozen=True)
class Shown:
    """One message of the preview: which channel, and its text (a subject, if any)."""

    channel: str
    subject: str
    text: str
    standard: bool  # the channel's standard text (the campaign has none of its own)


def sample_link() -> str:
    return settings.SITE_URL + messages.SAMPLE_LINK_PATH


def campaign_preview(campaign: Campaign, *, site: Site) -> dict[tuple[str, str], list[Shown]]:
    """(kind, language) → the messages of the campaign's channels, in its order. A
    letter, whose wording does not depend on the kind, is under the invitation only."""
    link = sample_link()
    sender: Sender | None = getattr(site, "sender", None)
    order = channels_of(campaign)
    shown: dict[tuple[str, str], list[Shown]] = {}
    for kind in KINDS:
        for language in LANGUAGES:
            own = campaign.template(kind, language)
            custom = (
                templating.render(own, messages.values(site=site, language=language, link=link))
                if own.strip()
                else ""
            )
            items: list[Shown] = []
            for channel in order:
                if channel == rules.EMAIL:
                    items.append(_email(site, sender, kind, language, link, custom))
                elif channel == rules.LINE:
                    items.append(_line(site, kind, language, link, custom))
                elif channel == rules.LETTER and kind == Delivery.Kind.INVITATION:
                    items.append(_letter(site, sender, language, link))
            shown[(kind, language)] = items
    return shown


def channels_of(campaign: Campaign) -> list[str]:
    """The campaign's channels in its order, the printed letter last."""
    order = [c for c in campaign.channel_order.split(",") if c and c != rules.LETTER]
    return [*order, rules.LETTER]


def _email(
    site: Site, sender: Sender | None, kind: str, language: str, link: str, custom: str
) -> Shown:
    if sender is None:
        return Shown(
            rules.EMAIL,
            "",
            gettext("The site has no sender: set one in Fieldwork › Senders."),
            standard=True,
        )
    subject, text, _html = email.standard(
        site=site, sender=sender, kind=kind, language=language, link=link
    )
    return Shown(rules.EMAIL, subject, custom or text, standard=not custom)


def _line(site: Site, kind: str, language: str, link: str, custom: str) -> Shown:
    text = custom or line_messages.standard_text(site=site, kind=kind, language=language)
    with translation.override(language):
        button = f"[{line_texts.BUTTON_LABEL}] {line_texts.BUTTON_TEXT}"
    return Shown(rules.LINE, "", f"{text}\n\n{link}\n\n{button}", standard=not custom)


def _letter(site: Site, sender: Sender | None, language: str, link: str) -> Shown:
    wording = WORDING[language]
    deadline = deadline_of(site.survey_closes_at) or (timezone.localdate() + dt.timedelta(days=14))
    sample_name = "山田 花子" if language == Language.JA else "Hanako Yamada"
    lines = [
        *(sender.postal_block(language).splitlines() if sender else []),
        "",
        wording.greeting.replace("{name}", sample_name),
        _purpose(site.study, language),
        wording.request,
        wording.closing,
        "",
        wording.deadline_label + format_date(deadline, language, weekday=True),
        wording.how_title,
        *wording.how,
        wording.link_label + ": " + link,
        wording.personal,
    ]
    return Shown(rules.LETTER, wording.title, "\n".join(lines).strip(), standard=True)
