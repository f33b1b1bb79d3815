"""Invitation tokens never reach the log: Django names the path of every refused or failed
request, and a participant's path holds their only credential."""

from __future__ import annotations

import io
import logging

import pytest

from config.logfilters import RedactTokens, redact

TOKEN = "x" * 10 + "Ab3_-" + "y" * 28  # the shape of a real token (43 URL-safe characters)


@pytest.mark.parametrize(
    "path",
    [f"/r/{TOKEN}/", f"/r/{TOKEN}/?lang=en", f"/api/v1/invitations/{TOKEN}/submission/"],
)
def test_a_token_in_a_path_is_redacted(path: str) -> None:
    assert TOKEN not in redact(f"Service Unavailable: {path}")
    assert "[token]" in redact(f"Service Unavailable: {path}")


def test_other_paths_are_left_alone() -> None:
    assert redact("Not Found: /admin/surveys/participant/12/") == (
        "Not Found: /admin/surveys/participant/12/"
    )


def test_the_configured_handler_writes_no_token(client, db) -> None:  # type: ignore[no-untyped-def]
    """Through the project's logging configuration, as Django logs a 404 for a link."""
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactTokens) for f in h.filters)
    ]
    stream = io.StringIO()
    saved = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        client.get(f"/r/{TOKEN}/")
    finally:
        handler.setStream(saved)  # type: ignore[attr-defined]
    written = stream.getvalue()
    assert "Not Found: /r/[token]/" in written
    assert TOKEN not in written
