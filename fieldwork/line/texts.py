"""What a participant reads in the LINE chat, in one place. Someone who has not linked
their account yet gets Japanese and English in one message (LINE does not tell us their
language); a linked participant gets their contact's language."""

from __future__ import annotations

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from surveys.models import Language

WELCOME = _(
    "Thank you for adding this account. Please send the 10-character link code printed "
    "on your letter (for example ABCDE-FGHJK) in this chat: we will then send you the "
    "questionnaire's messages here."
)
LINKED = _(
    "Your LINE account is now linked to the questionnaire. Its invitation and reminders "
    "will come here. To stop them, block this account."
)
ALREADY_LINKED = _("This LINE account is already linked to the questionnaire.")
USED = _(
    "This code has already been used with another LINE account. If that was not you, "
    "please contact the office named in your letter."
)
TOO_MANY = _(
    "Too many wrong codes were sent from this account. Please try again in about "
    "%(minutes)d minutes."
)
NOT_A_CODE = _(
    "Please send the 10-character link code printed on your letter (for example "
    "ABCDE-FGHJK). 0, O, 1, I and L never appear in it."
)
NO_CONVERSATION = _(
    "Thank you for your message. This account only sends the questionnaire's messages and "
    "cannot answer here. For questions, please contact the office named in your letter."
)


def both(text: str | Promise, **values: object) -> str:
    """``text`` in Japanese, then in English (once if they are the same)."""
    parts = []
    for language in (Language.JA, Language.EN):
        with translation.override(language):
            part = str(text) % values if values else str(text)
        if part not in parts:
            parts.append(part)
    return "\n\n".join(parts)


def one(text: str | Promise, language: str, **values: object) -> str:
    """``text`` in ``language`` (Japanese if it is not one of ours)."""
    with translation.override(language if language in Language.values else Language.JA):
        return str(text) % values if values else str(text)


# --- The questionnaire's messages (pushed to a linked participant) ------------------------

INVITATION = _(
    "This message is for the participants of “%(study)s” at %(site)s.\n\n"
    "To help us improve the programme, please answer a short questionnaire (about five "
    "minutes; you can save and continue later). The link below is yours alone: please do "
    "not forward it."
)
REMINDER = _(
    "A reminder from %(site)s: if you have not answered the questionnaire of “%(study)s” "
    "yet, we would be grateful for your answers. If you have just answered, thank you, and "
    "please ignore this message."
)
DEADLINE = _("Please answer by %(deadline)s.")
BUTTON_TEXT = _("Open your questionnaire with the button below.")
BUTTON_LABEL = _("Answer")
