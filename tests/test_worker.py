"""A real Celery worker on a real broker runs the project's task code.

The worker is ``celery -A config worker`` in a subprocess, as in production, consuming
from a queue of its own (so that no other worker on the same broker takes the task), with
a Redis result backend so that the test sees the task finish. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import states
from celery.backends.redis import RedisBackend
from django.conf import settings

from config.celery import app
from surveys.tasks import ping

BASE_DIR = Path(__file__).resolve().parent.parent
RESULT_TIMEOUT = 60  # seconds: a prefork worker starts in 2 to 5 s here
STOP_TIMEOUT = 30


def wait_for_result(backend: RedisBackend, task_id: str, log: Path) -> dict:
    """The task's stored state once it is final, polled (no pub/sub connection to leak)."""
    deadline = time.monotonic() + RESULT_TIMEOUT
    while True:
        meta = backend.get_task_meta(task_id)
        if meta["status"] in states.READY_STATES:
            return meta
        if time.monotonic() > deadline:
            pytest.fail(
                f"no result in {RESULT_TIMEOUT} s (last state {meta['status']}); "
                f"worker log:\n{log.read_text()}"
            )
        time.sleep(0.2)


def test_ping_runs_in_process_as_the_embedded_mode_does():
    assert ping.apply().get(timeout=1) == "pong"


def test_autodiscovery_registers_the_surveys_tasks():
    app.loader.import_default_modules()
    assert "hyoka.ping" in app.tasks


@pytest.mark.redis
def test_a_real_worker_runs_a_task_end_to_end(tmp_path):
    broker = settings.CELERY_BROKER_URL
    queue = f"hyoka-test-{uuid.uuid4().hex}"
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "CELERY_RESULT_BACKEND": broker}
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        f"--queues={queue}",
        f"--hostname={queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    backend = RedisBackend(app=app, url=broker)
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # An explicit connection, closed on leaving, rather than the app's producer pool.
        with app.connection_for_write() as connection:
            task_id = ping.apply_async(queue=queue, connection=connection).id
        meta = wait_for_result(backend, task_id, log_path)
        assert meta["status"] == states.SUCCESS, meta
        assert meta["result"] == "pong"
        backend.forget(task_id)
    finally:
        # SIGTERM is Celery's warm shutdown: finish the task in hand, then exit 0.
        worker.send_signal(signal.SIGTERM)
        try:
            returncode = worker.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(STOP_TIMEOUT)
            pytest.fail(f"the worker did not stop in {STOP_TIMEOUT} s:\n{log_path.read_text()}")
        finally:
            with redis.Redis.from_url(broker) as client:
                client.delete(queue, f"_kombu.binding.{queue}")
            backend.client.connection_pool.disconnect()

    output = log_path.read_text()
    assert returncode == 0, output
    assert ". hyoka.ping" in output  # the worker found the task by autodiscovery
    assert "succeeded" in output
