"""Answering with an invitation token (a LINE mini-app or another front end): the web
questionnaire's rules (drafts, validation, once-only submission), no login, no CSRF, the
same 404 for every invalid token, and idempotent retries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from surveys import services
from surveys.models import Response
from tests.factories import ParticipantFactory, complete_answers


def url(token: str, what: str = "") -> str:
    return f"/api/v1/invitations/{token}/" + (f"{what}/" if what else "")


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def submit(client, token, answers=None, key=None, language=None):  # type: ignore[no-untyped-def]
    headers = {"Idempotency-Key": key} if key is not None else {}
    if language:
        headers["Accept-Language"] = language
    body = {"answers": complete_answers() if answers is None else answers}
    return client.post(url(token, "submission"), body, format="json", headers=headers)


def test_the_questionnaire_comes_with_its_questions_and_no_response_yet(client, participant):
    response = client.get(url(participant.token), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    body = response.json()
    assert body["site"]["code"] == participant.site.code
    assert body["site"]["survey_open"] is True
    assert body["response"] is None
    questions = body["instrument"]["questions"]
    assert [q["code"] for q in questions] == [
        "channels",
        "reassured",
        "continue",
        "reuse",
        "understood",
        "tool",
    ]
    understood = questions[4]
    assert understood["condition"] == {
        "question": "channels",
        "choices": ["anytime", "midwife_chat", "night"],
    }
    assert [c["code"] for c in questions[1]["choices"]] == [
        "agree",
        "somewhat_agree",
        "somewhat_disagree",
        "disagree",
    ]
    assert questions[1]["choices"][0]["label"] == questions[1]["choices"][0]["label_en"]


def test_a_draft_is_kept_and_comes_back(client, participant):
    saved = client.put(
        url(participant.token, "draft"), {"answers": {"reassured": "agree"}}, format="json"
    )
    assert saved.status_code == 200
    assert saved.json()["status"] == "draft"
    assert saved.json()["answers"] == {"reassured": "agree"}
    state = client.get(url(participant.token)).json()
    assert state["response"]["status"] == "draft"
    assert state["response"]["answers"] == {"reassured": "agree"}
    assert Response.objects.get(participant=participant).source == "api"


def test_an_invalid_draft_stores_nothing(client, participant):
    saved = client.put(
        url(participant.token, "draft"),
        {"answers": {"reassured": "maybe", "channels": ["none", "anytime"]}},
        format="json",
    )
    assert saved.status_code == 400
    error = saved.json()["error"]
    assert error["code"] == "answers_invalid"
    assert set(error["fields"]) == {"reassured", "channels"}
    assert not Response.objects.filter(participant=participant, answers__isnull=False).exists()


def test_a_submission_is_stored_once_and_a_second_one_is_refused(client, participant):
    first = submit(client, participant.token)
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "submitted"
    assert body["source"] == "api"
    assert body["answers"]["tool"] == "line"
    assert first["Location"] == url(participant.token)
    second = submit(client, participant.token, complete_answers(tool="phone"))
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "already_submitted"
    stored = Response.objects.get(participant=participant)
    assert services.response_draft_answers(stored)["tool"] == "line"
    draft = client.put(url(participant.token, "draft"), {"answers": {}}, format="json")
    assert draft.status_code == 409


def test_an_incomplete_submission_names_the_missing_answers_and_submits_nothing(
    client, participant
):
    response = submit(client, participant.token, {"channels": ["none"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "answers_invalid"
    # "understood" is shown only to online users: with "none" it is not asked.
    assert set(error["fields"]) == {"reassured", "continue", "reuse", "tool"}
    assert not Response.objects.filter(participant=participant, status="submitted").exists()


def test_a_retry_with_the_same_key_gets_the_same_response(client, participant):
    first = submit(client, participant.token, key="retry-1")
    assert first.status_code == 201
    retry = submit(client, participant.token, key="retry-1")
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    assert retry["Idempotent-Replayed"] == "true"
    assert Response.objects.filter(participant=participant).count() == 1
    other = submit(client, participant.token, key="retry-2")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "already_submitted"
    no_key = submit(client, participant.token)
    assert no_key.status_code == 409


def test_a_key_reused_for_other_answers_is_refused(client, participant):
    assert submit(client, participant.token, key="k").status_code == 201
    changed = submit(client, participant.token, complete_answers(tool="email"), key="k")
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "日本語"])
def test_a_malformed_key_is_refused_before_anything_is_stored(client, participant, key):
    response = client.post(
        url(participant.token, "submission"),
        {"answers": complete_answers()},
        format="json",
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert not Response.objects.filter(participant=participant).exists()


def test_the_same_404_whatever_is_wrong_with_the_token(client, participant, site, settings):
    # Twenty-odd failed lookups from one address: more than the limit on failures
    # (tests/surveys/test_token_attempts.py tests the limit itself).
    settings.HYOKA_TOKEN_FAILURE_RATE = "100/m"
    withdrawn = ParticipantFactory(site=site)
    services.participant_withdraw(participant=withdrawn)
    replaced = ParticipantFactory(site=site)
    old_token = replaced.token
    services.participant_replace_links(participants=[replaced])
    tokens = [
        "A" * 43,  # well formed, unknown
        "short",
        "x" * 44,
        "a+b=c" + "A" * 38,
        "%00",
        withdrawn.token,
        old_token,
    ]
    for method, what in [("get", ""), ("put", "draft"), ("post", "submission")]:
        bodies = set()
        for token in tokens:
            response = getattr(client, method)(
                url(token, what), {"answers": complete_answers()}, format="json"
            )
            assert response.status_code == 404, (token, method)
            bodies.add(response.content)
        assert len(bodies) == 1, bodies
    # A token with a slash leaves the route: the catch-all answers the same body.
    assert client.get("/api/v1/invitations/a/b/").content in bodies
    assert not Response.objects.filter(participant__in=[withdrawn, replaced]).exists()


def test_a_closed_site_refuses_answers_but_shows_the_state(client, participant):
    site = participant.site
    site.survey_opens_at = timezone.now() - dt.timedelta(days=10)
    site.survey_closes_at = timezone.now() - dt.timedelta(days=1)
    site.save()
    state = client.get(url(participant.token))
    assert state.status_code == 200
    assert state.json()["site"]["survey_open"] is False
    for response in [
        client.put(url(participant.token, "draft"), {"answers": {}}, format="json"),
        submit(client, participant.token, key="closed"),
    ]:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "survey_closed"
    assert not Response.objects.filter(participant=participant).exists()


def test_no_login_and_no_csrf_token_are_needed_even_with_a_session(participant):
    """The token endpoints do not use the session, so a logged-in browser without a CSRF
    token is neither refused nor treated as its user."""
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("someone", password="pw-123456789"))
    response = submit(browser, participant.token)
    assert response.status_code == 201
    # The manager API, by contrast, enforces CSRF on a session.
    refused = browser.post("/api/v1/runs/", {"study": participant.site.study_id}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]


def test_messages_follow_accept_language(client, participant):
    submit(client, participant.token)
    english = submit(client, participant.token, language="en")
    japanese = submit(client, participant.token)
    assert english.json()["error"]["message"] == "This questionnaire has already been submitted."
    assert japanese.json()["error"]["message"] == "このアンケートは回答済みです。"


def test_answers_of_the_wrong_shape_are_a_400_not_a_500(client, participant):
    for body in [
        {"answers": {"channels": {"nested": "dict"}}},
        {"answers": {"reassured": [["a"]]}},
        {"answers": {"tool": True}},
        {"answers": "not a dict"},
        {"answers": None},
        {},
        [],
        {"answers": {}, "language": "fr"},
    ]:
        response = client.post(url(participant.token, "submission"), body, format="json")
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] in {"invalid", "answers_invalid"}
    broken = client.post(
        url(participant.token, "submission"), b"{not json", content_type="application/json"
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "parse_error"


def test_draft_saves_past_the_links_limit_answer_429_with_retry_after(
    client, participant, settings
):
    settings.HYOKA_DRAFT_SAVE_RATE = "2/m"
    for _ in range(2):
        assert (
            client.put(url(participant.token, "draft"), {"answers": {}}, format="json").status_code
            == 200
        )
    refused = client.put(
        url(participant.token, "draft"),
        {"answers": {"reuse": "agree"}},
        format="json",
        headers={"Accept-Language": "en"},
    )
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert (error["code"], error["fields"]) == ("throttled", {})
    # REST framework adds the wait to the message, as for every throttle.
    assert error["message"].startswith(
        "Your answers are being saved too often. Wait a minute, then save again."
    )
    assert not Response.objects.get(participant=participant).answers.exists()
    assert submit(client, participant.token).status_code == 201
