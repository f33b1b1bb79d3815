"""Participants' links: stable, derived from a key outside the database, replaced only on
purpose.

A participant's link carries a token that is an HMAC-SHA256 of a random per-participant
nonce under the link key (``HYOKA_LINK_KEY``), in the shape of the random tokens it
replaces (43 URL-safe base64 characters, ``tokens.TOKEN_PATTERN``). The database keeps
the nonce and the id of the key it was derived under (``ParticipantLink``) and, as
before, only the SHA-256 hash of the token (``Participant.token_hash``): the lookup of a
link (``submission/lookup.py``) needs no key, and a copy of the database alone gives no
link. So the same link can be rendered again for every invitation, reminder and
reprinted letter, until a manager replaces it (``participant_replace_links``: a new
nonce, recorded in the participant's history; the old link stops working at once).

Rotation: a new key in ``HYOKA_LINK_KEY``, the earlier one moved to ``HYOKA_LINK_OLD_KEYS``;
each link is rendered under the key it was made with, so every link stays the same.
A link whose key is no longer configured still works (its hash is stored) but cannot be
rendered: ``LinkKeyMissing`` says so.

Links issued before links were derived were random tokens nobody can show again. Their
hash is kept in ``LegacyLink`` (looked up only when the current hash finds nobody), and
such a participant gets a derived link, beside the earlier one, the first time a link of
theirs is needed. Replacing the link or erasing the participant ends both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from . import csvfiles, tokens
from .errors import LinkKeyMissing, LinkUnavailable, ParticipantErased, ParticipantWithdrawn
from .history import Reason, recorded_by
from .models import ErasureRecord, LegacyLink, Participant, ParticipantLink, hash_token

DOMAIN_LABEL = "hyoka-link-v1:"
KEY_ID_LABEL = b"hyoka-link-key-id-v1"
NONCE_BYTES = 16  # 128 bits, stored as 32 hex digits
BATCH = 1000


@dataclass(frozen=True)
class Invitation:
    """A participant with the plain token of their link."""

    participant: Participant
    token: str

    @property
    def url(self) -> str:
        return tokens.invitation_url(self.token)


# --- Keys and tokens -------------------------------------------------------------------


def key_id(key: str) -> str:
    """A short fingerprint naming a key (16 hex digits): stored with each link, so that a
    rotation knows which key renders it. It reveals nothing the stored hashes do not."""
    return hmac.new(key.encode(), KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def current_key() -> tuple[str, str]:
    """(id, key) of ``HYOKA_LINK_KEY``: new links are derived under it."""
    key = settings.HYOKA_LINK_KEY
    return key_id(key), key


def configured_keys() -> dict[str, str]:
    """Every key a link can be rendered with, by id: the current and the old ones."""
    keys = {key_id(k): k for k in settings.HYOKA_LINK_OLD_KEYS}
    keys.update([current_key()])
    return keys


def derive_token(key: str, nonce: str) -> str:
    """The token of the link made under ``key`` from ``nonce``: 32 bytes of HMAC-SHA256 as
    43 URL-safe base64 characters, the shape of the random tokens before."""
    digest = hmac.new(key.encode(), (DOMAIN_LABEL + nonce).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


@dataclass(frozen=True)
class NewLink:
    """A fresh link under the current key: its nonce, key id, token and the hash to store."""

    nonce: str
    key_id: str
    token: str

    @property
    def token_hash(self) -> str:
        return hash_token(self.token)

    def row(self, participant_id: int) -> ParticipantLink:
        return ParticipantLink(participant_id=participant_id, nonce=self.nonce, key_id=self.key_id)


def new_link() -> NewLink:
    """A new participant's link (``services.participant_create``, the CSV import)."""
    kid, key = current_key()
    nonce = new_nonce()
    return NewLink(nonce=nonce, key_id=kid, token=derive_token(key, nonce))


# --- Rendering a participant's link ----------------------------------------------------


