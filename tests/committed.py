"""Data built once and committed, shared by the tests of a module that only read it.

Building the reference study (229 responses) or a signed PDF takes seconds; doing it once
per module instead of once per test is most of what keeps the suite fast. The data is
committed before the module's first test that asks for it; each test still runs in a
transaction rolled back after it (pytest-django's ``db``), so tests change the data freely
and never see each other's changes. After the module every table is flushed, as after any
transactional test. (An outer transaction around the module would be neater, but a
transactional test or a closed connection would end it.)

Data ``private_to`` a fixture is seen only by the tests that ask for that fixture: another
test of the module starts with the tables emptied, as it would have without the shared data
(it may well load the reference study itself). A transactional test always starts from
empty tables (it commits, and wipes everything when it ends). Either way the fixture built
on ``committed`` then finds its rows gone and builds them again inside its test's own
transaction, as it did before it was shared (see ``reference_study`` in conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import transaction

# Whether committed data is in the tables (of this process's test database), and the
# fixture it is private to, if any.
_live = False
_private_to: str | None = None


def flush() -> None:
    global _live
    call_command("flush", interactive=False, verbosity=0)
    _live = False


@contextlib.contextmanager
def committed(django_db_blocker, *, private_to: str | None = None) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Database access outside any test, tasks in-process (the embedded mode: nothing built
    here may reach a real broker), and every table flushed on leaving."""
    from config.celery import app

    global _live, _private_to
    eager = app.conf.task_always_eager
    with django_db_blocker.unblock():
        _live, _private_to = True, private_to
        app.conf.task_always_eager = True
        try:
            yield
        finally:
            app.conf.task_always_eager = eager
            flush()


@contextlib.contextmanager
def without_after_commit_work() -> Iterator[None]:
    """Commit what the block writes, but drop the work it asks for after the commit (the
    scoring runs that submissions request): a test's own transaction never commits, so the
    data is then the same as if each test had built it."""
    with transaction.atomic():
        yield
        transaction.get_connection().run_on_commit.clear()


TRANSACTIONAL = ("transactional_db", "live_server")


def flush_unless_wanted(request: pytest.FixtureRequest, django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """Empty the tables before a test that must not see the committed data."""
    if not _live:
        return
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in names for name in TRANSACTIONAL
    )
    uses_database = marker is not None or "db" in names or transactional
    unwanted = _private_to is not None and _private_to not in names
    if transactional or (uses_database and unwanted):
        with django_db_blocker.unblock():
            flush()
