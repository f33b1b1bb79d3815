"""The rules of who is due what when (fieldwork/campaigns/rules.py), over plain values."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from fieldwork.campaigns.rules import (
    EMAIL,
    JAPAN,
    LETTER,
    LINE,
    Due,
    Progress,
    QuietHours,
    Rules,
    Unprinted,
    channels,
    next_channel,
    next_message,
    outdated_letters,
    schedule_problems,
    send_at,
)

NIGHT = QuietHours(start=time(21, 0), end=time(8, 0))
LUNCH = QuietHours(start=time(12, 0), end=time(13, 0))


def jst(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=JAPAN)


RULES = Rules(starts_at=jst(1, 18), reminder_after=timedelta(days=2), max_reminders=2, quiet=NIGHT)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (jst(1, 20, 59), jst(1, 20, 59)),  # just before: unchanged
        (jst(1, 21), jst(2, 8)),  # the start is inside
        (jst(1, 23, 30), jst(2, 8)),  # before midnight: tomorrow morning
        (jst(2, 3), jst(2, 8)),  # after midnight: this morning
        (jst(2, 7, 59), jst(2, 8)),
        (jst(2, 8), jst(2, 8)),  # the end is outside
    ],
)
def test_a_time_in_the_night_quiet_hours_moves_to_their_end(at, expected):
    assert NIGHT.outside(at) == expected


def test_quiet_hours_within_one_day_and_none():
    assert LUNCH.outside(jst(1, 12, 30)) == jst(1, 13)
    assert LUNCH.outside(jst(1, 11, 59)) == jst(1, 11, 59)
    none = QuietHours(start=time(9), end=time(9))
    assert none.outside(jst(1, 9)) == jst(1, 9)


def test_quiet_hours_are_japan_time_whatever_the_given_zone():
    # 13:00 UTC is 22:00 in Japan.
    from zoneinfo import ZoneInfo

    at = datetime(2026, 6, 1, 13, 0, tzinfo=ZoneInfo("UTC"))
    assert NIGHT.contains(at)
    assert NIGHT.outside(at) == jst(2, 8)


def test_the_invitation_is_due_at_the_start():
    assert next_message(RULES, Progress(steps=0, settled=False, last_message_at=None)) == Due(
        0, jst(1, 18)
    )


def test_a_reminder_is_due_n_days_after_the_last_message():
    progress = Progress(steps=1, settled=True, last_message_at=jst(1, 18, 5))
    assert next_message(RULES, progress) == Due(1, jst(3, 18, 5))


def test_a_reminder_that_would_fall_in_the_night_waits_for_the_morning():
    progress = Progress(steps=1, settled=True, last_message_at=jst(1, 22))
    assert next_message(RULES, progress) == Due(1, jst(4, 8))


def test_no_reminder_while_the_last_message_has_not_gone_out():
    progress = Progress(steps=1, settled=False, last_message_at=None)
    assert next_message(RULES, progress) is None


def test_at_most_k_reminders():
    after_two = Progress(steps=3, settled=True, last_message_at=jst(5, 18))
    assert next_message(RULES, after_two) is None
    after_one = Progress(steps=2, settled=True, last_message_at=jst(3, 18))
    assert next_message(RULES, after_one) == Due(2, jst(5, 18))


def test_nothing_for_someone_no_longer_wanted_or_after_the_survey_closes():
    unwanted = Progress(steps=0, settled=False, last_message_at=None, wanted=False)
    assert next_message(RULES, unwanted) is None
    closing = Progress(steps=1, settled=True, last_message_at=jst(1, 18), closes_at=jst(3, 12))
    assert next_message(RULES, closing) is None


def test_a_late_beat_sends_now_but_never_inside_the_quiet_hours():
    due = Due(1, jst(3, 20))
    assert send_at(due, NIGHT, now=jst(3, 20, 30)) == jst(3, 20, 30)
    assert send_at(due, NIGHT, now=jst(3, 21, 1)) == jst(4, 8)
    assert send_at(Due(1, jst(4, 9)), NIGHT, now=jst(3, 21, 1)) == jst(4, 9)


@pytest.mark.parametrize(
    ("order", "has_line", "has_email", "expected"),
    [
        ([LINE, EMAIL], True, True, [LINE, EMAIL, LETTER]),
        ([LINE, EMAIL], False, True, [EMAIL, LETTER]),
        ([LINE, EMAIL], True, False, [LINE, LETTER]),
        ([LINE, EMAIL], False, False, [LETTER]),
        ([EMAIL, LINE], True, True, [EMAIL, LINE, LETTER]),
        ([EMAIL], True, True, [EMAIL, LETTER]),
        ([LETTER], True, True, [LETTER]),
    ],
)
def test_the_channels_in_the_campaigns_order_end_with_the_letter(
    order, has_line, has_email, expected
):
    assert channels(order, has_line=has_line, has_email=has_email) == expected


def test_after_a_failure_the_next_channel_then_the_letter_then_nothing():
    order = [LINE, EMAIL]
    both = {"has_line": True, "has_email": True}
    assert next_channel(order, after=None, **both) == LINE
    assert next_channel(order, after=LINE, **both) == EMAIL
    assert next_channel(order, after=EMAIL, **both) == LETTER
    assert next_channel(order, after=LETTER, **both) is None
    # LINE unlinked since the failure: still on to e-mail.
    assert next_channel(order, after=LINE, has_line=False, has_email=True) == EMAIL


def test_a_start_in_the_past_or_inside_the_quiet_hours_is_a_problem():
    now = jst(1, 10)
    assert schedule_problems(starts_at=jst(1, 9), quiet=NIGHT, now=now) == {"starts_at": "past"}
    assert schedule_problems(starts_at=jst(1, 22), quiet=NIGHT, now=now) == {"starts_at": "quiet"}
    assert schedule_problems(starts_at=jst(1, 18), quiet=NIGHT, now=now) == {}


def test_a_newer_message_makes_the_unprinted_letters_due_before_it_outdated():
    invitation = Unprinted(id=1, due_at=jst(1, 18))
    other_campaign = Unprinted(id=2, due_at=jst(3, 9))
    waiting_for_morning = Unprinted(id=3, due_at=jst(4, 8))

    outdated = outdated_letters(
        [invitation, other_campaign, waiting_for_morning], replaced_at=jst(3, 18)
    )

    assert outdated == [1, 2]  # the letter due after the new message is the newer one
    assert outdated_letters([invitation], replaced_at=jst(1, 18)) == [1]  # at the same time
    assert outdated_letters([], replaced_at=jst(3, 18)) == []
