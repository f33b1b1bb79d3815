"""From participants to letters: each letter carries the participant's own name, address
and link, the site's sender block, the study's purpose and the site's deadline; whoever
cannot get a letter is skipped with a reason, and the queries do not grow with the
number of participants."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fieldwork.letters import Letter
from fieldwork.letters.build import Skip, deadline_of, letters_build
from fieldwork.models import Contact, Sender
from surveys import services as survey_services
from surveys.erasure import participant_erase
from surveys.links import participant_link
from tests.factories import ParticipantFactory, SiteFactory, complete_answers

from ..conftest import with_contact

TOKYO = ZoneInfo("Asia/Tokyo")
ADDRESS = "〒231-0001\n横浜市中区新港1-1-1\nみなとハイツ101号室"
# The site's questionnaire closes at midnight, Japan time, 30 days from today: the last
# day to answer is the day before.
LAST_DAY = timezone.localdate() + dt.timedelta(days=29)
CLOSES_AT = dt.datetime.combine(LAST_DAY + dt.timedelta(days=1), dt.time(0, 0), tzinfo=TOKYO)
SENDER_JA = ("横浜市 子ども家庭課", "〒231-0005", "横浜市中区本町6-50-10", "子ども家庭課")


@pytest.fixture
def letter_site(site, sender):  # type: ignore[no-untyped-def]
    site.survey_closes_at = CLOSES_AT
    site.save()
    study = site.study
    study.description_ja = "子育て支援サービスの効果を確かめるための調査です。"
    study.description_en = "A survey of the effect of the family support service."
    study.save()
    return site


def addressed(site, **values):  # type: ignore[no-untyped-def]
    values.setdefault("postal_name", "山田 花子")
    values.setdefault("postal_address", ADDRESS)
    return with_contact(site, **values)


def test_a_letter_carries_the_participants_name_address_and_own_link(letter_site):
    hanako = addressed(letter_site)
    taro = addressed(
        letter_site, postal_name="佐藤 太郎", postal_address="〒231-0002\n横浜市中区海岸通2"
    )
    study = letter_site.study

    built = letters_build([hanako, taro])

    assert built.skipped == []
    assert built.participant_ids == [hanako.pk, taro.pk]  # by reference
    purpose = f"{study.name_ja}\n\n子育て支援サービスの効果を確かめるための調査です。"
    assert built.letters == [
        Letter(
            reference=hanako.reference,
            addressee_name="山田 花子",
            address_lines=("〒231-0001", "横浜市中区新港1-1-1", "みなとハイツ101号室"),
            sender_lines=SENDER_JA,
            purpose=purpose,
            deadline=LAST_DAY,
            link=participant_link(hanako),
            language="ja",
        ),
        Letter(
            reference=taro.reference,
            addressee_name="佐藤 太郎",
            address_lines=("〒231-0002", "横浜市中区海岸通2"),
            sender_lines=SENDER_JA,
            purpose=purpose,
            deadline=LAST_DAY,
            link=participant_link(taro),
            language="ja",
        ),
    ]
    assert built.letters[0].link != built.letters[1].link


def test_the_letter_is_in_the_contacts_language_unless_one_is_asked_for(letter_site):
    sender = letter_site.sender
    sender.postal_block_en = "Children and Families Division\n6-50-10 Honcho, Naka-ku"
    sender.save()
    english = addressed(
        letter_site,
        language="en",
        postal_name="Hanako Yamada",
        postal_address="1-1-1 Shinko, Naka-ku\nYokohama 231-0001",
    )

    (letter,) = letters_build([english]).letters
    (forced,) = letters_build([english], language="ja").letters

    assert letter.language == "en"
    assert letter.sender_lines == (
        "Yokohama City, Children and Families",
        "Children and Families Division",
        "6-50-10 Honcho, Naka-ku",
    )
    assert letter.purpose == (
        f"{letter_site.study.name_en}\n\nA survey of the effect of the family support service."
    )
    assert forced.language == "ja" and forced.sender_lines == SENDER_JA


def test_the_deadline_is_the_last_day_before_closing_in_japan_time():
    assert deadline_of(dt.datetime(2027, 1, 16, 0, 0, tzinfo=TOKYO)) == dt.date(2027, 1, 15)
    assert deadline_of(dt.datetime(2027, 1, 15, 17, 0, tzinfo=TOKYO)) == dt.date(2027, 1, 15)
    # 15:00 UTC on the 15th is midnight of the 16th in Tokyo.
    assert deadline_of(dt.datetime(2027, 1, 15, 15, 0, tzinfo=dt.UTC)) == dt.date(2027, 1, 15)
    assert deadline_of(None) is None


def test_a_site_without_a_closing_date_needs_a_deadline_from_the_caller(site, sender):
    participant = addressed(site)

    without = letters_build([participant])
    (letter,) = letters_build([participant], deadline=dt.date(2027, 2, 1)).letters

    assert [(s.participant_id, s.reason) for s in without.skipped] == [
        (participant.pk, Skip.NO_DEADLINE)
    ]
    assert without.letters == []
    assert letter.deadline == dt.date(2027, 2, 1)


def test_whoever_cannot_get_a_letter_is_skipped_with_the_reason(letter_site):
    study = letter_site.study
    good = addressed(letter_site)
    withdrawn = addressed(letter_site)
    survey_services.participant_withdraw(participant=withdrawn)
    erased = addressed(letter_site)
    participant_erase(participant=erased, by=None, reason="the resident's request")
    submitted = addressed(letter_site)
    survey_services.response_submit(
        participant=submitted, answers=complete_answers(), language="ja"
    )
    no_contact = ParticipantFactory(site=letter_site)
    email_only = with_contact(letter_site, email="hanako@example.jp")
    no_name = addressed(letter_site)
    # The import refuses an address without a name; a contact stored otherwise may have one.
    Contact.objects.filter(participant=no_name).update(postal_name="")
    too_long = addressed(letter_site, postal_address="〒231-0001\n" + "あ" * 22)
    senderless = addressed(SiteFactory(study=study, survey_closes_at=CLOSES_AT))
    empty_block_site = SiteFactory(study=study, survey_closes_at=CLOSES_AT)
    Sender.objects.create(
        site=empty_block_site, display_name_ja="市", from_address="a@city.example.jp"
    )
    empty_block = addressed(empty_block_site)
    closed = addressed(
        SiteFactory(study=study, survey_closes_at=timezone.now() - dt.timedelta(hours=1))
    )
    Sender.objects.create(
        site=closed.site,
        display_name_ja="市",
        from_address="a@city.example.jp",
        postal_block_ja="市役所",
    )

    built = letters_build(
        [
            good,
            withdrawn,
            erased,
            submitted,
            no_contact,
            email_only,
            no_name,
            too_long,
            senderless,
            empty_block,
            closed,
        ]
    )

    assert [letter.reference for letter in built.letters] == [good.reference]
    assert {s.participant_id: s.reason for s in built.skipped} == {
        withdrawn.pk: Skip.WITHDRAWN,
        erased.pk: Skip.ERASED,
        submitted.pk: Skip.SUBMITTED,
        no_contact.pk: Skip.NO_ADDRESS,
        email_only.pk: Skip.NO_ADDRESS,
        no_name.pk: Skip.NO_NAME,
        too_long.pk: Skip.UNPRINTABLE,
        senderless.pk: Skip.NO_SENDER,
        empty_block.pk: Skip.NO_SENDER,
        closed.pk: Skip.CLOSED,
    }
    (unprintable,) = [s for s in built.skipped if s.reason == Skip.UNPRINTABLE]
    assert "address line 2 is too long" in unprintable.detail
    assert built.skipped_counts[Skip.NO_ADDRESS] == 2


def test_a_participant_whose_link_key_is_gone_is_skipped_not_raised(letter_site, settings):
    lost = addressed(letter_site)
    participant_link(lost)  # made under the current key, which is then dropped
    settings.HYOKA_LINK_KEY = "a-new-link-key-" + "x" * 40
    settings.HYOKA_LINK_OLD_KEYS = []
    kept = addressed(letter_site)

    built = letters_build([lost, kept])

    assert [letter.link for letter in built.letters] == [participant_link(kept)]
    (skipped,) = built.skipped
    assert (skipped.participant_id, skipped.reason) == (lost.pk, Skip.NO_LINK)
    assert "HYOKA_LINK_OLD_KEYS" in skipped.detail  # what to do about it


def test_the_queries_do_not_grow_with_the_participants(letter_site):
    few = [addressed(letter_site) for _ in range(2)]
    many = [addressed(letter_site) for _ in range(8)]
    letters_build(few + many)  # links derived once for the participants made by the factory

    with CaptureQueriesContext(connection) as for_few:
        assert len(letters_build(few).letters) == 2
    with CaptureQueriesContext(connection) as for_many:
        assert len(letters_build(many).letters) == 8

    assert len(for_many.captured_queries) == len(for_few.captured_queries)
