"""Schemathesis over the OpenAPI schema: for every operation, generated requests, valid
(positive) and invalid (negative) ones, as a superuser with a real token, against the
small world of ``conftest.py``. No answer may be a server error or contradict the schema
(status code, content type, headers, body).

The schema is loaded from the Django WSGI app (``schemathesis.openapi.from_wsgi``); each
operation is one test, driven by Hypothesis through ``operation.as_strategy()``
(schemathesis' own pytest plugin does not run under pytest 9 yet).
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from knox.models import AuthToken
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from config.wsgi import application
from tests.api.conftest import World

MAX_EXAMPLES = 10

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def _keep_connection():  # type: ignore[no-untyped-def]
    """Schemathesis calls the WSGI app directly, not through Django's test client, so the
    request signals would close the test's connection (and end its transaction, which
    PostgreSQL notices); the test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 40
    assert {o.label for o in OPERATIONS} >= {
        "POST /api/v1/invitations/{token}/submission/",
        "GET /api/v1/responses/export/",
        "POST /api/v1/runs/",
        "POST /api/v1/evaluations/{id}/sign-off/",
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.label)
def test_the_api_keeps_to_its_schema(world: World, _keep_connection, operation, mode) -> None:  # type: ignore[no-untyped-def]
    _, token = AuthToken.objects.create(user=world.users["superuser"])
    headers = {"Authorization": f"Token {token}"}
    # A random invitation token only ever finds the 404 (tests/api/test_invitations.py
    # covers it): fuzz the questionnaire endpoints with a real participant's token.
    fixed = {}
    if "{token}" in operation.path:
        fixed["path_parameters"] = {"token": world.participants["setagaya_waiting"].token}

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        if operation.label == "POST /api/v1/auth/logout/":
            return  # it would revoke the token the other examples use
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
