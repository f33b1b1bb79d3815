"""Reads: querysets with the joins their callers need."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from . import tokens
from .models import Instrument, Participant, Response, Site, Study, hash_token


def participant_for_token(token: str) -> Participant | None:
    """The active participant a token belongs to, or ``None`` whatever the reason (unknown,
    replaced, withdrawn or malformed), so that callers answer every case the same way."""
    if not tokens.is_well_formed(token):
        return None
    return (
        Participant.objects.select_related("site__study")
        .filter(token_hash=hash_token(token), status=Participant.Status.ACTIVE)
        .first()
    )


def instrument_current(study: Study) -> Instrument | None:
    """The study's newest published instrument: the one new responses answer."""
    return study.instruments.filter(status=Instrument.Status.PUBLISHED).order_by("-version").first()


def response_for_participant(participant: Participant) -> Response | None:
    return Response.objects.filter(participant=participant).select_related("instrument").first()


def site_response_counts(study: Study) -> QuerySet[Site]:
    """Sites of a study with participant, draft and submitted counts (the response-rate view)."""
    return study.sites.annotate(
        participants_total=Count(
            "participants", filter=Q(participants__status=Participant.Status.ACTIVE)
        ),
        drafts=Count(
            "participants__response",
            filter=Q(participants__response__status=Response.Status.DRAFT),
        ),
        submitted=Count(
            "participants__response",
            filter=Q(participants__response__status=Response.Status.SUBMITTED),
        ),
    ).order_by("code")
