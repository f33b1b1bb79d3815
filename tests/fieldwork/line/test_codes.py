"""The one-time LINE link codes printed on letters (fieldwork/line/codes.py): typable,
the participant's own, void once their link is replaced, expired when the questionnaire
closes, and a changed character never finds anyone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from fieldwork.line import codes
from fieldwork.line.codes import CodeRefused
from surveys import services
from surveys.models import Participant
from surveys.tokens import new_token
from tests.factories import ParticipantFactory

pytestmark = pytest.mark.django_db

TYPABLE = set("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")


def test_a_code_is_ten_typable_characters_and_leads_back_to_its_participant(site):
    participants = [ParticipantFactory(site=site) for _ in range(20)]
    seen = set()
    for participant in participants:
        code = codes.code_for(participant)
        assert len(code) == 10 and set(code) <= TYPABLE
        assert not set(code) & set("0O1Il")
        assert codes.check(code) == participant
        seen.add(code)
    assert len(seen) == 20


def test_the_code_is_the_same_until_the_link_is_replaced(participant):
    code = codes.code_for(participant)
    assert codes.code_for(Participant.objects.get(pk=participant.pk)) == code

    _token, new_hash = new_token()  # a manager replaced the link (or erased the person)
    Participant.objects.filter(pk=participant.pk).update(token_hash=new_hash)
    with pytest.raises(CodeRefused) as refused:
        codes.check(code)
    assert refused.value.message is codes.WRONG


@pytest.mark.parametrize(
    ("typed", "as_printed"),
    [
        ("abcde-fghjk", "ABCDEFGHJK"),
        ("ABCDE FGHJK", "ABCDEFGHJK"),
        ("ＡＢＣＤＥ－ＦＧＨＪＫ", "ABCDEFGHJK"),  # full-width, from a Japanese keyboard
        ("ABCDEーFGHJK", "ABCDEFGHJK"),  # the katakana long vowel mark for the hyphen
        (" ABCDEFGHJK\n", "ABCDEFGHJK"),
    ],
)
def test_a_code_may_be_typed_as_people_type_it(typed, as_printed):
    assert codes.normalize(typed) == as_printed
    assert codes.display(as_printed) == "ABCDE-FGHJK"


@pytest.mark.parametrize(
    "text", ["ABCDEFGHJ", "ABCDEFGHJKM", "ABCDEFGHJ0", "ABCDEFGHJO", "ABCDEFGHJI", "こんにちは", ""]
)
def test_text_that_is_not_a_code_is_not_taken_for_one(text):
    assert codes.normalize(text) is None


def test_a_code_with_any_one_character_changed_finds_nobody(site):
    participants = [ParticipantFactory(site=site) for _ in range(5)]
    code = codes.code_for(participants[2])
    for position in range(10):
        for char in sorted(TYPABLE - {code[position]}):
            changed = code[:position] + char + code[position + 1 :]
            with pytest.raises(CodeRefused):
                codes.check(changed)


def test_a_code_expires_when_the_questionnaire_closes(participant):
    code = codes.code_for(participant)
    site = participant.site
    site.survey_opens_at = timezone.now() - dt.timedelta(days=30)
    site.survey_closes_at = timezone.now() - dt.timedelta(minutes=1)
    site.save()
    with pytest.raises(CodeRefused) as refused:
        codes.check(code)
    assert refused.value.message is codes.EXPIRED


def test_a_withdrawn_participants_code_is_refused_as_wrong(participant):
    code = codes.code_for(participant)
    services.participant_withdraw(participant=participant)
    with pytest.raises(CodeRefused) as refused:
        codes.check(code)
    assert refused.value.message is codes.WRONG


def test_a_code_under_another_key_finds_nobody(participant, settings):
    code = codes.code_for(participant)
    settings.HYOKA_LINE_CODE_KEY = "another-key-another-key-another-key!"
    with pytest.raises(CodeRefused):
        codes.check(code)


def test_letters_print_the_code_only_with_line_on(participant, settings):
    settings.LINE_ENABLED = True
    printed = codes.for_letter(participant)
    assert printed is not None and printed.replace("-", "") == codes.code_for(participant)
    settings.LINE_ENABLED = False
    assert codes.for_letter(participant) is None
