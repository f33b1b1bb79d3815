"""One error type for rule violations, mapped once to a form error (views) or a 4xx (API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django import forms


class RuleViolation(Exception):
    """A request broke a rule of the domain. Nothing has been changed."""

    code = "rule_violation"
    default_message = _("This request breaks a rule and was not carried out.")

    def __init__(self, message: str | None = None, *, errors: dict | None = None) -> None:
        self.message = str(message or self.default_message)
        # Per-field (or per-row) messages, keyed by question code, field name or row number.
        self.errors: dict = errors or {}
        super().__init__(self.message)


def add_to_form(form: forms.Form, exc: RuleViolation) -> None:
    """A rule violation as the form's errors: each message at its field where the form has
    it, the rest (and a violation without per-field messages) above the form."""
    for field, message in exc.errors.items():
        form.add_error(field if field in form.fields else None, message)
    if not exc.errors:
        form.add_error(None, exc.message)


class AnswersInvalid(RuleViolation):
    code = "answers_invalid"
    default_message = _("Some answers need your attention.")


class AlreadySubmitted(RuleViolation):
    code = "already_submitted"
    default_message = _("This questionnaire has already been submitted.")


class SurveyClosed(RuleViolation):
    code = "survey_closed"
    default_message = _("This questionnaire is not open.")


class InstrumentFrozen(RuleViolation):
    code = "instrument_frozen"
    default_message = _("A published questionnaire cannot change; create a new version instead.")


class InstrumentInvalid(RuleViolation):
    code = "instrument_invalid"
    default_message = _("This questionnaire cannot be published as it stands.")


class ImportRejected(RuleViolation):
    code = "import_rejected"
    default_message = _("Nothing was imported: correct the rows below and try again.")


class ErasureRefused(RuleViolation):
    code = "erasure_refused"
    default_message = _("You may not erase this participant's personal data.")


class LinkUnavailable(RuleViolation):
    """A participant's link cannot be given (``surveys/links.py``)."""

    code = "link_unavailable"
    default_message = _("This participant's link cannot be shown.")


class ParticipantErased(LinkUnavailable):
    code = "participant_erased"
    default_message = _("This participant's personal data was erased: they get no new link.")


class ParticipantWithdrawn(LinkUnavailable):
    code = "participant_withdrawn"
    default_message = _("This participant was withdrawn from the study: they have no link.")


class LinkKeyMissing(LinkUnavailable):
    """The key a link was derived under is neither ``HYOKA_LINK_KEY`` nor one of
    ``HYOKA_LINK_OLD_KEYS``: the link cannot be shown (it still works)."""

    code = "link_key_missing"
    default_message = _(
        "This participant's link was made with a link key that is no longer configured: "
        "put that key back in HYOKA_LINK_OLD_KEYS, or replace the link."
    )
