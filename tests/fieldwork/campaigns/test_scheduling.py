"""The scheduler (fieldwork/campaigns/scheduling.py) over simulated days: a fake "now" is
passed in, the channels are played by a stand-in that sends what is due (with the real
compare-and-set claim), and the deliveries it leaves are compared with a schedule worked
out by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.db import IntegrityError, transaction

from fieldwork.campaigns import scheduling
from fieldwork.campaigns.rules import JAPAN
from fieldwork.contacts import ContactValues, contact_set
from fieldwork.line import linking
from fieldwork.models import Campaign, Delivery
from fieldwork.sending import claim
from surveys import services as survey_services
from tests.factories import ParticipantFactory, SiteFactory, complete_answers
from tests.fieldwork.conftest import with_contact

pytestmark = pytest.mark.django_db

QUIET = (time(21), time(8))


def jst(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=JAPAN)


def campaign_for(study, sites=(), **values):  # type: ignore[no-untyped-def]
    defaults = {
        "name": "6月の案内",
        "starts_at": jst(1, 18),
        "reminder_after_days": 2,
        "max_reminders": 2,
        "quiet_from": QUIET[0],
        "quiet_until": QUIET[1],
        "channel_order": Campaign.ChannelOrder.LINE_EMAIL,
        "active": True,
    }
    campaign = Campaign.objects.create(study=study, **{**defaults, **values})
    campaign.sites.set(sites)
    return campaign


def play_channels(now: datetime, *, slow: frozenset[int] = frozenset()) -> None:
    """Send (or print) every queued delivery due by ``now``; a slow participant's messages
    go out four hours after they are due."""
    for d in Delivery.objects.filter(status=Delivery.Status.QUEUED, due_at__lte=now):
        if d.participant_id in slow and now < d.due_at + timedelta(hours=4):
            continue
        if claim(d.pk, now=now):
            Delivery.objects.filter(pk=d.pk).update(status=Delivery.Status.SENT, sent_at=now)


def hours(start: datetime, end: datetime, every: int = 1):  # type: ignore[no-untyped-def]
    at = start
    while at <= end:
        yield at
        at += timedelta(hours=every)


def delivered(participant) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    """(step, channel, sent at in Japan time) of a participant's messages, in order."""
    return [
        (d.step, d.channel, d.sent_at.astimezone(JAPAN).strftime("%m-%d %H:%M"))
        for d in Delivery.objects.filter(participant=participant).order_by("step", "fallback")
    ]


def test_a_campaign_over_eight_days(study, site):
    line_user = with_contact(site, email="a@example.jp")
    linking.line_user_link(participant=line_user, line_user_id="U" + "a" * 32)
    slow_mail = with_contact(site, email="b@example.jp")
    no_contact = ParticipantFactory(site=site)
    answers_early = with_contact(site, email="d@example.jp")
    withdrawn = with_contact(site, email="e@example.jp")
    elsewhere = with_contact(SiteFactory(study=study), email="f@example.jp")
    campaign = campaign_for(study, sites=[site])

    for now in hours(jst(1, 12), jst(9, 12), every=2):  # the beat, every two hours
        if now == jst(1, 14):
            survey_services.participant_withdraw(participant=withdrawn)
        if now == jst(2, 12):
            survey_services.response_submit(
                participant=answers_early, answers=complete_answers(), language="ja"
            )
        scheduling.campaigns_run(now=now)
        play_channels(now, slow=frozenset({slow_mail.pk}))

    # By hand: invitation at the start (18:00), reminders 2 days after the last message,
    # two at most; B's mail leaves 4 hours late, so its first reminder would fall at 22:00
    # and waits for 08:00.
    assert delivered(line_user) == [
        (0, "line", "06-01 18:00"),
        (1, "line", "06-03 18:00"),
        (2, "line", "06-05 18:00"),
    ]
    assert delivered(slow_mail) == [
        (0, "email", "06-01 22:00"),
        (1, "email", "06-04 12:00"),
        (2, "email", "06-06 16:00"),
    ]
    b_reminder = Delivery.objects.get(participant=slow_mail, step=1)
    assert b_reminder.due_at.astimezone(JAPAN) == jst(4, 8)
    assert delivered(no_contact) == [
        (0, "letter", "06-01 18:00"),
        (1, "letter", "06-03 18:00"),
        (2, "letter", "06-05 18:00"),
    ]
    assert delivered(answers_early) == [(0, "email", "06-01 18:00")]  # answered on the 2nd
    assert delivered(withdrawn) == [] and delivered(elsewhere) == []
    assert Delivery.objects.filter(campaign=campaign).count() == 10
    for d in Delivery.objects.all():
        local = d.due_at.astimezone(JAPAN).time()
        assert time(8) <= local < time(21), d  # nothing due in the quiet hours


