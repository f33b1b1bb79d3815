"""A real headless Chromium and a live server, for the browser tests.

Uses Debian's /usr/bin/chromium (never a downloaded browser). Without it the tests are
skipped locally and fail in CI (CI=true), so that CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
# thread with a running loop unless told that this is deliberate (it is: tests only).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def server(transactional_db):  # type: ignore[no-untyped-def]
    """A live server for this test alone. pytest-django's ``live_server`` lives for the
    whole session, so a request still in flight (an autosave) can hold a database
    session past the test and keep PostgreSQL from dropping the test database
    (pytest-django issue #454)."""
    from pytest_django.live_server_helper import LiveServer

    live = LiveServer("127.0.0.1:0", start=False)
    if live.thread.connections_override:
        live.thread.server_class = _OneRequestAtATime
    live.start()
    try:
        yield live
    finally:
        _stop(live)


class _OneRequestAtATime(ThreadedWSGIServer):
    """The live server for SQLite's in-memory test database, whose one connection every
    request thread shares: one request at a time, as SQLite's IMMEDIATE transactions
    queue writers in the embedded mode (where each thread has its own connection).

    Without it two overlapping requests (the autosave after a change and the save as the
    page is hidden) ran their transactions interleaved on the shared connection: each
    saw no response yet, and the second insert failed its unique participant."""

    _lock = threading.Lock()

    def set_app(self, application):  # type: ignore[no-untyped-def]
        def one_at_a_time(environ, start_response):  # type: ignore[no-untyped-def]
            with self._lock:
                return application(environ, start_response)

        super().set_app(one_at_a_time)


def _stop(live) -> None:  # type: ignore[no-untyped-def]
    """Stop the server, wait for its request threads, and only then take back the
    in-memory SQLite connection they shared.

    pytest-django's ``LiveServer.stop()`` takes the connection back first, and Django's
    request threads are daemons that nobody waits for: a request still finishing (an
    autosave, a favicon) then closed the connection from a thread no longer allowed to
    use it, and died leaving its socket open (both errors under ``filterwarnings =
    error``, on SQLite only: PostgreSQL connections are per thread)."""
    live.thread.terminate()
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=30)
    for connection in live.thread.connections_override.values():
        connection.dec_thread_sharing()


@pytest.fixture
def browser(server):  # type: ignore[no-untyped-def]
    """Headless Chromium. It needs the server so that it is closed first: an open
    keep-alive connection would hold a request thread of the server past its stop."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (make system-deps)"
        if IN_CI:
            pytest.fail(f"CI must run the browser test, but {message}", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # Inside Playwright's sync API the test's ORM calls run in a greenlet, with a
            # database connection of their own (Django keeps one per context): close it
            # here, in that context, or it outlives the test database's teardown.
            connections.close_all()
