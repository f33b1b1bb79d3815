"""The health check of a kept database connection (config/postgresql/base.py).

Production keeps each web thread's connection for ``CONN_MAX_AGE`` and checks it before a
request uses it. When the server has dropped it (a restart, a failover, an administrator's
``pg_terminate_backend``), the next request must get a new connection, not a 503 for
a participant who did nothing wrong."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from surveys.models import Participant
from tests.celery_worker import test_database_url as database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def terminate(pid: int) -> None:
    """End a backend from another connection and wait until the server has let it go."""
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):
            row = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            if row is None:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} still there")


def test_a_live_connection_is_usable():
    connection.ensure_connection()
    assert connection.is_usable()
    assert Participant.objects.count() == 0  # and it still answers queries


def test_a_connection_the_server_dropped_is_found_and_replaced(participant):
    connection.ensure_connection()
    dropped = connection.connection.info.backend_pid
    terminate(dropped)

    assert not connection.is_usable()
    # What Django does when the next request starts; its first query checks the connection.
    close_old_connections()
    assert Participant.objects.get().pk == participant.pk
    assert connection.connection.info.backend_pid != dropped