def test_running_twice_at_the_same_moment_creates_nothing_twice(study, site):
    people = [with_contact(site, email=f"p{n}@example.jp") for n in range(3)]
    campaign_for(study, sites=[site])

    first = scheduling.campaigns_run(now=jst(1, 18))
    second = scheduling.campaigns_run(now=jst(1, 18))

    assert (first.created, second.created) == (3, 0)
    assert sorted(Delivery.objects.values_list("participant_id", "step", "channel")) == [
        (p.pk, 0, "email") for p in people
    ]


def test_the_database_refuses_a_second_row_for_the_same_step(study, site):
    person = with_contact(site, email="p@example.jp")
    campaign = campaign_for(study, sites=[site])
    values = {"campaign": campaign, "participant": person, "step": 0, "fallback": 0}
    Delivery.objects.create(channel="email", kind="invitation", due_at=jst(1, 18), **values)

    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(channel="line", kind="invitation", due_at=jst(1, 18), **values)


def test_nothing_before_the_start_nor_for_an_inactive_campaign(study, site):
    with_contact(site, email="p@example.jp")
    campaign = campaign_for(study, sites=[site])

    assert scheduling.campaigns_run(now=jst(1, 17, 59)).created == 0
    Campaign.objects.filter(pk=campaign.pk).update(active=False)
    assert scheduling.campaigns_run(now=jst(1, 18)).created == 0
    assert not Delivery.objects.exists()


def test_a_start_inside_the_quiet_hours_waits_for_their_end(study, site):
    with_contact(site, email="p@example.jp")
    campaign_for(study, sites=[site], starts_at=jst(1, 23))

    scheduling.campaigns_run(now=jst(1, 23))
    assert not Delivery.objects.exists()
    scheduling.campaigns_run(now=jst(2, 8))
    assert Delivery.objects.get().due_at == jst(2, 8)


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        (Campaign.Audience.NOT_STARTED, {"fresh"}),
        (Campaign.Audience.DRAFTS, {"draft"}),
        (Campaign.Audience.NOT_SUBMITTED, {"fresh", "draft"}),
    ],
)
def test_the_audience_decides_who_is_written_to(study, site, audience, expected):
    people = {
        "fresh": with_contact(site, email="fresh@example.jp"),
        "draft": with_contact(site, email="draft@example.jp"),
        "done": with_contact(site, email="done@example.jp"),
    }
    survey_services.response_save_draft(
        participant=people["draft"], answers={"reassured": "agree"}, language="ja"
    )
    survey_services.response_submit(
        participant=people["done"], answers=complete_answers(), language="ja"
    )
    campaign_for(study, sites=[site], audience=audience)

    scheduling.campaigns_run(now=jst(1, 18))

    reached = set(Delivery.objects.values_list("participant_id", flat=True))
    assert reached == {people[name].pk for name in expected}


def test_a_campaign_without_sites_reaches_every_site_of_its_study(study, site):
    here = with_contact(site, email="here@example.jp")
    there = with_contact(SiteFactory(study=study), email="there@example.jp")
    other_study = with_contact(SiteFactory(), email="other@example.jp")
    campaign_for(study)

    scheduling.campaigns_run(now=jst(1, 18))

    reached = set(Delivery.objects.values_list("participant_id", flat=True))
    assert reached == {here.pk, there.pk}
    assert other_study.pk not in reached