def participant_link(participant: Participant) -> str:
    """The participant's link (an absolute URL): the same on every call until a manager
    replaces it. Raises ``ParticipantErased``, ``ParticipantWithdrawn`` or
    ``LinkKeyMissing`` (all ``LinkUnavailable``) when it cannot be given."""
    return invitation(participant).url


def participant_token(participant: Participant) -> str:
    """The token of ``participant_link`` (the API shows it beside the link)."""
    return invitation(participant).token


def invitation(participant: Participant) -> Invitation:
    return invitations([participant])[0]


def participant_links(participants: Iterable[Participant]) -> dict[int, str]:
    """Many participants' links, by participant id, in a few queries (per thousand
    participants). Raises as ``participant_link`` if any of them has none: its
    ``errors`` map each such participant's id to why."""
    return {i.participant.pk: i.url for i in invitations(participants)}


def invitations(participants: Iterable[Participant]) -> list[Invitation]:
    """``participant_links`` as ``Invitation``s, in the order given."""
    participants = list(participants)
    tokens_by_id = _tokens([p.pk for p in participants])
    return [Invitation(participant=p, token=tokens_by_id[p.pk]) for p in participants]


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _tokens(ids: list[int]) -> dict[int, str]:
    keys = configured_keys()
    found: dict[int, str] = {}
    legacy: list[int] = []
    problems: dict[int, LinkUnavailable] = {}
    for batch in _batches(list(dict.fromkeys(ids))):
        rows = Participant.objects.filter(pk__in=batch).values_list(
            "pk", "status", "erasure__pk", "stable_link__nonce", "stable_link__key_id"
        )
        for pk, status, erased, nonce, kid in rows:
            if erased is not None:
                problems[pk] = ParticipantErased()
            elif status != Participant.Status.ACTIVE:
                problems[pk] = ParticipantWithdrawn()
            elif nonce is None:
                legacy.append(pk)
            elif kid not in keys:
                problems[pk] = LinkKeyMissing(
                    _(
                        "This participant's link was made with a link key that is no longer "
                        "configured (key id %(key_id)s): put that key back in "
                        "HYOKA_LINK_OLD_KEYS, or replace the link."
                    )
                    % {"key_id": kid}
                )
            else:
                found[pk] = derive_token(keys[kid], nonce)
    missing = set(ids) - set(found) - set(problems) - set(legacy)
    if missing:
        raise LinkUnavailable(_("This participant is not stored."), errors=dict.fromkeys(missing))
    if problems:
        first = next(iter(problems.values()))
        raise type(first)(first.message, errors={pk: e.message for pk, e in problems.items()})
    if legacy:
        found.update(_derive_for_legacy(legacy))
    return found


def _derive_for_legacy(ids: list[int]) -> dict[int, str]:
    """Participants without a derived link (their link is a random one from before, or
    made by hand): their current hash is kept as a ``LegacyLink`` (it keeps working), and
    they get a derived link under the current key. Nothing a manager reads changes, so
    nothing is recorded in the history."""
    kid, key = current_key()
    found: dict[int, str] = {}
    with transaction.atomic():
        for batch in _batches(ids):
            # Locked: a concurrent call waits, then finds the links made here.
            locked = list(
                Participant.objects.select_for_update()
                .filter(pk__in=batch)
                .only("pk", "token_hash", "status")
                .order_by("pk")
            )
            made = dict(
                ParticipantLink.objects.filter(participant_id__in=batch).values_list(
                    "participant_id", "nonce"
                )
            )
            if ErasureRecord.objects.filter(participant_id__in=batch).exists():
                raise ParticipantErased()  # erased meanwhile
            kept = set(
                LegacyLink.objects.filter(participant_id__in=batch).values_list(
                    "participant_id", flat=True
                )
            )
            legacy_rows, link_rows, changed = [], [], []
            for participant in locked:
                if participant.pk in made or participant.status != Participant.Status.ACTIVE:
                    continue  # made, or withdrawn, meanwhile: rendered (or refused) below
                if participant.pk not in kept:
                    legacy_rows.append(
                        LegacyLink(participant_id=participant.pk, token_hash=participant.token_hash)
                    )
                nonce = new_nonce()
                token = derive_token(key, nonce)
                link_rows.append(
                    ParticipantLink(participant_id=participant.pk, nonce=nonce, key_id=kid)
                )
                participant.token_hash = hash_token(token)
                changed.append(participant)
                found[participant.pk] = token
            LegacyLink.objects.bulk_create(legacy_rows)
            ParticipantLink.objects.bulk_create(link_rows)
            Participant.objects.bulk_update(changed, ["token_hash"])
    rest = [pk for pk in ids if pk not in found]
    if rest:
        found.update(_tokens(rest))
    return found


