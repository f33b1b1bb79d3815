"""The LINE channel's tests run against the stand-in of the Messaging API on 127.0.0.1
(``tests/fieldwork/line_standin.py``); nothing leaves the machine."""

from __future__ import annotations

import pytest

from tests.fieldwork import line_standin

TOKEN = "stand-in-channel-access-token"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def line_api(settings):  # type: ignore[no-untyped-def]
    """LINE switched on, talking to a fresh stand-in."""
    with line_standin.running(TOKEN) as standin:
        settings.LINE_CHANNEL_SECRET = SECRET
        settings.LINE_CHANNEL_ACCESS_TOKEN = TOKEN
        settings.LINE_ENABLED = True
        settings.LINE_API_HOST = standin.host
        settings.LINE_API_TIMEOUT = 5.0
        yield standin
