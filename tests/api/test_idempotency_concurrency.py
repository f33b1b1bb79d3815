"""Retries racing each other on a real PostgreSQL: a submission sent several times at once
with the same Idempotency-Key makes one response, and every request gets it (201 for the
one that stored it, 200 for the others); a racer with another key is refused (409).

Each racer is a thread with its own connection, released together by a barrier (as in
``tests/surveys/test_concurrency.py``), so the participant's row lock is what is tested.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections
from rest_framework.test import APIClient

from surveys.models import Response
from tests.factories import ParticipantFactory, complete_answers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT = 30


def race(token: str, keys: list[str]) -> list[Any]:
    barrier = threading.Barrier(len(keys), timeout=JOIN_TIMEOUT)
    outcomes: list[Any] = [None] * len(keys)
    body = {"answers": complete_answers()}

    def run(i: int, key: str) -> None:
        try:
            client = APIClient()
            barrier.wait()
            outcomes[i] = client.post(
                f"/api/v1/invitations/{token}/submission/",
                body,
                format="json",
                headers={"Idempotency-Key": key},
            )
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(keys)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racer is still running: deadlock?"
    return outcomes


def test_racing_retries_with_one_key_make_one_response(site):
    cache.clear()
    participant = ParticipantFactory(site=site)
    outcomes = race(participant.token, ["same-key"] * 6)
    statuses = sorted(o.status_code for o in outcomes)
    assert statuses == [200, 200, 200, 200, 200, 201], outcomes
    ids = {o.json()["id"] for o in outcomes}
    assert len(ids) == 1
    assert Response.objects.filter(participant=participant).count() == 1
    assert Response.objects.get(participant=participant).idempotency_key == "same-key"


def test_a_racer_with_another_key_is_refused_or_wins_alone(site):
    cache.clear()
    participant = ParticipantFactory(site=site)
    outcomes = race(participant.token, ["a", "a", "a", "b"])
    by_key: dict[str, list[int]] = {"a": [], "b": []}
    for key, outcome in zip(["a", "a", "a", "b"], outcomes, strict=True):
        by_key[key].append(outcome.status_code)
    stored = Response.objects.get(participant=participant).idempotency_key
    if stored == "a":
        assert sorted(by_key["a"]) == [200, 200, 201] and by_key["b"] == [409]
    else:
        assert by_key["b"] == [201] and by_key["a"] == [409, 409, 409]