def test_a_withdrawal_cancels_the_queued_message_and_no_reminder_follows(study, site):
    person = with_contact(site, email="p@example.jp")
    campaign_for(study, sites=[site], starts_at=jst(1, 18))
    scheduling.campaigns_run(now=jst(1, 18))  # queued, not yet sent

    survey_services.participant_withdraw(participant=person)
    for now in hours(jst(1, 19), jst(8, 19), every=6):
        scheduling.campaigns_run(now=now)
        play_channels(now)

    [only] = Delivery.objects.all()
    assert only.status == Delivery.Status.CANCELLED


def test_upcoming_lists_the_next_messages_soonest_first(study, site):
    later = with_contact(site, email="later@example.jp")
    sooner = ParticipantFactory(site=site)
    campaign = campaign_for(study, sites=[site])
    scheduling.campaigns_run(now=jst(1, 18))
    Delivery.objects.filter(participant=later).update(
        status=Delivery.Status.SENT, sent_at=jst(1, 20)
    )

    upcoming = scheduling.campaign_upcoming(campaign=campaign)

    assert [(p.participant_id, p.due.step, p.due.at, p.channel) for p in upcoming] == [
        (sooner.pk, 1, jst(3, 18), "letter"),  # the letter counts from the day it was listed
        (later.pk, 1, jst(3, 20), "email"),
    ]


def test_a_submission_cancels_the_queued_reminder(study, site, django_capture_on_commit_callbacks):
    person = with_contact(site, email="p@example.jp")
    campaign_for(study, sites=[site])
    scheduling.campaigns_run(now=jst(1, 18))
    play_channels(jst(1, 18))
    scheduling.campaigns_run(now=jst(3, 18))  # reminder 1 queued
    reminder = Delivery.objects.get(participant=person, step=1)

    with django_capture_on_commit_callbacks(execute=True):
        survey_services.response_submit(
            participant=person, answers=complete_answers(), language="ja"
        )
    scheduling.campaigns_run(now=jst(5, 18))

    reminder.refresh_from_db()
    assert reminder.status == Delivery.Status.CANCELLED
    assert Delivery.objects.filter(participant=person).count() == 2


def test_the_beat_runs_the_scheduler_every_minute(settings, study, site):
    from fieldwork.tasks import schedule_campaigns

    entry = settings.CELERY_BEAT_SCHEDULE["schedule-campaigns"]
    assert entry["task"] == schedule_campaigns.name and entry["schedule"] <= 60
    with_contact(site, email="p@example.jp")
    campaign_for(study, sites=[site], starts_at=jst(1, 10), quiet_from=time(0), quiet_until=time(0))

    assert schedule_campaigns.apply().get()["created"] == 1  # real now is after 2026-06-01


def test_stopping_a_campaign_cancels_what_it_queued_and_starting_it_again_resumes(study, site):
    from fieldwork.campaigns.services import campaign_save

    waiting = with_contact(site, email="w@example.jp")
    campaign = campaign_for(study, sites=[site], starts_at=jst(1, 23))  # due at 08:00
    scheduling.campaigns_run(now=jst(1, 23))
    assert not Delivery.objects.exists()
    scheduling.campaigns_run(now=jst(2, 7, 59))  # nothing yet: due at 08:00
    scheduling.campaigns_run(now=jst(2, 8))
    queued = Delivery.objects.get()

    campaign.active = False
    campaign_save(campaign=campaign, sites=[site], now=jst(2, 8, 30))
    queued.refresh_from_db()
    assert queued.status == Delivery.Status.CANCELLED
    scheduling.campaigns_run(now=jst(2, 9))
    assert Delivery.objects.count() == 1  # stopped: nothing new

    campaign.active = True
    campaign_save(campaign=campaign, sites=[site], now=jst(2, 10))
    scheduling.campaigns_run(now=jst(2, 10))
    again = Delivery.objects.exclude(pk=queued.pk).get()
    assert (again.participant_id, again.step, again.fallback, again.status) == (
        waiting.pk,
        0,
        1,
        Delivery.Status.QUEUED,
    )
    assert again.due_at == jst(2, 10)


