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

import redis
from django.conf import settings
from django.db import connection

from config.celery import app

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
def own_queue() -> Iterator[str]:
    """A queue of this test's own: tasks sent meanwhile go only to its workers."""
    queue = f"hyoka-test-{uuid.uuid4().hex[:12]}"
    saved = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = saved
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
            queue, f"_kombu.binding.{queue}", "unacked", "unacked_index"
        )


@contextlib.contextmanager
def celery_worker(
    queue: str, log_path: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[Worker]:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
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
