"""The beat's service: what is due becomes deliveries. Read top to bottom:

1. Queued messages of participants who must get nothing more (submitted, withdrew,
   erased) are cancelled (the receivers do it at once; this catches what they missed).
2. For each active campaign that has started, its participants (its sites, active, not
   erased, not submitted, in its audience) with their progress (``rules.Progress``) from
   the campaign's deliveries; ``rules.next_message`` says what is due.
3. What is due by ``now`` becomes a queued delivery on the participant's first channel,
   sent at ``rules.send_at`` (never inside the quiet hours). A failed delivery becomes one
   on the next channel (``rules.next_channel``): the failed row stays with its reason, and
   after the last channel the participant is on the letter list.
4. A letter still on the print list (queued, unprinted) that a new message to the same
   participant replaces is withdrawn in the same transaction (``rules.outdated_letters``):
   cancelled with ``OUTDATED_LETTER`` as its reason. An unprinted letter counts as gone out
   at its due time, so it never holds the next reminder back.
5. Rows are inserted with ON CONFLICT DO NOTHING against the unique (campaign,
   participant, step, fallback): two runs at once never create a message twice.

The e-mail and LINE sweeps (beat, every minute) send what is queued; queued letters are the
letter list. A stopped campaign creates nothing, and what it had queued is cancelled
(``services.campaign_deliveries_cancel``); a step cancelled so is due again when it runs
again, its new row taking the next free ``fallback`` number. A submission or withdrawal
cancels what is queued; no further step is created for such a participant, since step 2
no longer selects them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from surveys.models import ErasureRecord, Participant, Response

from .. import sending
from ..models import Campaign, Contact, Delivery
from . import rules
from .rules import LETTER, Due, Unprinted

OUTDATED_LETTER = "withdrawn unprinted: a newer message to the participant replaces it"


def campaign_rules(campaign: Campaign) -> rules.Rules:
    return rules.Rules(
        starts_at=campaign.starts_at,
        reminder_after=timedelta(days=campaign.reminder_after_days),
        max_reminders=campaign.max_reminders,
        quiet=quiet_hours(campaign),
    )


def quiet_hours(campaign: Campaign) -> rules.QuietHours:
    return rules.QuietHours(start=campaign.quiet_from, end=campaign.quiet_until)


def channel_order(campaign: Campaign) -> list[str]:
    return [c for c in campaign.channel_order.split(",") if c]


def participants_of(campaign: Campaign) -> QuerySet[Participant]:
    """Whom ``campaign`` still writes to: its sites' active participants, not erased, not
    submitted, in its audience."""
    sites = list(campaign.sites.values_list("pk", flat=True))
    rows = Participant.objects.filter(
        site__study_id=campaign.study_id, status=Participant.Status.ACTIVE
    ).exclude(Exists(ErasureRecord.objects.filter(participant_id=OuterRef("pk"))))
    if sites:
        rows = rows.filter(site_id__in=sites)
    responses = Response.objects.filter(participant_id=OuterRef("pk"))
    rows = rows.exclude(Exists(responses.filter(status=Response.Status.SUBMITTED)))
    if campaign.audience == Campaign.Audience.NOT_STARTED:
        rows = rows.exclude(Exists(responses))
    elif campaign.audience == Campaign.Audience.DRAFTS:
        rows = rows.filter(Exists(responses.filter(status=Response.Status.DRAFT)))
    return rows


@dataclass(frozen=True)
class Planned:
    """A participant's next message in a campaign (``due.at`` may be in the future)."""

    participant_id: int
    reference: str
    site_id: int
    due: Due
    channel: str
    # 0, or past the rows of this step cancelled while the campaign was stopped.
    fallback: int = 0


@dataclass
class Plan:
    upcoming: list[Planned] = field(default_factory=list)
    # Failed deliveries, the channel that takes over from each, and its row's fallback.
    fallthroughs: list[tuple[Delivery, str, int]] = field(default_factory=list)
    # The letters on the print list of the participants above, by participant id.
    unprinted: dict[int, list[Unprinted]] = field(default_factory=dict)


