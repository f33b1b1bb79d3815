"""Fieldwork's fixtures: a real SMTP server (aiosmtpd) on 127.0.0.1, Django's SMTP backend
pointed at it, and participants with contact details and a site sender."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils import translation

from fieldwork.contacts import ContactValues, contact_set
from fieldwork.models import Sender
from tests.factories import ParticipantFactory


@pytest.fixture(autouse=True)
def _english_unless_a_test_says_otherwise():  # type: ignore[no-untyped-def]
    """Each test starts in English, whatever language an earlier test's request left
    active in this thread (LocaleMiddleware activates one; the test client runs in the
    same thread): reasons and errors are then read in English unless a test overrides it,
    and no test depends on the order xdist gives it."""
    with translation.override("en"):
        yield


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every accepted message and answers ``answers[rcpt]``
    (such as "451 4.7.1 try later") instead of accepting that recipient."""

    received: list[Any] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        answer = self.answers.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append(envelope)
        return "250 2.0.0 accepted"

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(e.original_content or e.content, policy=policy.default)  # type: ignore[misc]
            for e in self.received
        ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(settings):  # type: ignore[no-untyped-def]
    """A real SMTP server for this test; Django's SMTP backend sends to it."""
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.HYOKA_EMAIL_RATE_PER_SECOND = 0
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture
def sender(site):  # type: ignore[no-untyped-def]
    return Sender.objects.create(
        site=site,
        display_name_ja="横浜市 子ども家庭課",
        display_name_en="Yokohama City, Children and Families",
        from_address="kodomo@city.example.jp",
        reply_to="toiawase@city.example.jp",
        postal_block_ja="〒231-0005\n横浜市中区本町6-50-10\n子ども家庭課",
    )


def with_contact(site, *, email: str = "", language: str = "ja", **values: Any):  # type: ignore[no-untyped-def]
    participant = ParticipantFactory(site=site)
    contact_set(
        participant=participant, values=ContactValues(email=email, language=language, **values)
    )
    return participant
