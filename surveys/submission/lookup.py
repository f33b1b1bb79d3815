"""The token lookup: who a participant's link belongs to, and what their questionnaire and
the submission pipeline need to know, read in one prepared statement
(``statements.link_row``) and handed on as one explicit value, a ``Link``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import tokens
from ..answers import frozen_form
from ..models import Instrument, Participant, Response, Site, hash_token
from . import statements


@dataclass(frozen=True)
class Link:
    """A participant as their link's lookup found them.

    ``response`` is their response as it was read (with its instrument), or ``None``; it
    is a hint that picks the pipeline's path, never a decision: the writes' own
    conditions and the participant's row lock decide. ``current_instrument_id`` and
    ``current_published_at`` are the study's current (newest published) instrument, the
    one a new response answers; ``None`` when none is published."""

    participant: Participant  # with its site and the site's study
    response: Response | None
    current_instrument_id: int | None
    current_published_at: datetime | None

    @property
    def site(self) -> Site:
        return self.participant.site

    def current_instrument(self) -> Instrument | None:
        """The instrument a new response answers: usually from the form this process
        keeps for a published instrument, without a query."""
        if self.current_instrument_id is None:
            return None
        form = frozen_form(self.current_instrument_id, self.current_published_at)
        if form is not None:
            return form.instrument
        return Instrument.objects.get(pk=self.current_instrument_id)

    def instrument(self) -> Instrument | None:
        """The instrument the participant answers: their response's, else the current."""
        return self.response.instrument if self.response else self.current_instrument()


def link_for_token(token: str) -> Link | None:
    """The active participant a token belongs to, or ``None`` whatever the reason
    (unknown, replaced, withdrawn or malformed), so that callers answer every case the
    same way. One query; two when the token's hash is not a participant's current one."""
    if not tokens.is_well_formed(token):
        return None
    token_hash = hash_token(token)
    link = _link(statements.link_row(token_hash=token_hash))
    if link is None:
        # Only a miss pays for the links issued before links were derived (``LegacyLink``).
        link = _link(statements.link_row(legacy_hash=token_hash))
    return link


def link_of(participant: Participant) -> Link:
    """The same value for a participant in hand (a command, a test): looked up by id,
    whatever their status."""
    link = _link(statements.link_row(participant_id=participant.pk))
    assert link is not None, "the participant is not stored"
    return link


def _link(row: statements.LinkRow | None) -> Link | None:
    if row is None:
        return None
    participant, response, current_id, current_published_at = row
    return Link(participant, response, current_id, current_published_at)
