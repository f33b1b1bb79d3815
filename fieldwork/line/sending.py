"""Sending LINE deliveries: what the task runs (``fieldwork/tasks.py``), as the e-mail
channel's ``fieldwork/sending.py`` does, with its claim (one compare-and-set UPDATE of a
batch: ``queued`` → ``sending``), recovery of rows a dead worker left ``sending``,
backoff and attempts.

Each delivery is pushed to its participant's linked LINE account with the delivery's
``X-Line-Retry-Key`` (``client.retry_key``): a push retried after a timeout, or sent again
after a worker died between LINE accepting it and the row being marked, is answered 409 by
LINE and never shown twice. 429, 5xx and no connection wait and retry; 400/401/403 (a
user who blocked the account, a bad token) fail with LINE's words as the reason, and so
does a participant with no linked account: the next channel's turn.

With LINE off (no secret and token) every due LINE delivery fails at once with that reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .. import selectors, sending
from ..models import Delivery
from . import client, messages

logger = logging.getLogger(__name__)

LINE_OFF = "LINE is not configured (LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN)"
BATCH = 200


def due_line_ids(*, now: datetime, ids: Sequence[int] | None = None, limit: int) -> list[int]:
    """Queued LINE deliveries due by ``now`` (among ``ids``, if given), oldest first."""
    queryset = Delivery.objects.filter(
        channel=Delivery.Channel.LINE, status=Delivery.Status.QUEUED, due_at__lte=now
    )
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    return list(queryset.order_by("due_at", "pk").values_list("pk", flat=True)[:limit])


def line_deliveries_send(
    *, ids: Sequence[int] | None = None, now: datetime | None = None
) -> sending.SendReport:
    """Push the due LINE deliveries (among ``ids``, if given). See the module docstring."""
    report = sending.SendReport()
    report.recovered = sending.deliveries_recover(now=now)
    report.cancelled = sending._cancel_unreachable(now=now)
    done: set[int] = set()
    while True:
        batch = [
            pk
            for pk in due_line_ids(now=now or timezone.now(), ids=ids, limit=BATCH)
            if pk not in done
        ]
        if not batch:
            return report
        done.update(batch)
        mine = set(sending.claim_batch(batch, now=now))
        report.skipped.extend(pk for pk in batch if pk not in mine)
        if not client.enabled():
            for pk in sorted(mine):
                sending._finish(pk, Delivery.Status.FAILED, reason=LINE_OFF)
                report.failed.append(pk)
            continue
        with client.Client() as line:
            for delivery in selectors.deliveries_for_sending(sorted(mine)):
                _send_one(line, delivery, report, now=now)


def _send_one(
    line: client.Client, delivery: Delivery, report: sending.SendReport, *, now: datetime | None
) -> None:
    pk = delivery.pk
    try:
        push = messages.build(delivery)
    except (messages.Undeliverable, ValueError) as exc:
        sending._finish(pk, Delivery.Status.FAILED, reason=str(exc))
        report.failed.append(pk)
        return
    try:
        message_id = line.push(
            to=push.to,
            messages=push.messages,
            retry_key=client.retry_key(pk, delivery.created_at),
        )
    # Only what LINE or the network says; anything else (a time limit, a bug) leaves the
    # row "sending", for the recovery to take back (the same retry key then).
    except client.SendFailed as exc:
        failure = exc.failure
        if failure.transient and delivery.attempts < settings.HYOKA_DELIVERY_MAX_ATTEMPTS:
            sending._retry(delivery, failure.reason, now=now)
            report.retrying.append(pk)
        else:
            reason = failure.reason
            if failure.transient:
                reason = f"gave up after {delivery.attempts} attempts: {reason}"
            sending._finish(pk, Delivery.Status.FAILED, reason=reason)
            report.failed.append(pk)
        logger.warning("LINE delivery %s not sent: %s", pk, failure.reason)
        return
    sending._finish(pk, Delivery.Status.SENT, message_id=message_id)
    report.sent.append(pk)