def campaign_plan(
    *, campaign: Campaign, due_by: datetime | None = None, limit: int | None = None
) -> Plan:
    """The next messages in ``campaign`` (those due by ``due_by``, or the ``limit`` soonest),
    and what takes over from each failed delivery. Reads only; ``campaigns_run`` writes.
    Contact details are decrypted only for the participants a channel is chosen for."""
    people = list(
        participants_of(campaign)
        .select_related("site")
        .only("pk", "reference", "site_id", "site__survey_closes_at")
        .order_by("pk")
    )
    chosen = participants_of(campaign).values("pk")
    mine: dict[int, list[Delivery]] = defaultdict(list)
    for d in Delivery.objects.filter(campaign=campaign, participant_id__in=chosen).only(
        "pk", "participant_id", "step", "fallback", "channel", "kind", "status"
    ):
        mine[d.participant_id].append(d)
    last = dict(
        Delivery.objects.filter(participant_id__in=chosen)
        .filter(
            Q(status=Delivery.Status.SENT)
            | Q(channel=LETTER, status=Delivery.Status.QUEUED)  # on the letter list
        )
        .values("participant_id")
        .annotate(at=Max(Coalesce("sent_at", "due_at")))
        .values_list("participant_id", "at")
    )
    timing = campaign_rules(campaign)
    dues: list[tuple[Participant, Due, int]] = []
    failed: list[tuple[Delivery, int]] = []
    for person in people:
        rows = mine.get(person.pk, [])
        due = rules.next_message(timing, progress(rows, last.get(person.pk), person))
        if due is not None and (due_by is None or due.at <= due_by):
            free = 1 + max((d.fallback for d in rows if d.step == due.step), default=-1)
            dues.append((person, due, free))
        handover = _handover(rows)
        if handover is not None:
            failed.append(handover)
    if limit is not None:
        dues = sorted(dues, key=lambda row: (row[1].at, row[0].pk))[:limit]
    reach = _reach({p.pk for p, _, _ in dues} | {d.participant_id for d, _ in failed})
    order = channel_order(campaign)
    plan = Plan()
    for person, due, free in dues:
        has_line, has_email = reach.get(person.pk, (False, False))
        channel = rules.next_channel(order, after=None, has_line=has_line, has_email=has_email)
        assert channel is not None  # the letter, at worst
        plan.upcoming.append(
            Planned(person.pk, person.reference, person.site_id, due, channel, fallback=free)
        )
    for d, free in failed:
        has_line, has_email = reach.get(d.participant_id, (False, False))
        after = rules.next_channel(order, after=d.channel, has_line=has_line, has_email=has_email)
        if after is not None:
            plan.fallthroughs.append((d, after, free))
    plan.unprinted = _unprinted(
        {p.participant_id for p in plan.upcoming}
        | {d.participant_id for d, _, _ in plan.fallthroughs}
    )
    return plan


def _unprinted(ids: set[int]) -> dict[int, list[Unprinted]]:
    """The letters on the print list (of any campaign) of the participants ``ids``."""
    found: dict[int, list[Unprinted]] = defaultdict(list)
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        for pk, participant_id, due_at in Delivery.objects.filter(
            participant_id__in=ordered[start : start + 1000],
            channel=LETTER,
            status=Delivery.Status.QUEUED,
        ).values_list("pk", "participant_id", "due_at"):
            found[participant_id].append(Unprinted(pk, due_at))
    return dict(found)


