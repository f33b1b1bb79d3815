"""Stable participant links (``surveys/links.py``): the same link on every call, export
and reminder; replaced only on purpose, and recorded; derived from a key the database
does not hold; links from before keep working."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from surveys import links, selectors, services
from surveys.models import Participant


def expected_token(key: str, nonce: str) -> str:
    """The derivation, computed here independently: HMAC-SHA256 of the labelled nonce."""
    digest = hmac.new(key.encode(), f"hyoka-link-v1:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_a_participants_link_is_the_same_on_every_call(site):
    invitation = services.participant_create(site=site, reference="L-1")
    participant = Participant.objects.get(pk=invitation.participant.pk)

    first = links.participant_link(participant)
    again = links.participant_link(participant)

    assert first == again == invitation.url
    assert selectors.participant_for_token(invitation.token) == participant
