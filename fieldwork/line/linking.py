"""Linking a participant's LINE account to their contact details, and unlinking it: the
only writes of the LINE channel besides its deliveries.

The LINE user id is stored in the participant's ``Contact`` (encrypted, with its blind
index: ``fieldwork/crypto.py``), so the webhook, which knows only the LINE user id, finds
the participant with one indexed lookup. One LINE account may be linked to several
participants (a parent answering for two children); one participant has at most one LINE
account. Pushes go only to a linked participant (``contact.line_user_id``).

Two ways in, both ending in ``line_user_link``:
- the **link code** from a letter or an e-mail, sent in the chat (``codes.py``);
- LINE's **account-link** flow: a page of Hyoka gives LINE a ``nonce``
  (``account_link_nonce``) and LINE's ``accountLink`` event brings it back with the user id
  (``participant_for_nonce``).
"""

from __future__ import annotations

import enum
import logging

from django.core import signing
from django.db import transaction

from surveys.models import Participant

from .. import crypto
from ..models import Contact

logger = logging.getLogger(__name__)

_NONCE_SALT = "fieldwork.line.account-link"
# LINE's link token lives 10 minutes; the nonce lives as long.
NONCE_MAX_AGE = 600


class Outcome(enum.Enum):
    LINKED = "linked"
    ALREADY_LINKED = "already linked"  # this LINE account, this participant: nothing to do
    USED = "linked to another LINE account"  # refused


def line_user_link(*, participant: Participant, line_user_id: str) -> Outcome:
    """Link ``line_user_id`` to ``participant`` unless another LINE account is linked
    already (a code is good for one account: refused, ``USED``). Idempotent."""
    with transaction.atomic():
        contact, _created = Contact.objects.select_for_update().get_or_create(
            participant=participant
        )
        if contact.line_user_id == line_user_id:
            return Outcome.ALREADY_LINKED
        if contact.line_user_id:
            return Outcome.USED
        contact.line_user_id = line_user_id
        contact.line_user_index = crypto.line_user_index(line_user_id)
        contact.save(update_fields=["line_user_id", "line_user_index", "updated_at"])
    logger.info("LINE account linked to participant %s", participant.pk)
    return Outcome.LINKED


def line_user_unlink(*, line_user_id: str) -> int:
    """Unlink this LINE account from every participant (it unfollowed or blocked the
    account): nothing more is pushed to it. Returns how many were unlinked; idempotent."""
    unlinked = Contact.objects.filter(
        line_user_index__in=crypto.line_user_indexes(line_user_id)
    ).update(line_user_id="", line_user_index="")
    if unlinked:
        logger.info("LINE account unlinked from %d participant(s)", unlinked)
    return unlinked


def linked_contacts(line_user_id: str) -> list[Contact]:
    """The contacts this LINE account is linked to (the index, then the decrypted id, to be
    sure)."""
    candidates = Contact.objects.filter(line_user_index__in=crypto.line_user_indexes(line_user_id))
    return [c for c in candidates if c.line_user_id == line_user_id]


# --- LINE's account-link flow ------------------------------------------------------------


def account_link_nonce(participant: Participant) -> str:
    """The ``nonce`` to hand LINE for this participant (``https://access.line.me/dialog/
    bot/accountLink?linkToken=…&nonce=…``): signed, bound to their current link, valid
    ``NONCE_MAX_AGE`` seconds."""
    return signing.TimestampSigner(salt=_NONCE_SALT).sign(
        f"{participant.pk}.{participant.token_hash[:16]}"
    )


def participant_for_nonce(nonce: str) -> Participant | None:
    """The participant an ``accountLink`` event's nonce was made for, if it is genuine,
    recent and their link unchanged; else ``None``."""
    try:
        value = signing.TimestampSigner(salt=_NONCE_SALT).unsign(nonce, max_age=NONCE_MAX_AGE)
    except signing.BadSignature:
        return None
    pk, _sep, token_hash_start = value.partition(".")
    participant = Participant.objects.filter(
        pk=int(pk) if pk.isdigit() else 0, status=Participant.Status.ACTIVE
    ).first()
    if participant is None or participant.token_hash[:16] != token_hash_start:
        return None
    return participant
