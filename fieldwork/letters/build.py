"""From participants to ``Letter`` values: the database side of the printed letters.

The rest of ``fieldwork.letters`` is the pure renderer (no ORM); this module reads the
participants with what a letter needs and maps each to a ``Letter``:

- the addressee and the address: the participant's contact (``postal_name``, and
  ``postal_address`` one line per line), in the contact's language (or the caller's);
- the sender block: the site's ``Sender`` (its display name, then its postal block in the
  letter's language);
- the purpose: the study has no purpose field of its own, so its name and its
  description in the letter's language (the other language's if that one is empty);
- the deadline: the last day the site's questionnaire is open (the day before it closes
  if it closes at midnight), or the caller's ``deadline`` if the site has no closing date;
- the link: ``surveys.links.invitations`` (the participant's one stable link);
- with LINE on and ``LINE_OFFICIAL_ACCOUNT_ID`` set, the participant's LINE link code
  (``fieldwork.line.codes.for_invitation``: computed from the link just given, no query)
  and the official account; else (or when the participant's LINE account is linked
  already) no LINE paragraph.

A participant who cannot get a letter is skipped with a reason (returned, never raised),
and no letter of theirs is made: withdrawn, erased, already submitted, no sender, no
deadline, questionnaire closed, no name or address, a link that cannot be given, or an
address the envelope window cannot show. Everything is read in a fixed number of
queries, whatever the number of participants (plus a few per thousand for the links).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from surveys.errors import LinkUnavailable
from surveys.links import Invitation, invitations
from surveys.models import ErasureRecord, Language, Participant, Response

from ..line import codes
from ..models import Contact, Sender
from .letter import Letter


class Skip:
    """Why a participant got no letter (``Built.skipped`` maps them to these)."""

    WITHDRAWN = "withdrawn"
    ERASED = "erased"
    SUBMITTED = "submitted"
    NO_ADDRESS = "no postal address"
    NO_NAME = "no name on letters"
    NO_SENDER = "no sender block"
    NO_DEADLINE = "no deadline"
    CLOSED = "questionnaire closed"
    NO_LINK = "no link"
    UNPRINTABLE = "address does not fit"


# What a manager reads for each reason (the command and the admin's messages).
SKIP_WORDS = {
    Skip.WITHDRAWN: _("withdrawn"),
    Skip.ERASED: _("personal data erased"),
    Skip.SUBMITTED: _("already answered"),
    Skip.NO_ADDRESS: _("no postal address"),
    Skip.NO_NAME: _("no name for letters"),
    Skip.NO_SENDER: _("the site has no sender block for letters"),
    Skip.NO_DEADLINE: _("the site's questionnaire has no closing date (the deadline)"),
    Skip.CLOSED: _("the site's questionnaire has closed"),
    Skip.NO_LINK: _("the link cannot be given"),
    Skip.UNPRINTABLE: _("the name or address does not fit the letter"),
}


@dataclass(frozen=True)
class Skipped:
    participant_id: int
    reference: str
    reason: str  # a ``Skip`` value
    detail: str = ""  # for UNPRINTABLE and NO_LINK: what exactly is wrong


@dataclass
class Built:
    """The letters, in print order (study, site, reference), with the participant of each,
    and the participants skipped."""

    letters: list[Letter] = field(default_factory=list)
    participant_ids: list[int] = field(default_factory=list)  # one per letter, same order
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def skipped_counts(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)


def deadline_of(closes_at: dt.datetime | None) -> dt.date | None:
    """The last day a questionnaire closing at ``closes_at`` can be answered, in the
    project's time zone: closing at 00:00 on the 16th makes the 15th the deadline."""
    if closes_at is None:
        return None
    return timezone.localdate(closes_at - dt.timedelta(microseconds=1))


def _purpose(study: object, language: str) -> str:
    other = "ja" if language == "en" else "en"
    name = getattr(study, f"name_{language}") or getattr(study, f"name_{other}")
    description = getattr(study, f"description_{language}") or getattr(
        study, f"description_{other}"
    )
    return f"{name}\n\n{description}" if description.strip() else name


def _sender_lines(sender: Sender, language: str) -> tuple[str, ...]:
    block = tuple(
        line.strip() for line in sender.postal_block(language).splitlines() if line.strip()
    )
    if not block:
        return ()
    name = sender.display_name(language).strip()
    return block if not name or block[0] == name else (name, *block)


def letters_build(
    participants: Iterable[Participant | int],
    *,
    language: str | None = None,
    deadline: dt.date | None = None,
    dated: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Built:
    """The letters of ``participants`` (instances or ids), each in the contact's language
    unless ``language`` is given (the study's default language for a participant without
    one). ``deadline`` is used for sites without a closing date. See the module docstring."""
    if language is not None and language not in Language.values:
        raise ValueError(f"unknown language {language!r}")
    now = now or timezone.now()
    ids = list(dict.fromkeys(p if isinstance(p, int) else p.pk for p in participants))
    rows = list(
        Participant.objects.filter(pk__in=ids)
        .select_related("site__study", "site__sender")
        .annotate(
            erased=Exists(ErasureRecord.objects.filter(participant_id=OuterRef("pk"))),
            submitted=Exists(
                Response.objects.filter(
                    participant_id=OuterRef("pk"), status=Response.Status.SUBMITTED
                )
            ),
        )
        .order_by("site__study__code", "site__code", "reference", "pk")
    )
    contacts = {c.participant_id: c for c in Contact.objects.filter(participant_id__in=ids)}
    built = Built()
    ready: list[tuple[Participant, Contact, Sender]] = []
    for p in rows:
        contact = contacts.get(p.pk)
        sender: Sender | None = getattr(p.site, "sender", None)
        reason = (
            Skip.WITHDRAWN
            if p.status != Participant.Status.ACTIVE
            else Skip.ERASED
            if p.erased  # type: ignore[attr-defined]
            else Skip.SUBMITTED
            if p.submitted  # type: ignore[attr-defined]
            else Skip.NO_ADDRESS
            if contact is None or not contact.postal_address.strip()
            else Skip.NO_NAME
            if not contact.postal_name.strip()
            else Skip.NO_SENDER
            if sender is None or not sender.postal_block_ja.strip()
            else Skip.CLOSED
            if p.site.survey_closes_at is not None and p.site.survey_closes_at <= now
            else Skip.NO_DEADLINE
            if p.site.survey_closes_at is None and deadline is None
            else None
        )
        if reason is not None:
            built.skipped.append(Skipped(p.pk, p.reference, reason))
            continue
        assert contact is not None and sender is not None
        ready.append((p, contact, sender))
    links = _links([p for p, _c, _s in ready], built)
    account = settings.LINE_OFFICIAL_ACCOUNT_ID or None
    for one, contact, sender in ready:
        if one.pk not in links:
            continue
        # Already linked in LINE: the code would link nothing new.
        line_code = (
            codes.for_invitation(links[one.pk]) if account and not contact.line_user_id else None
        )
        lang = language or contact.language or one.site.study.default_language
        try:
            letter = Letter(
                reference=one.reference,
                addressee_name=contact.postal_name,
                address_lines=tuple(contact.postal_address.splitlines()),
                sender_lines=_sender_lines(sender, lang),
                purpose=_purpose(one.site.study, lang),
                deadline=deadline_of(one.site.survey_closes_at) or deadline,  # type: ignore[arg-type]
                link=links[one.pk].url,
                language=lang,
                dated=dated,
                line_code=line_code,
                line_account=account if line_code else None,
            )
        except ValueError as exc:
            built.skipped.append(Skipped(one.pk, one.reference, Skip.UNPRINTABLE, str(exc)))
            continue
        built.letters.append(letter)
        built.participant_ids.append(one.pk)
    return built


def _links(participants: list[Participant], built: Built) -> dict[int, Invitation]:
    """The links of ``participants``; one that cannot be given is skipped, with why."""
    try:
        return {i.participant.pk: i for i in invitations(participants)}
    except LinkUnavailable as exc:
        refused = {int(pk): message for pk, message in exc.errors.items()}
        for p in participants:
            if p.pk in refused:
                built.skipped.append(
                    Skipped(p.pk, p.reference, Skip.NO_LINK, str(refused[p.pk] or exc.message))
                )
        rest = [p for p in participants if p.pk not in refused]
        return _links(rest, built) if rest else {}
