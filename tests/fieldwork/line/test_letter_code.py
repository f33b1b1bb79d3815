"""The LINE link code a participant reads on their letter or e-mail invitation is the one
the webhook accepts: letters are built from the database (fieldwork/letters/build.py),
rendered, the code read back from the PDF's text and sent, signed, to the webhook as LINE
would; it links that participant. With LINE off (or no official account configured) no
letter and no e-mail says anything of LINE."""

from __future__ import annotations

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from fieldwork import sending, services
from fieldwork.channels import email as email_channel
from fieldwork.letters import render_letters
from fieldwork.letters.build import letters_build
from fieldwork.line import codes, linking
from fieldwork.models import Delivery
from surveys.models import Participant

from ..conftest import with_contact
from .test_webhook import ALICE, BOB, _event, _linked_user, _send, _text

pytestmark = pytest.mark.django_db

ACCOUNT = "@123abcde"
# A code stands on its own: not a run of characters inside a link's token (base64url).
CODE = re.compile(
    r"(?<![A-Za-z0-9_-])[23456789A-HJ-NP-Z]{5}-[23456789A-HJ-NP-Z]{5}(?![A-Za-z0-9_-])"
)
CLOSES_AT = dt.datetime.combine(
    timezone.localdate() + dt.timedelta(days=30), dt.time(0, 0), tzinfo=ZoneInfo("Asia/Tokyo")
)


@pytest.fixture
def letter_site(site, sender):  # type: ignore[no-untyped-def]
    site.survey_closes_at = CLOSES_AT
    site.save()
    return site


@pytest.fixture
def line_on(line_api, settings):  # type: ignore[no-untyped-def]
    settings.LINE_OFFICIAL_ACCOUNT_ID = ACCOUNT
    return line_api


def addressed(site, **values):  # type: ignore[no-untyped-def]
    values.setdefault("postal_name", "山田 花子")
    values.setdefault("postal_address", "〒231-0001\n横浜市中区新港1-1-1")
    return with_contact(site, **values)


def printed_codes(pdf: bytes) -> list[list[str]]:
    return [CODE.findall(page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages]


def test_the_code_on_the_letter_is_the_participants_and_links_them_when_sent(line_on, letter_site):
    hanako, taro = addressed(letter_site), addressed(letter_site, postal_name="佐藤 太郎")
    before = hanako.token_hash  # a participant from before stable links: their link changes

    built = letters_build([hanako, taro])
    pdf = render_letters(built.letters)

    expected = [codes.for_letter(Participant.objects.get(pk=p.pk)) for p in (hanako, taro)]
    assert [letter.line_code for letter in built.letters] == expected
    assert printed_codes(pdf) == [[code] for code in expected]
    assert all(ACCOUNT in (page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages)
    assert Participant.objects.get(pk=hanako.pk).token_hash != before  # the case that matters

    # Hanako adds the account and types the code from her letter.
    _send(_event("follow"))
    _send(_text(printed_codes(pdf)[0][0]))

    assert _linked_user(hanako) == ALICE
    assert _linked_user(taro) == ""


def test_the_code_stays_the_same_on_a_reprinted_letter(line_on, letter_site):
    hanako = addressed(letter_site)
    first = letters_build([hanako]).letters[0].line_code
    again = letters_build([hanako]).letters[0].line_code
    assert first == again == codes.for_letter(Participant.objects.get(pk=hanako.pk))


def test_with_line_off_no_letter_says_anything_of_line(letter_site, settings):
    settings.LINE_ENABLED = False
    settings.LINE_OFFICIAL_ACCOUNT_ID = ACCOUNT
    hanako = addressed(letter_site)

    built = letters_build([hanako])
    text = PdfReader(io.BytesIO(render_letters(built.letters))).pages[0].extract_text()

    assert built.letters[0].line_code is None and built.letters[0].line_account is None
    assert "LINE" not in text and ACCOUNT not in text and not CODE.search(text)


def test_without_the_official_account_no_code_is_printed(line_api, letter_site, settings):
    settings.LINE_OFFICIAL_ACCOUNT_ID = ""
    built = letters_build([addressed(letter_site)])
    assert built.letters[0].line_code is None


def test_a_participant_already_linked_gets_no_code(line_on, letter_site):
    hanako, taro = addressed(letter_site), addressed(letter_site)
    linking.line_user_link(participant=hanako, line_user_id=BOB)

    built = letters_build([hanako, taro])

    assert [letter.line_code is None for letter in built.letters] == [True, False]


def test_the_queries_do_not_grow_with_the_participants_with_line_on(line_on, letter_site):
    few = [addressed(letter_site) for _ in range(2)]
    many = [addressed(letter_site) for _ in range(8)]
    letters_build(few + many)  # links derived once for the participants made by the factory

    with CaptureQueriesContext(connection) as for_few:
        assert all(letter.line_code for letter in letters_build(few).letters)
    with CaptureQueriesContext(connection) as for_many:
        assert all(letter.line_code for letter in letters_build(many).letters)

    assert len(for_many.captured_queries) == len(for_few.captured_queries)


# --- the e-mail invitation ----------------------------------------------------------------


def _invitation(participant, kind=Delivery.Kind.INVITATION):  # type: ignore[no-untyped-def]
    queued = services.email_deliveries_queue(participants=[participant], kind=kind)
    delivery = sending.selectors.deliveries_for_sending(queued.ids)[0]
    return email_channel.build(delivery)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_e_mail_invitation_carries_the_code_that_links(line_on, sender, site, language):
    hanako = with_contact(site, email="hanako@example.jp", language=language)

    message = _invitation(hanako)

    code = codes.for_letter(Participant.objects.get(pk=hanako.pk))
    text, html = message.body, message.alternatives[0][0]
    assert code in text and code in str(html) and ACCOUNT in text
    assert ("連携コード" in text) == (language == "ja")
    assert 'href="https://line.me/R/ti/p/%40123abcde"' in str(html)  # add friend, on a phone
    _send(_text(CODE.search(text).group(0)))  # type: ignore[union-attr]
    assert _linked_user(hanako) == ALICE


def test_e_mails_say_nothing_of_line_with_line_off_to_the_linked_or_in_reminders(
    line_on, sender, site, settings
):
    linked = with_contact(site, email="linked@example.jp")
    linking.line_user_link(participant=linked, line_user_id=BOB)
    reminded = with_contact(site, email="reminded@example.jp")
    assert not CODE.search(_invitation(linked).body)
    assert not CODE.search(_invitation(reminded, kind=Delivery.Kind.REMINDER).body)

    settings.LINE_ENABLED = False
    off = with_contact(site, email="off@example.jp")
    body = _invitation(off).body
    assert not CODE.search(body) and "LINE" not in body


def test_a_batch_sent_over_smtp_carries_each_participants_own_code(line_on, smtp, sender, site):
    people = [with_contact(site, email=f"p{n}@example.jp") for n in range(3)]
    queued = services.email_deliveries_queue(participants=people)

    sending.email_deliveries_send(ids=queued.ids)

    received = {str(m["To"]): m.get_body(("plain",)).get_content() for m in smtp.messages()}
    for n, person in enumerate(people):
        code = codes.for_letter(Participant.objects.get(pk=person.pk))
        assert CODE.findall(received[f"p{n}@example.jp"]) == [code]