def print_list(participant) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """(step, kind) of the participant's letters waiting to be printed."""
    return sorted(
        Delivery.objects.filter(
            participant=participant, channel="letter", status=Delivery.Status.QUEUED
        ).values_list("step", "kind")
    )


def test_an_unprinted_letter_does_not_hold_the_next_reminder_back(study, site):
    nobody_prints = ParticipantFactory(site=site)  # no contact details: letters only
    campaign = campaign_for(study, sites=[site])

    steps = []
    for now in hours(jst(1, 12), jst(9, 12), every=2):  # the beat; nobody prints
        report = scheduling.campaigns_run(now=now)
        if report.created:
            steps.append((now, report.created, report.withdrawn, print_list(nobody_prints)))

    # By hand: invitation at 18:00 on the 1st; each reminder 2 days after the previous
    # letter's due time, printed or not (the second reminder letter meets the first one,
    # of the same kind, still unprinted: it used to be refused and wait forever); each
    # replaces the letter before it on the print list.
    assert steps == [
        (jst(1, 18), 1, 0, [(0, "invitation")]),
        (jst(3, 18), 1, 1, [(1, "reminder")]),
        (jst(5, 18), 1, 1, [(2, "reminder")]),
    ]
    withdrawn = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.CANCELLED)
    assert sorted(withdrawn.values_list("step", "last_error")) == [
        (0, scheduling.OUTDATED_LETTER),
        (1, scheduling.OUTDATED_LETTER),
    ]


def test_a_printed_letter_counts_as_sent_when_it_was_printed(study, site):
    person = ParticipantFactory(site=site)
    campaign_for(study, sites=[site], reminder_after_days=3)
    scheduling.campaigns_run(now=jst(1, 18))
    invitation = Delivery.objects.get(participant=person, step=0)
    assert invitation.channel == "letter"

    # Printed a day late: the reminder is due 3 days after the printing, not the due time.
    assert claim(invitation.pk, now=jst(2, 10))
    Delivery.objects.filter(pk=invitation.pk).update(
        status=Delivery.Status.SENT, sent_at=jst(2, 10)
    )
    for now in hours(jst(2, 12), jst(5, 8), every=2):
        assert scheduling.campaigns_run(now=now).created == 0
    report = scheduling.campaigns_run(now=jst(5, 10))
    assert report.created == 1 and report.withdrawn == 0
    assert print_list(person) == [(1, "reminder")]
    assert Delivery.objects.get(pk=invitation.pk).status == Delivery.Status.SENT


def test_a_letter_being_printed_is_not_withdrawn(study, site):
    person = ParticipantFactory(site=site)
    campaign_for(study, sites=[site])
    scheduling.campaigns_run(now=jst(1, 18))
    invitation = Delivery.objects.get(participant=person, step=0)
    assert claim(invitation.pk, now=jst(3, 17, 59))  # a print run took it a minute ago

    report = scheduling.campaigns_run(now=jst(3, 18))

    # It is going out: the reminder waits until it is marked printed (and counts from then).
    assert (report.withdrawn, report.created) == (0, 0)
    assert Delivery.objects.get(pk=invitation.pk).status == Delivery.Status.SENDING


def test_a_newer_e_mail_of_another_campaign_withdraws_the_unprinted_letter(study, site):
    person = ParticipantFactory(site=site)
    campaign_for(study, sites=[site])
    scheduling.campaigns_run(now=jst(1, 18))
    assert print_list(person) == [(0, "invitation")]
    # The participant's e-mail address becomes known; a second campaign writes to them.
    contact_set(participant=person, values=ContactValues(email="late@example.jp"))
    campaign_for(study, sites=[site], name="追加の案内", starts_at=jst(2, 10))

    report = scheduling.campaigns_run(now=jst(2, 10))

    assert report.created == 1 and report.withdrawn == 1
    assert print_list(person) == []
    assert Delivery.objects.get(participant=person, channel="email").step == 0
