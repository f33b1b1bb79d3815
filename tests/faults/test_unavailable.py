"""In-process: what participants, API clients and probes get when the database cannot be
reached (config/errors.py, config/health.py). The real outage, with a web server whose
database connection is cut, is tests/faults/test_database_down.py."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client, override_settings

from surveys.models import Response

pytestmark = pytest.mark.django_db

REFUSED = OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


class DatabaseGoneMiddleware:
    """Fails every request before any view runs, as a session or an authentication
    middleware does when it reads the database."""

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request):  # type: ignore[no-untyped-def]
        raise InterfaceError("connection already closed")


@pytest.fixture
def browser() -> Client:
    # Like a real server: exceptions become the 500 handler's answer, not test errors.
    return Client(raise_request_exception=False)


@pytest.fixture
def database_down():  # type: ignore[no-untyped-def]
    with mock.patch("surveys.views.link_for_token", side_effect=REFUSED):
        yield


def assert_try_again_page(page, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert page.status_code == 503
    assert page["Retry-After"] == "120"
    assert "no-store" in page["Cache-Control"]
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    for word in words:
        assert word in text, word
    assert "<script" not in text and "style=" not in text  # the CSP allows neither


def test_a_participant_sees_a_try_again_page_in_japanese(browser, participant, database_down):
    page = browser.get(f"/r/{participant.token}/")

    assert_try_again_page(page, 'lang="ja"', "しばらくしてから", "もう一度")


def test_the_try_again_page_speaks_english_when_asked(browser, participant, database_down):
    page = browser.get(f"/r/{participant.token}/?lang=en")

    assert_try_again_page(page, 'lang="en"', "Please try again shortly", 'href="">Try again')


def test_a_submission_that_cannot_reach_the_database_gets_the_page_and_stores_nothing(
    browser, participant
):
    form = {"action": "submit", "channels": ["night"], "reassured": "agree"}
    with mock.patch("surveys.views.response_submit", side_effect=REFUSED):
        page = browser.post(f"/r/{participant.token}/", form)

    assert_try_again_page(page, "送信")
    assert "もう一度試す" not in page.content.decode()  # go back to the form: no reload
    assert not Response.objects.exists()


def test_a_middleware_losing_the_database_gets_the_page_too(browser, participant, settings):
    with override_settings(
        MIDDLEWARE=["tests.faults.test_unavailable.DatabaseGoneMiddleware", *settings.MIDDLEWARE]
    ):
        page = browser.get(f"/r/{participant.token}/?lang=en")

    assert_try_again_page(page, "Please try again shortly")


def test_any_other_error_is_still_the_500_page(browser, participant):
    with mock.patch("surveys.views.link_for_token", side_effect=RuntimeError("bug")):
        page = browser.get(f"/r/{participant.token}/")

    assert page.status_code == 500
    assert "Retry-After" not in page


def test_an_api_client_gets_the_json_error_shape_with_503(browser, participant):
    with mock.patch("surveys.api.views.response_for_participant", side_effect=REFUSED):
        answer = browser.get(
            f"/api/v1/invitations/{participant.token}/", headers={"Accept-Language": "en"}
        )

    assert answer.status_code == 503
    assert answer["Retry-After"] == "120"
    assert answer.json() == {
        "error": {
            "code": "service_unavailable",
            "message": "The service is briefly unavailable. Please try again shortly.",
            "fields": {},
        }
    }


def test_the_api_error_is_japanese_by_default(browser, participant):
    with mock.patch("surveys.api.views.response_for_participant", side_effect=REFUSED):
        answer = browser.get(f"/api/v1/invitations/{participant.token}/")

    assert answer.status_code == 503
    assert "しばらく" in answer.json()["error"]["message"]


def test_an_api_bug_is_a_json_500(browser, participant):
    with mock.patch("surveys.api.views.response_for_participant", side_effect=RuntimeError):
        answer = browser.get(f"/api/v1/invitations/{participant.token}/")

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "server_error"


# --- /healthz ---------------------------------------------------------------------------


def test_healthz_says_everything_is_up(browser, settings):
    answer = browser.get("/healthz")

    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"] or "no-cache" in answer["Cache-Control"]
    expected_broker = "embedded" if settings.CELERY_TASK_ALWAYS_EAGER else "up"
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": "up", "broker": expected_broker, "cache": "up"},
    }


def test_healthz_answers_503_naming_the_database_when_it_is_down(browser):
    with mock.patch("config.health.connections") as connections:
        connections.__getitem__.return_value.cursor.side_effect = REFUSED
        answer = browser.get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["checks"]["database"] == "down"


def test_healthz_reports_a_broker_down_without_failing_the_instance(browser, settings):
    from tests.faults.processes import free_port

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    answer = browser.get("/healthz")

    # Participants can still submit (the backstop scores later): the instance serves.
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "degraded",
        "checks": {"database": "up", "broker": "down", "cache": "up"},
    }


def test_healthz_reports_a_cache_down_as_unavailable(browser):
    with mock.patch("config.health.cache") as cache:
        cache.set.side_effect = ConnectionError("refused")
        answer = browser.get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["checks"]["cache"] == "down"


def test_healthz_tells_no_secret(browser, settings):
    text = browser.get("/healthz").content.decode()

    database = settings.DATABASES["default"]
    for secret in (settings.SECRET_KEY, str(database["NAME"]), settings.CELERY_BROKER_URL):
        assert secret not in text


def test_healthz_needs_no_login_and_takes_only_get_and_head(browser):
    assert browser.get("/healthz").status_code == 200
    assert browser.head("/healthz").status_code == 200
    assert browser.post("/healthz").status_code == 405


def test_a_cache_that_does_not_answer_is_a_503_for_the_api_too(browser, participant):
    import redis

    with mock.patch(
        "rest_framework.throttling.SimpleRateThrottle.allow_request",
        side_effect=redis.exceptions.ConnectionError("Error 111 connecting"),
    ):
        answer = browser.get(f"/api/v1/invitations/{participant.token}/")

    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "service_unavailable"
