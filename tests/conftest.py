"""Test set-up shared by the whole suite.

Tests marked ``postgres`` need PostgreSQL. Locally, without ``DATABASE_URL`` pointing at
PostgreSQL, they are skipped; in CI (``CI=true``) they fail instead, so that CI can never
pass by silently skipping them.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, reference_instrument

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        message = f"needs PostgreSQL (DATABASE_URL); the database is {connection.vendor}"
        if IN_CI:
            pytest.fail(f"CI must run PostgreSQL tests: {message}", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def study(db):  # type: ignore[no-untyped-def]
    """An open study with the reference questionnaire published."""
    study = StudyFactory()
    reference_instrument(study)
    return study


@pytest.fixture
def site(study):  # type: ignore[no-untyped-def]
    return SiteFactory(study=study)


@pytest.fixture
def participant(site):  # type: ignore[no-untyped-def]
    """A participant of an open site; ``participant.token`` is the plain token."""
    return ParticipantFactory(site=site)