def _reach(ids: set[int]) -> dict[int, tuple[bool, bool]]:
    """(LINE linked, e-mail known) by participant id. A linked LINE account has its blind
    index; only the address is decrypted."""
    found: dict[int, tuple[bool, bool]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        for c in Contact.objects.filter(participant_id__in=ordered[start : start + 1000]).only(
            "participant_id", "line_user_index", "email"
        ):
            found[c.participant_id] = (bool(c.line_user_index), bool(c.email))
    return found


def _handover(rows: list[Delivery]) -> tuple[Delivery, int] | None:
    """The failed delivery another channel must take over from, with the fallback number
    of its successor: when every live row of the participant's latest step failed."""
    live = [d for d in rows if d.status != Delivery.Status.CANCELLED]
    if not live:
        return None
    step = max(d.step for d in live)
    of_step = [d for d in live if d.step == step]
    if any(d.status != Delivery.Status.FAILED for d in of_step):
        return None
    last = max(of_step, key=lambda d: d.fallback)
    return last, 1 + max(d.fallback for d in rows if d.step == step)


def progress(
    rows: list[Delivery], last_message_at: datetime | None, person: Participant
) -> rules.Progress:
    """A participant's ``rules.Progress`` from their deliveries in the campaign. A step
    whose every row was cancelled (the campaign was stopped before it went out) counts as
    not yet begun: it is due again once the campaign runs again."""
    rows = [d for d in rows if d.status != Delivery.Status.CANCELLED]
    steps = 1 + max((d.step for d in rows), default=-1)
    latest = [d for d in rows if d.step == steps - 1]
    settled = any(
        d.status == Delivery.Status.SENT
        or (d.channel == LETTER and d.status == Delivery.Status.QUEUED)
        for d in latest
    )
    return rules.Progress(
        steps=steps,
        settled=settled,
        last_message_at=last_message_at,
        closes_at=person.site.survey_closes_at,
    )


@dataclass
class RunReport:
    created: int = 0
    fell_through: int = 0
    cancelled: int = 0
    withdrawn: int = 0  # unprinted letters a newer message replaced


def campaigns_run(*, now: datetime) -> RunReport:
    """Turn what is due by ``now`` in every active campaign into deliveries (see the
    module docstring). Safe to run twice at once."""
    report = RunReport(cancelled=sending._cancel_unreachable(now=now))
    campaigns = Campaign.objects.filter(active=True, starts_at__lte=now).order_by("pk")
    for campaign in campaigns:
        created, fell, withdrawn = campaign_run(campaign=campaign, now=now)
        report.created += created
        report.fell_through += fell
        report.withdrawn += withdrawn
    return report


def campaign_run(*, campaign: Campaign, now: datetime) -> tuple[int, int, int]:
    """One campaign's due messages and fallthroughs, in one transaction: (new messages,
    new fallthroughs, unprinted letters withdrawn), as far as this run changed them."""
    quiet = quiet_hours(campaign)
    plan = campaign_plan(campaign=campaign, due_by=now)
    new = [
        Delivery(
            campaign=campaign,
            participant_id=p.participant_id,
            step=p.due.step,
            fallback=p.fallback,
            channel=p.channel,
            kind=p.due.kind,
            due_at=rules.send_at(p.due, quiet, now),
        )
        for p in plan.upcoming
    ]
    fallen = [
        Delivery(
            campaign=campaign,
            participant_id=failed.participant_id,
            step=failed.step,
            fallback=free,
            channel=channel,
            kind=failed.kind,
            due_at=quiet.outside(now),
        )
        for failed, channel, free in plan.fallthroughs
    ]
    if not new and not fallen:
        return 0, 0, 0
    outdated: set[int] = set()
    for d in [*new, *fallen]:
        unprinted = plan.unprinted.get(d.participant_id, [])
        outdated.update(rules.outdated_letters(unprinted, replaced_at=d.due_at))
    rows = Delivery.objects.filter(campaign=campaign)
    with transaction.atomic():
        # First, so that a new letter does not meet the old one still pending (the database
        # allows one pending letter per participant and kind). A letter being printed right
        # now (claimed) is left alone: it is going out.
        withdrawn = Delivery.objects.filter(pk__in=outdated, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.CANCELLED, finished_at=now, last_error=OUTDATED_LETTER
        )
        before = rows.count()
        # ON CONFLICT DO NOTHING: a row another run inserted first (or a message of the same
        # kind still pending on that channel) is left alone; the next run looks again.
        Delivery.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        middle = rows.count()
        Delivery.objects.bulk_create(fallen, batch_size=1000, ignore_conflicts=True)
        after = rows.count()
    return middle - before, after - middle, withdrawn


def campaign_upcoming(*, campaign: Campaign, limit: int = 50) -> list[Planned]:
    """The next messages of ``campaign``, soonest first (for the admin)."""
    return campaign_plan(campaign=campaign, limit=limit).upcoming
