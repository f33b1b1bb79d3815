"""Fieldwork's rule violations (``surveys.errors.RuleViolation``: one error type)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from surveys.errors import RuleViolation


class NoSender(RuleViolation):
    code = "no_sender"
    default_message = _(
        "A site of the selected participants has no sender: set who the messages come from "
        "in Fieldwork › Senders first."
    )
