"""Scheduler runs racing on a real PostgreSQL (two beats, a redelivered task): four runs
started together over a campaign of 30 participants create each invitation once; the
unique (campaign, participant, step, fallback) and ON CONFLICT DO NOTHING decide.

Each racer is a thread with its own connection, released together by a barrier (as in
``tests/fieldwork/test_sending_concurrency.py``)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, time
from typing import Any

import pytest
from django.db import connections

from fieldwork.campaigns import scheduling
from fieldwork.campaigns.rules import JAPAN
from fieldwork.models import Campaign, Delivery
from tests.factories import ParticipantFactory
from tests.fieldwork.conftest import with_contact

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT = 60
NOW = datetime(2026, 6, 1, 18, 0, tzinfo=JAPAN)


def race(runs: int) -> list[Any]:
    barrier = threading.Barrier(runs, timeout=JOIN_TIMEOUT)
    outcomes: list[Any] = [None] * runs

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = scheduling.campaigns_run(now=NOW)
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a run is still going: deadlock?"
    return outcomes


def test_racing_runs_create_each_message_once(site):
    people = [with_contact(site, email=f"p{n}@example.jp") for n in range(20)]
    people += [ParticipantFactory(site=site) for _ in range(10)]  # the letter list
    campaign = Campaign.objects.create(
        study=site.study,
        name="案内",
        starts_at=NOW,
        quiet_from=time(21),
        quiet_until=time(8),
        active=True,
    )

    outcomes = race(4)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    made = Counter(Delivery.objects.filter(campaign=campaign).values_list("participant_id", "step"))
    assert made == Counter({(p.pk, 0): 1 for p in people})
