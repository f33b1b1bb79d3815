"""Invitation tokens: their shape, and random ones (erasure's throw-away hash; links before
they were derived). A participant's link is derived: ``surveys/links.py``."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.urls import reverse

from .models import hash_token

# secrets.token_urlsafe(32) gives 43 characters of the URL-safe base64 alphabet.
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def is_well_formed(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("surveys:questionnaire", kwargs={"token": token})
