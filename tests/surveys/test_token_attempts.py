"""Invitation tokens under attack: every invalid token answers the same, failed lookups are
slowed down per client address, valid links never are, and a spoofed X-Forwarded-For
changes nothing (surveys/token_attempts.py, config/client_ip.py)."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from config.api.throttling import AnonRateThrottle
from config.client_ip import client_ip
from surveys import services
from surveys.models import Response
from tests.factories import ParticipantFactory, complete_answers


@pytest.fixture
def bad_tokens(site):  # type: ignore[no-untyped-def]
    """One token of each kind that must not work: unknown, malformed, withdrawn, replaced."""
    withdrawn = ParticipantFactory(site=site)
    services.participant_withdraw(participant=withdrawn)
    replaced = ParticipantFactory(site=site)
    old_token = replaced.token
    services.participant_replace_links(participants=[replaced])
    return {
        "unknown": "A" * 43,
        "too short": "short",
        "too long": "x" * 44,
        "outside the alphabet": "a+b=c" + "A" * 38,
        "withdrawn participant": withdrawn.token,
        "reissued link": old_token,
    }


def _seen(response) -> tuple:  # type: ignore[no-untyped-def]
    """Status, body, headers and cookies. Where there is an Expires header (never_cache:
    "now") it moves with the clock, so only its presence is compared."""
    headers = dict(response.headers)
    expires = headers.pop("Expires", None) is not None
    cookies = sorted((k, v.OutputString()) for k, v in response.cookies.items())
    return (
        response.status_code,
        response.content,
        tuple(sorted(headers.items())),
        expires,
        tuple(cookies),
    )


@pytest.mark.parametrize("query", ["", "?lang=en"])
def test_the_questionnaire_answers_every_invalid_token_byte_for_byte_the_same(
    bad_tokens, settings, query
):
    settings.HYOKA_TOKEN_FAILURE_RATE = "100/m"  # this test is about the 404, not the limit
    for method in ("get", "post"):
        seen = set()
        for token in bad_tokens.values():
            response = getattr(Client(), method)(f"/r/{token}/{query}", {"action": "submit"})
            assert response.status_code == 404
            seen.add(_seen(response))
        assert len(seen) == 1, seen


def test_the_api_answers_every_invalid_token_byte_for_byte_the_same(bad_tokens, settings):
    settings.HYOKA_TOKEN_FAILURE_RATE = "100/m"
    body = {"answers": complete_answers()}
    for method, path in [("get", ""), ("put", "draft/"), ("post", "submission/")]:
        seen = set()
        for token in bad_tokens.values():
            response = getattr(APIClient(), method)(
                f"/api/v1/invitations/{token}/{path}", body, format="json"
            )
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
            seen.add(_seen(response))
        assert len(seen) == 1, seen


def test_a_used_token_still_shows_the_thank_you_page_and_refuses_a_second_submission(
    participant, settings
):
    settings.HYOKA_TOKEN_FAILURE_RATE = "1/m"
    services.response_submit(participant=participant, answers=complete_answers(), language="ja")
    client = Client()
    for _attempt in range(3):  # never counted as failures: the token is valid
        assert client.get(f"/r/{participant.token}/").status_code == 200
        again = client.post(f"/r/{participant.token}/", {"action": "submit", **complete_answers()})
        assert again.status_code == 409
        assert "ご回答ありがとうございました" in again.content.decode()
        api = APIClient().post(
            f"/api/v1/invitations/{participant.token}/submission/",
            {"answers": complete_answers()},
            format="json",
        )
        assert api.status_code == 409
        assert api.json()["error"]["code"] == "already_submitted"
    assert Response.objects.filter(participant=participant).count() == 1


def test_past_the_limit_failed_lookups_get_a_translated_429_with_retry_after(bad_tokens, settings):
    settings.HYOKA_TOKEN_FAILURE_RATE = "3/m"
    client = Client()
    tokens = list(bad_tokens.values())
    assert [client.get(f"/r/{t}/").status_code for t in tokens[:3]] == [404, 404, 404]

    refused = client.get(f"/r/{tokens[3]}/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "1分ほどお待ち" in refused.content.decode()
    assert refused.headers["Cache-Control"].startswith("max-age=0")
    english = client.get(f"/r/{tokens[4]}/?lang=en")
    assert english.status_code == 429
    assert "Please wait a minute" in english.content.decode()
    # The API counts in the same place and answers its own error shape.
    api = APIClient().get(f"/api/v1/invitations/{tokens[5]}/", headers={"Accept-Language": "en"})
    assert api.status_code == 429
    assert int(api["Retry-After"]) >= 1
    error = api.json()["error"]
    assert error["code"] == "throttled"
    assert error["message"].startswith("Too many invalid invitation links")


def test_a_valid_link_is_never_slowed_and_costs_no_rate_limit_round_trip(
    participant, bad_tokens, settings, monkeypatch
):
    settings.HYOKA_TOKEN_FAILURE_RATE = "2/m"
    client = Client()
    for token in list(bad_tokens.values())[:3]:
        client.get(f"/r/{token}/")
    assert client.get("/r/" + "B" * 43 + "/").status_code == 429  # this address is over

    # From the same address, the participant's own link works as ever, and neither the
    # questionnaire nor the API touches the rate limit's counters to serve it.
    cache = caches["default"]
    keys: list[str] = []
    for name in ("add", "get", "set", "incr", "get_many", "set_many", "touch", "has_key"):
        real = getattr(cache, name)

        def spy(key, *args, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            keys.extend(key if isinstance(key, list | tuple | dict) else [key])
            return _real(key, *args, **kwargs)

        monkeypatch.setattr(cache, name, spy)
    counted: list[object] = []
    monkeypatch.setattr("surveys.views.failed_lookup", counted.append)
    monkeypatch.setattr("surveys.api.views.failed_lookup", counted.append)
    # A draft save is counted by its own limit, per link (surveys/draft_saves.py), never
    # by the address: set apart here.
    saves: list[object] = []
    monkeypatch.setattr("surveys.views.draft_save_wait", lambda r, p: saves.append(p))

    token = participant.token
    assert client.get(f"/r/{token}/").status_code == 200
    saved = client.post(f"/r/{token}/", {"action": "save", "reassured": "agree"})
    assert saved.status_code == 303
    api = APIClient()
    assert api.get(f"/api/v1/invitations/{token}/").status_code == 200
    submitted = client.post(f"/r/{token}/", {"action": "submit", **complete_answers()})
    assert submitted.status_code == 303
    assert counted == []
    assert not [k for k in keys if str(k).startswith("rl:")]  # django-ratelimit's keys
    assert saves == [participant]


def test_each_address_has_its_own_count(bad_tokens, settings):
    settings.HYOKA_TOKEN_FAILURE_RATE = "2/m"
    token = bad_tokens["unknown"]
    first, second = Client(REMOTE_ADDR="192.0.2.1"), Client(REMOTE_ADDR="192.0.2.2")
    assert [first.get(f"/r/{token}/").status_code for _ in range(3)] == [404, 404, 429]
    assert second.get(f"/r/{token}/").status_code == 404


def test_without_a_proxy_a_spoofed_x_forwarded_for_does_not_reset_the_count(bad_tokens, settings):
    settings.HYOKA_TOKEN_FAILURE_RATE = "2/m"
    settings.TRUSTED_PROXIES = []
    token = bad_tokens["unknown"]
    statuses = [
        Client(HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").get(f"/r/{token}/").status_code
        for n in range(4)
    ]
    assert statuses == [404, 404, 429, 429]


def test_a_client_that_reaches_the_server_around_the_proxy_cannot_forward(bad_tokens, settings):
    """Proxies are configured, but this peer is not one of them: its X-Forwarded-For is
    its own invention, whatever it says (even the proxy's address, or a chain)."""
    settings.HYOKA_TOKEN_FAILURE_RATE = "2/m"
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    token = bad_tokens["unknown"]
    forged = ["198.51.100.1", "10.0.0.5", "198.51.100.2, 10.0.0.5", "2001:db8::1"]
    statuses = [
        Client(REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR=f).get(f"/r/{token}/").status_code
        for f in forged
    ]
    assert statuses == [404, 404, 429, 429]
    # Behind the real proxy, another client still has its own count.
    honest = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert honest.get(f"/r/{token}/").status_code == 404


def test_behind_a_proxy_only_the_address_the_proxy_added_is_counted(bad_tokens, settings):
    settings.HYOKA_TOKEN_FAILURE_RATE = "2/m"
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    token = bad_tokens["unknown"]

    def attempt(forwarded: str) -> int:
        client = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded)
        return client.get(f"/r/{token}/").status_code

    # The client writes a new left-most address each time; the proxy appends the real one.
    assert [attempt(f"198.51.100.{n}, 203.0.113.7") for n in range(4)] == [404, 404, 429, 429]
    # Another client behind the same proxy has its own count.
    assert attempt("203.0.113.8") == 404


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        # No proxy: the header is the client's own.
        ([], "192.0.2.10", "198.51.100.1", "192.0.2.10"),
        # Proxies named, but the peer is not one: the header is the client's own.
        (["10.0.0.5"], "192.0.2.10", "198.51.100.1", "192.0.2.10"),
        (["10.0.0.0/8"], "192.0.2.10", "10.0.0.5", "192.0.2.10"),
        # One proxy: the entry it appended, never the client-written ones to its left.
        (["10.0.0.5"], "10.0.0.5", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        (["10.0.0.5"], "10.0.0.5", "203.0.113.7", "203.0.113.7"),
        # A client writing a trusted-looking address still stops at the proxy's entry.
        (["10.0.0.0/24"], "10.0.0.5", "10.0.0.9, 203.0.113.7", "203.0.113.7"),
        # Several proxies (a CDN, then a load balancer): walk past each one.
        (
            ["10.0.0.5", "172.16.0.0/12"],
            "10.0.0.5",
            "198.51.100.1, 203.0.113.7, 172.16.4.2",
            "203.0.113.7",
        ),
        (["10.0.0.0/24"], "10.0.0.5", "203.0.113.7, 10.0.0.8, 10.0.0.9", "203.0.113.7"),
        # Every hop a trusted proxy (a client inside the trusted network): the furthest.
        (["10.0.0.0/8"], "10.0.0.5", "10.1.2.3, 10.0.0.9", "10.1.2.3"),
        # Something that is no address: no proxy wrote it; stop at the last proxy that wrote.
        (["10.0.0.5"], "10.0.0.5", "198.51.100.1, not-an-address", "10.0.0.5"),
        (["10.0.0.5"], "10.0.0.5", "not-an-address, 203.0.113.7", "203.0.113.7"),
        (["10.0.0.5"], "10.0.0.5", "", "10.0.0.5"),
        (["10.0.0.5"], "10.0.0.5", " , ", "10.0.0.5"),
        # IPv6 proxies and clients, and IPv4 clients seen through an IPv6 socket.
        (["2001:db8:1::/48"], "2001:db8:1::5", "2001:DB8:FFFF::1", "2001:db8:ffff::1"),
        (["2001:db8:1::/48"], "2001:db8:2::5", "198.51.100.1", "2001:db8:2::5"),
        (["::1"], "::1", "203.0.113.7", "203.0.113.7"),
        (["127.0.0.1"], "::ffff:127.0.0.1", "203.0.113.7", "203.0.113.7"),
        ([], "::ffff:192.0.2.10", "", "192.0.2.10"),
    ],
)
def test_the_client_address(trusted, peer, forwarded, expected, settings):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_the_api_throttles_key_on_the_same_address_not_on_the_header(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    throttle = AnonRateThrottle()
    one = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="1.1.1.1")
    two = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="2.2.2.2")
    assert throttle.get_ident(one) == throttle.get_ident(two) == "192.0.2.10"
    proxied = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.1.1.1")
    assert throttle.get_ident(proxied) == "1.1.1.1"


@pytest.mark.parametrize(
    ("trusted", "peer", "believed"),
    [
        ([], "192.0.2.10", False),
        (["10.0.0.5"], "192.0.2.10", False),
        (["10.0.0.5"], "10.0.0.5", True),
    ],
)
def test_only_a_trusted_proxy_may_say_the_request_came_over_tls(
    trusted, peer, believed, settings, db
):
    """Django's SECURE_PROXY_SSL_HEADER believes any client: the forwarding headers of a
    peer that is not a trusted proxy are gone before Django's own middleware reads them."""
    settings.TRUSTED_PROXIES = trusted
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    client = Client(REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    response = client.get("/admin/login/")
    if believed:
        assert response.status_code == 200
        assert response.wsgi_request.is_secure()
    else:
        assert response.status_code == 301
        assert response["Location"] == "https://testserver/admin/login/"
        assert "HTTP_X_FORWARDED_PROTO" not in response.wsgi_request.META
