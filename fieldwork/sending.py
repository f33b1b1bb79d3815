"""Sending e-mail deliveries: what the task runs (``tasks.py``), read top to bottom.

1. **Recover** rows left ``sending`` past ``HYOKA_DELIVERY_SENDING_TIMEOUT``: their worker
   died (or was killed, or hit its time limit, or an error that is not a mail server's
   answer) after claiming them. They are queued again; one whose every attempt ended so
   fails once ``HYOKA_DELIVERY_MAX_ATTEMPTS`` is reached.
2. **Cancel** due rows whose participant must get nothing more (submitted, withdrew,
   erased): ``receivers.py`` cancels them when that happens; this catches what a
   receiver could not (it runs after the submission commits, and a process can die in
   between).
3. **Claim** a batch of due rows with one compare-and-set UPDATE (``queued`` →
   ``sending`` where still queued and reachable, stamped with this claim's random token,
   then read back by it): a row another worker claimed first is not among them, so two
   workers never send the same row. Then, one row after the other: **send** it, **mark**
   it ``sent`` (or failed, or queued again). The links of the batch are rendered in a
   few queries (``surveys.links.participant_links``): a message costs one UPDATE.
4. An SMTP **4xx** or a connection problem queues the row again with a backoff
   (1, 2, 4 … minutes, at most an hour) until ``HYOKA_DELIVERY_MAX_ATTEMPTS``, then it
   fails; a **5xx** fails it at once; each with the server's words as the reason.

**At least once, not exactly once.** Between the SMTP server accepting a message and
step 3's "sent" being committed there is a window (milliseconds, or the time a worker takes
to die): a worker killed inside it leaves the row ``sending``, and step 1 sends it again
after the timeout. The rest of its batch, claimed but never tried, is sent after the
timeout too: late, but once. The resent message carries the same Message-ID
(``channels.email.message_id``), so that it is recognisably the same message. No message is
ever lost: a row is only ever ``sent`` after the server accepted it.

The provider's rate limit (``HYOKA_EMAIL_RATE_PER_SECOND``) paces the sends of a process.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from surveys.errors import LinkUnavailable
from surveys.links import participant_links

from . import selectors
from .campaigns.rules import QuietHours
from .channels import email
from .models import Delivery

logger = logging.getLogger(__name__)

REASON_MAX = Delivery._meta.get_field("last_error").max_length or 500  # type: ignore[union-attr]
NO_LONGER_REACHABLE = "cancelled: the participant submitted, withdrew or was erased"


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # claimed by someone else, or cancelled
    recovered: int = 0
    cancelled: int = 0


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def email_deliveries_send(
    *, ids: Sequence[int] | None = None, now: datetime | None = None
) -> SendReport:
    """Send the due e-mail deliveries (among ``ids``, if given) in batches of
    ``HYOKA_EMAIL_BATCH_SIZE``, each on one SMTP connection. See the module docstring."""
    report = SendReport()
    report.recovered = deliveries_recover(now=now)
    report.cancelled = _cancel_unreachable(now=now)
    pace = Pacer(settings.HYOKA_EMAIL_RATE_PER_SECOND)
    done: set[int] = set()
    while True:
        batch = [
            pk
            for pk in selectors.due_email_ids(
                now=now or timezone.now(), ids=ids, limit=settings.HYOKA_EMAIL_BATCH_SIZE
            )
            if pk not in done
        ]
        if not batch:
            return report
        done.update(batch)
        if not _send_batch(batch, report, pace, now=now):
            return report  # the connection is gone: the rest waits for the next run


def _send_batch(batch: list[int], report: SendReport, pace: Pacer, *, now: datetime | None) -> bool:
    mine = set(claim_batch(batch, now=now))
    report.skipped.extend(pk for pk in batch if pk not in mine)
    deliveries = selectors.deliveries_for_sending(sorted(mine))
    links = _links(deliveries)
    tried: set[int] = set()
    with email.Transport() as transport:
        for delivery in deliveries:
            pk = delivery.pk
            tried.add(pk)
            try:
                message = email.build(delivery, link=links.get(delivery.participant_id))
            except email.Undeliverable as exc:
                _finish(pk, Delivery.Status.FAILED, reason=str(exc))
                report.failed.append(pk)
                continue
            pace.wait()
            try:
                transport.send(message)
            # Only what a mail server or the network says; anything else (a time limit, a
            # bug) leaves the rows "sending", for the recovery to take back.
            except (smtplib.SMTPException, OSError) as exc:
                failure = email.classify(exc)
                if failure.transient and delivery.attempts < settings.HYOKA_DELIVERY_MAX_ATTEMPTS:
                    _retry(delivery, failure.reason, now=now)
                    report.retrying.append(pk)
                else:
                    reason = failure.reason
                    if failure.transient:
                        reason = f"gave up after {delivery.attempts} attempts: {reason}"
                    _finish(pk, Delivery.Status.FAILED, reason=reason)
                    report.failed.append(pk)
                logger.warning("e-mail delivery %s not sent: %s", pk, failure.reason)
                if failure.connection_lost:
                    # The rest of the batch goes back to the queue, as it was.
                    _release([d.pk for d in deliveries if d.pk not in tried])
                    return False
                continue
            _finish(pk, Delivery.Status.SENT, message_id=email.message_id(pk))
            report.sent.append(pk)
    return True


def _links(deliveries: list[Delivery]) -> dict[int, str]:
    """The participants' links, in a few queries for the batch; one that cannot be given
    is left out (its delivery fails with the reason: ``email.build``)."""
    participants = [d.participant for d in deliveries]
    try:
        return participant_links(participants)
    except LinkUnavailable as exc:
        refused = {int(pk) for pk in exc.errors}
        return participant_links(p for p in participants if p.pk not in refused)


def claim_batch(ids: Sequence[int], *, now: datetime | None = None) -> list[int]:
    """``queued`` → ``sending`` for those of ``ids`` still queued and whose participant is
    still reachable, in one UPDATE: the ids this call took (only they may be sent). The
    conditions are on the updated table itself (``selectors.no_longer_reachable``), so
    that of two racing claims only one changes a row."""
    token = uuid.uuid4().hex
    Delivery.objects.filter(pk__in=list(ids), status=Delivery.Status.QUEUED).exclude(
        selectors.no_longer_reachable()
    ).update(
        status=Delivery.Status.SENDING,
        claimed_at=now or timezone.now(),
        claim=token,
        attempts=F("attempts") + 1,
    )
    return list(
        Delivery.objects.filter(claim=token, status=Delivery.Status.SENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def claim(delivery_id: int, *, now: datetime | None = None) -> bool:
    """Claim one row: True if this call took it."""
    return claim_batch([delivery_id], now=now) == [delivery_id]


def _release(ids: list[int]) -> None:
    """Rows claimed but not tried (the connection went first): queued again as they were."""
    Delivery.objects.filter(pk__in=ids, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED, claimed_at=None, attempts=F("attempts") - 1
    )


def _finish(pk: int, status: str, *, reason: str = "", message_id: str = "") -> None:
    when = timezone.now()
    values: dict = {"status": status, "finished_at": when, "last_error": reason[:REASON_MAX]}
    if status == Delivery.Status.SENT:
        values.update(sent_at=when, provider_message_id=message_id)
    Delivery.objects.filter(pk=pk, status=Delivery.Status.SENDING).update(**values)


def _retry(delivery: Delivery, reason: str, *, now: datetime | None) -> None:
    due = (now or timezone.now()) + backoff(delivery.attempts)
    campaign = delivery.campaign if delivery.campaign_id else None
    if campaign is not None:  # a campaign's message is never due inside its quiet hours
        due = QuietHours(start=campaign.quiet_from, end=campaign.quiet_until).outside(due)
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED,
        due_at=due,
        last_error=reason[:REASON_MAX],
        claimed_at=None,
    )


def deliveries_recover(*, now: datetime | None = None) -> int:
    """Queue again the rows left ``sending`` past the timeout (a worker died holding them)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.HYOKA_DELIVERY_SENDING_TIMEOUT)
    stuck = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=cutoff)
    most = settings.HYOKA_DELIVERY_MAX_ATTEMPTS
    # A row whose every attempt ended this way (a message that kills its worker) fails.
    stuck.filter(attempts__gte=most).update(
        status=Delivery.Status.FAILED,
        finished_at=now or timezone.now(),
        last_error=f"gave up after {most} attempts: the worker stopped while sending",
    )
    recovered = stuck.filter(attempts__lt=most).update(
        status=Delivery.Status.QUEUED, claimed_at=None
    )
    if recovered:
        logger.warning(
            "%d deliveries were left sending by a worker that stopped; queued again "
            "(they may be received twice, with the same Message-ID)",
            recovered,
        )
    return recovered


def _cancel_unreachable(*, now: datetime | None) -> int:
    return (
        Delivery.objects.filter(status=Delivery.Status.QUEUED)
        .filter(selectors.no_longer_reachable())
        .update(
            status=Delivery.Status.CANCELLED,
            finished_at=now or timezone.now(),
            last_error=NO_LONGER_REACHABLE,
        )
    )


class Pacer:
    """At most ``rate`` sends per second from this process (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval
