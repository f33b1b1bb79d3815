"""A campaign's text for a delivery, in the participant's language, with its placeholders
filled in; used by the e-mail and LINE channels, and by the admin's preview
(``preview.py``: a sample participant, a sample link)."""

from __future__ import annotations

from datetime import datetime

from django.utils import translation
from django.utils.formats import date_format

from surveys.models import Language, Site

from ..models import Campaign, Delivery, Sender
from . import templating
from .rules import JAPAN

SAMPLE_LINK_PATH = "/s/EXAMPLE-LINK"


def deadline_text(closes_at: datetime | None, language: str) -> str:
    if closes_at is None:
        return ""
    with translation.override(language):
        return date_format(closes_at.astimezone(JAPAN), "DATETIME_FORMAT")


def values(*, site: Site, language: str, link: str) -> dict[str, str]:
    """The placeholders' values for a participant of ``site`` in ``language``."""
    english = language == Language.EN
    sender: Sender | None = getattr(site, "sender", None)
    municipality = site.name_en if english and site.name_en else site.name_ja
    return {
        "municipality": municipality,
        "study": site.study.name_en if english and site.study.name_en else site.study.name_ja,
        "deadline": deadline_text(site.survey_closes_at, language),
        "link": link,
        "sender": sender.display_name(language) if sender else municipality,
    }


def campaign_text(delivery: Delivery, *, language: str, link: str) -> str | None:
    """The campaign's text for ``delivery`` (its participant's site loaded), or None: not
    a campaign's message, or the campaign has no text of its own for it (the channel's
    standard text is used)."""
    campaign: Campaign | None = delivery.campaign if delivery.campaign_id else None
    if campaign is None:
        return None
    text = campaign.template(delivery.kind, language)
    if not text.strip():
        return None
    return templating.render(
        text, values(site=delivery.participant.site, language=language, link=link)
    )
