"""The managers' texts: placeholders known, refused or filled in (templating.py), and a
campaign refusing a text, a start in the past or inside its quiet hours (services.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError

from fieldwork.campaigns import templating
from fieldwork.campaigns.rules import JAPAN
from fieldwork.campaigns.services import CampaignInvalid, campaign_save
from fieldwork.models import Campaign


def test_known_placeholders_in_both_names_are_filled_in():
    text = "{自治体名}より: {study} の回答は {回答期限} まで。{リンク} {{例}} {sender}"
    templating.check(text)
    values = {
        "municipality": "横浜市",
        "study": "子育て調査",
        "deadline": "2026年6月30日",
        "link": "https://example.jp/s/abc",
        "sender": "子ども家庭課",
    }
    assert templating.render(text, values) == (
        "横浜市より: 子育て調査 の回答は 2026年6月30日 まで。"
        "https://example.jp/s/abc {例} 子ども家庭課"
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("こんにちは {氏名} さん", "{氏名}"),
        ("{link} {Link}", "{Link}"),
        ("{}", "{}"),
        ("{link.__class__}", "{link.__class__}"),
    ],
)
def test_an_unknown_placeholder_is_refused_by_name(text, named):
    with pytest.raises(ValidationError) as caught:
        templating.check(text)
    message = caught.value.messages[0]
    assert named in message
    assert caught.value.code == "unknown_placeholder"


@pytest.mark.parametrize("text", ["{リンク", "締切}", "{link!r}", "{deadline:%Y}"])
def test_a_malformed_placeholder_is_refused(text):
    with pytest.raises(ValidationError) as caught:
        templating.check(text)
    assert caught.value.code == "malformed"


# --- Saving a campaign -------------------------------------------------------------------

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=JAPAN)


def _campaign(study, **values):  # type: ignore[no-untyped-def]
    defaults = {
        "study": study,
        "name": "初回案内",
        "starts_at": NOW + timedelta(hours=8),
        "quiet_from": time(21),
        "quiet_until": time(8),
    }
    return Campaign(**{**defaults, **values})


@pytest.mark.django_db
def test_a_campaign_with_an_unknown_placeholder_is_not_saved(study):
    campaign = _campaign(study, reminder_ja="{自治体名}です。{お名前}様、ご回答を。")

    with pytest.raises(CampaignInvalid) as caught:
        campaign_save(campaign=campaign, sites=[], now=NOW)

    assert "{お名前}" in caught.value.errors["reminder_ja"][0]
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_a_campaign_starting_in_the_past_is_not_saved(study):
    campaign = _campaign(study, starts_at=NOW - timedelta(minutes=1))

    with pytest.raises(CampaignInvalid) as caught:
        campaign_save(campaign=campaign, sites=[], now=NOW)

    assert "past" in caught.value.errors["starts_at"][0]
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_a_campaign_starting_inside_its_quiet_hours_is_not_saved(study):
    campaign = _campaign(study, starts_at=NOW.replace(hour=22))

    with pytest.raises(CampaignInvalid) as caught:
        campaign_save(campaign=campaign, sites=[], now=NOW)

    assert "21:00" in caught.value.errors["starts_at"][0]
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_a_running_campaign_keeps_its_past_start_when_changed(study, site):
    campaign = campaign_save(campaign=_campaign(study), sites=[site], now=NOW)

    campaign.max_reminders = 3
    later = NOW + timedelta(days=3)
    campaign_save(campaign=campaign, sites=[site], now=later)

    campaign.refresh_from_db()
    assert campaign.max_reminders == 3
    assert list(campaign.sites.all()) == [site]
