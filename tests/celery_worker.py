"""Start and stop a real ``celery -A config worker`` process for tests (bounded waits)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import kombu.pools
from django.db import connection

from config.celery import app
from tests.faults.processes import redis_server

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 30


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    queue: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> list[int]:
        """The main process and its pool children (the worker is its own process group)."""
        pgid = self.process.pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":  # fields: state, ppid, pgrp
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL the whole worker at once, as the kernel's OOM killer or a lost machine
        would: no warm shutdown, no child reporting back, nothing acknowledged."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.pids():
            if time.monotonic() > deadline:
                raise AssertionError(f"worker processes {self.pids()} survived SIGKILL")
            time.sleep(0.1)


def test_database_url() -> str:
    """The URL of the database this test runs on, for a worker in another process."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@contextlib.contextmanager
def own_broker(directory: Path) -> Iterator[str]:
    """A Redis of the test's own (a private ``redis-server``), used by this process's
    Celery app and by the workers the test starts; yields its URL.

    Kombu keeps every worker's unacknowledged messages, their index and the lock of the
    redelivery scan in fixed keys of the broker's database (``unacked``,
    ``unacked_index``, ``unacked_mutex``): on a shared Redis, any other worker, test run
    or program on the machine that uses them can take, restore or delete a message this
    test waits for. A broker of its own shares nothing."""
    with redis_server(directory) as server:
        url = server.url()
        saved = os.environ.get("CELERY_BROKER_URL")
        _publish_to(url)
        assert app.conf.broker_url == url
        try:
            yield url
        finally:
            _publish_to(saved)


def _publish_to(url: str | None) -> None:
    """Point this process's Celery app at ``url`` (None: back to the settings'). Celery
    takes ``CELERY_BROKER_URL`` from the environment before its settings; the connection
    and producer pools were made for the old broker (the app keeps them until a fork,
    ``Celery._after_fork``). Those pools live in kombu's process-wide registry, keyed by
    the broker's address: closing one there would leave the registry handing the closed
    pool to the next task sent to that broker ("Acquire on closed pool"), so the registry
    is emptied instead (``kombu.pools.reset`` closes and forgets every pool)."""
    kombu.pools.reset()
    if url is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = url
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def celery_worker(
    queue: str, log_path: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[Worker]:
    """A worker consuming ``queue`` on this process's broker (``own_broker``'s, inside
    one), unless ``extra_env`` names another ``CELERY_BROKER_URL``."""
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": app.conf.broker_url,
        **(extra_env or {}),
    }
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
        f"--hostname={queue}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    with log_path.open("ab") as log:
        # A process group of its own, so that Worker.kill() reaches the pool children too.
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process=process, log_path=log_path, queue=queue)
    try:
        yield worker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s. Worker log:\n{log()}")
        time.sleep(0.2)
