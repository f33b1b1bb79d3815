"""The campaigns' admin: a manager creates a campaign for their site, bad input comes back
as form errors naming the problem (never a 500, nothing saved), the change page shows the
preview and the next messages, and a campaign reaching another's site is theirs to read
only."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from fieldwork.campaigns.rules import JAPAN
from fieldwork.models import Campaign
from surveys.models import Membership
from tests.factories import SiteFactory
from tests.fieldwork.conftest import with_contact

pytestmark = pytest.mark.django_db

ADD = "admin:fieldwork_campaign_add"


@pytest.fixture
def manager(site):  # type: ignore[no-untyped-def]
    user = User.objects.create_user("kodomo", password="pw-campaigns-1234", is_staff=True)
    for codename in ("view_campaign", "add_campaign", "change_campaign", "view_delivery"):
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="fieldwork", codename=codename)
        )
    Membership.objects.create(user=user, site=site, role=Membership.Role.MANAGER)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def form(site, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "name": "6月の案内",
        "study": site.study_id,
        "sites": [site.pk],
        "active": "on",
        "starts_at_0": "2099-06-01",
        "starts_at_1": "10:00",
        "reminder_after_days": "7",
        "max_reminders": "2",
        "quiet_from": "21:00",
        "quiet_until": "08:00",
        "audience": Campaign.Audience.NOT_SUBMITTED,
        "channel_order": Campaign.ChannelOrder.LINE_EMAIL,
        "invitation_ja": "{自治体名}からのお願いです。{リンク}",
        "reminder_ja": "",
        "invitation_en": "",
        "reminder_en": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_add_page_opens_in_either_language(manager, site, language):
    response = manager.get(reverse(ADD), HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    fields = list(response.context["adminform"].form.fields)
    assert fields.index("invitation_ja") < fields.index("invitation_en")  # Japanese first


def test_a_manager_creates_a_campaign_for_their_site(manager, site):
    response = manager.post(reverse(ADD), form(site))

    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get()
    assert list(campaign.sites.all()) == [site]
    assert campaign.starts_at == datetime(2099, 6, 1, 10, 0, tzinfo=JAPAN)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"reminder_ja": "{お名前}様"}, "reminder_ja", "{お名前}"),
        ({"invitation_en": "{link"}, "invitation_en", "no partner"),
        ({"starts_at_0": "2020-06-01"}, "starts_at", "in the past"),
        ({"starts_at_1": "22:30"}, "starts_at", "21:00 to 08:00"),
        ({"sites": []}, "sites", "you manage only some sites"),
        ({"reminder_after_days": "0"}, "reminder_after_days", "greater than or equal to 1"),
    ],
)
def test_bad_input_is_a_form_error_naming_it_and_saves_nothing(
    manager, site, overrides, field, words
):
    SiteFactory(study=site.study)  # a site this manager does not manage

    response = manager.post(reverse(ADD), form(site, **overrides))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field]), errors
    assert not Campaign.objects.exists()


def test_the_change_page_shows_the_preview_and_the_next_messages(manager, site):
    person = with_contact(site, email="p@example.jp")
    manager.post(reverse(ADD), form(site))
    campaign = Campaign.objects.get()

    page = manager.get(reverse("admin:fieldwork_campaign_change", args=[campaign.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert f"{site.name_ja}からのお願いです。http://" in html  # the preview, a sample link
    assert "EXAMPLE-LINK" in html
    assert person.reference in html  # due next: the invitation
    assert "2099-06-01" in html or "June 1, 2099" in html or "2099年6月1日" in html


def test_a_campaign_reaching_another_managers_site_is_read_only(manager, site):
    theirs = SiteFactory(study=site.study)
    campaign = Campaign.objects.create(
        study=site.study,
        name="全体",
        starts_at=datetime(2099, 6, 1, 10, tzinfo=JAPAN),
        quiet_from=time(21),
        quiet_until=time(8),
    )
    campaign.sites.set([site, theirs])
    url = reverse("admin:fieldwork_campaign_change", args=[campaign.pk])

    assert manager.get(url).status_code == 200  # readable
    response = manager.post(url, form(site, name="変えた"))

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name == "全体"


def test_a_campaign_of_another_study_does_not_exist_for_the_manager(manager, site):
    elsewhere = SiteFactory()
    campaign = Campaign.objects.create(
        study=elsewhere.study,
        name="他",
        starts_at=datetime(2099, 6, 1, 10, tzinfo=JAPAN),
    )
    url = reverse("admin:fieldwork_campaign_change", args=[campaign.pk])
    assert manager.get(url).status_code == 404


def test_the_preview_shows_each_channels_standard_text_filled_in(manager, site, sender):
    """Without texts of its own, the campaign's preview shows what each channel would send:
    the e-mail's subject and text, the LINE message and the letter, in both languages,
    with the site's names and a sample link, never a placeholder."""
    manager.post(reverse(ADD), form(site, invitation_ja="", reminder_ja="", invitation_en=""))
    campaign = Campaign.objects.get()
    assert not campaign.invitation_ja.strip()

    page = manager.get(reverse("admin:fieldwork_campaign_change", args=[campaign.pk]))

    page_html = page.content.decode()
    html = page_html[page_html.index("field-preview") : page_html.index("field-upcoming")]
    assert "(the standard text of each channel)" not in html
    study = site.study
    # The standard e-mail subjects and LINE text, from the channels' own templates.
    assert f"【{sender.display_name_ja}】{study.name_ja}" in html
    assert f"{site.name_ja}の「{study.name_ja}」にご参加いただいた方にお送りしています" in html
    assert f"This message is for the participants of “{study.name_en}”" in html
    # The letter's wording, in both languages.
    assert "アンケートへのご回答にご協力" in html and "Dear Hanako Yamada," in html
    assert html.count("/s/EXAMPLE-LINK") >= 8  # e-mail, LINE, letter × languages × kinds
    assert "{リンク}" not in html and "{link}" not in html
