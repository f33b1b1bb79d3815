"""A campaign's messages through the real channels: a LINE stand-in on 127.0.0.1 and a
real SMTP server. A permanent failure falls through LINE → e-mail → the letter list, and a
campaign's own text is what the participant reads."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.utils import timezone

from fieldwork.campaigns import scheduling
from fieldwork.campaigns.rules import JAPAN
from fieldwork.line import linking
from fieldwork.line.sending import line_deliveries_send
from fieldwork.models import Campaign, Delivery
from fieldwork.sending import email_deliveries_send
from surveys.links import participant_link
from tests.fieldwork.conftest import with_contact
from tests.fieldwork.line.conftest import line_api  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

LINE_USER = "U" + "b" * 32


def started_campaign(study, site, **values):  # type: ignore[no-untyped-def]
    campaign = Campaign.objects.create(
        study=study,
        name="案内",
        starts_at=timezone.now() - timedelta(minutes=1),
        quiet_from=time(0),
        quiet_until=time(0),  # no quiet hours: these tests run at any hour
        active=True,
        **values,
    )
    campaign.sites.set([site])
    return campaign


def test_a_permanent_failure_falls_through_line_then_email_to_the_letter_list(
    line_api,  # noqa: F811
    smtp,
    sender,
    study,
    site,
):
    person = with_contact(site, email="gone@example.jp")
    linking.line_user_link(participant=person, line_user_id=LINE_USER)
    started_campaign(study, site)

    scheduling.campaigns_run(now=timezone.now())
    line_api.fail_next(403, message="The user has blocked the official account")
    line_deliveries_send()
    assert scheduling.campaigns_run(now=timezone.now()).fell_through == 1
    smtp.answers["gone@example.jp"] = "550 5.1.1 no such user"
    email_deliveries_send()
    assert scheduling.campaigns_run(now=timezone.now()).fell_through == 1
    assert scheduling.campaigns_run(now=timezone.now()).fell_through == 0  # nothing after

    rows = list(Delivery.objects.filter(participant=person).order_by("fallback"))
    assert [(d.step, d.fallback, d.channel, d.status) for d in rows] == [
        (0, 0, "line", "failed"),
        (0, 1, "email", "failed"),
        (0, 2, "letter", "queued"),  # on the letter list
    ]
    assert "blocked the official account" in rows[0].last_error
    assert rows[1].last_error.startswith("550")
    assert smtp.messages() == []


def test_the_campaigns_own_text_reaches_line_and_email(
    line_api,  # noqa: F811
    smtp,
    sender,
    study,
    site,
):
    on_line = with_contact(site, email="line@example.jp")
    linking.line_user_link(participant=on_line, line_user_id=LINE_USER)
    by_mail = with_contact(site, email="mail@example.jp", language="en")
    started_campaign(
        study,
        site,
        invitation_ja="{自治体名}からのお願いです。\n{リンク}",
        invitation_en="A request from {municipality}: {link}",
    )

    scheduling.campaigns_run(now=timezone.now())
    line_deliveries_send()
    email_deliveries_send()

    [push] = line_api.pushed
    assert push["messages"][0]["text"].startswith(
        f"{site.name_ja}からのお願いです。\n{participant_link(on_line)}"
    )
    [mail] = smtp.messages()
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert body.strip() == f"A request from {site.name_en}: {participant_link(by_mail)}"
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert f'href="{participant_link(by_mail)}"' in html


def test_a_retry_never_falls_inside_the_campaigns_quiet_hours(smtp, sender, study, site):
    person = with_contact(site, email="later@example.jp")
    now = timezone.now().astimezone(JAPAN).replace(microsecond=0)
    # Quiet hours from 30 seconds from now for two hours: the first retry (after a minute)
    # would fall inside them.
    quiet_from = (now + timedelta(seconds=30)).time()
    quiet_until = (now + timedelta(hours=2)).time()
    campaign = started_campaign(study, site)
    Campaign.objects.filter(pk=campaign.pk).update(quiet_from=quiet_from, quiet_until=quiet_until)
    scheduling.campaigns_run(now=now)
    smtp.answers["later@example.jp"] = "451 4.7.1 try again later"

    email_deliveries_send(now=now)

    delivery = Delivery.objects.get(participant=person)
    assert delivery.status == Delivery.Status.QUEUED and delivery.attempts == 1
    assert delivery.due_at.astimezone(JAPAN).time() == quiet_until
    assert delivery.due_at >= now + timedelta(hours=2) - timedelta(seconds=1)
