"""Workers racing over the same deliveries on a real PostgreSQL: four senders started
together over the same 30 queued e-mails (a task delivered twice, the beat sweep and the
admin's task at once) send each message exactly once; the compare-and-set claim decides.

Each racer is a thread with its own connection, released together by a barrier (as in
``tests/surveys/test_concurrency.py``)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connections

from fieldwork import sending, services
from fieldwork.models import Delivery
from tests.committed import without_after_commit_work

from .conftest import with_contact

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT = 60


def race(runs: int, ids: list[int] | None) -> list[Any]:
    barrier = threading.Barrier(runs, timeout=JOIN_TIMEOUT)
    outcomes: list[Any] = [None] * runs

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = sending.email_deliveries_send(ids=ids if i % 2 else None)
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a sender is still running: deadlock?"
    return outcomes


def test_racing_senders_send_every_message_exactly_once(smtp, sender, site, settings):
    settings.HYOKA_EMAIL_BATCH_SIZE = 7  # several batches each
    people = [with_contact(site, email=f"p{n}@example.jp") for n in range(30)]
    with without_after_commit_work():  # queued, but no task sends them before the race
        queued = services.email_deliveries_queue(participants=people)

    outcomes = race(4, queued.ids)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    sent_by_reports = sorted(pk for o in outcomes for pk in o.sent)
    assert sent_by_reports == sorted(queued.ids)  # each claimed and sent by one sender
    received = Counter(str(m["To"]) for m in smtp.messages())
    assert received == Counter({f"p{n}@example.jp": 1 for n in range(30)})
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