def invitations_csv(invitations: Iterable[Invitation]) -> str:
    """``reference,site,link`` with a byte-order mark, so that Excel opens it as UTF-8;
    no cell is a formula (``surveys/csvfiles.py``)."""
    out = io.StringIO()
    writer = csvfiles.Writer(out)
    writer.writerow(["reference", "site", "link"])
    for invitation in invitations:
        participant = invitation.participant
        writer.writerow([participant.reference, participant.site.code, invitation.url])
    return "\ufeff" + out.getvalue()


# --- Replacing links -------------------------------------------------------------------


def participant_replace_links(
    *,
    participants: Iterable[Participant],
    by: AbstractBaseUser | AnonymousUser | None = None,
) -> list[Invitation]:
    """Revoke and replace: each participant gets a new link under the current key, and
    their earlier links (the derived one and any from before) stop working at once. The
    act is recorded in each participant's history ("invitation link reissued", by ``by``:
    a user, or ``None`` for a command or the system). Refused, changing nothing, if any of
    them is erased or withdrawn (a new link would give them back a way in)."""
    participants = list(participants)
    ids = list(dict.fromkeys(p.pk for p in participants))
    kid, key = current_key()
    now = timezone.now()
    tokens_by_id: dict[int, str] = {}
    with transaction.atomic():
        for batch in _batches(ids):
            locked = list(
                Participant.objects.select_for_update().filter(pk__in=batch).order_by("pk")
            )
            if ErasureRecord.objects.filter(participant_id__in=batch).exists():
                raise ParticipantErased()
            if any(p.status != Participant.Status.ACTIVE for p in locked):
                raise ParticipantWithdrawn()
            rows = []
            for participant in locked:
                nonce = new_nonce()
                token = derive_token(key, nonce)
                tokens_by_id[participant.pk] = token
                participant.token_hash = hash_token(token)
                participant.token_issued_at = now
                rows.append(ParticipantLink(participant_id=participant.pk, nonce=nonce, key_id=kid))
            LegacyLink.objects.filter(participant_id__in=batch).delete()
            ParticipantLink.objects.filter(participant_id__in=batch).delete()
            ParticipantLink.objects.bulk_create(rows)
            user = by if by is not None and by.is_authenticated else None
            with recorded_by(user):
                # One UPDATE and one INSERT of historical rows (which keep the time, never
                # the hash).
                bulk_update_with_history(
                    locked,
                    Participant,
                    ["token_hash", "token_issued_at"],
                    batch_size=BATCH,
                    default_user=user,
                    default_change_reason=Reason.LINK_REISSUED.value,
                    default_date=now,
                )
    for participant in participants:  # the caller's instances, as stored now
        participant.token_hash = hash_token(tokens_by_id[participant.pk])
        participant.token_issued_at = now
    return [Invitation(participant=p, token=tokens_by_id[p.pk]) for p in participants]


def participant_drop_links(*, participant: Participant) -> None:
    """No link of the participant's can be rendered again and no earlier one works:
    erasure's part (``surveys/erasure.py``), which also replaces the hash."""
    ParticipantLink.objects.filter(participant=participant).delete()
    LegacyLink.objects.filter(participant=participant).delete()
