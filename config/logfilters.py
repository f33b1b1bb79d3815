"""Log filters: what must never reach a log file."""

from __future__ import annotations

import logging
import re

# An invitation token in a path: the questionnaire's /r/<token>/ and the API's
# /api/v1/invitations/<token>/. The token is the participant's only credential, and
# Django names the path of every refused or failed request ("Not Found: /r/…",
# "Service Unavailable: /r/…"), so a log would otherwise hold working links.
TOKEN_IN_PATH = re.compile(r"(/r/|/invitations/)[^/\s?#\"']+")


def redact(text: str) -> str:
    return TOKEN_IN_PATH.sub(r"\1[token]", text)


class RedactTokens(logging.Filter):
    """Replaces invitation tokens in a record's message by ``[token]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
