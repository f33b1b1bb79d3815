"""Stable participant links (``surveys/links.py``): the same link on every call, export and
reminder; replaced only on purpose, and recorded with who did it; derived from a key the
database does not hold; links from before keep working beside the derived one."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import importlib
import io
import re

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from surveys import erasure, links, services
from surveys.errors import LinkKeyMissing, ParticipantErased, ParticipantWithdrawn
from surveys.models import LegacyLink, Participant, ParticipantLink
from surveys.selectors import participant_for_token
from surveys.submission import link_for_token
from tests.factories import ParticipantFactory

KEY = "a-link-key-for-the-tests-0123456789-abcdefghij"
NEW_KEY = "the-key-after-a-rotation-9876543210-zyxwvutsrq"
TOKEN = re.compile(r"/r/([A-Za-z0-9_-]{43})/$")

pytestmark = pytest.mark.usefixtures("link_key")


@pytest.fixture
def link_key(settings):  # type: ignore[no-untyped-def]
    settings.HYOKA_LINK_KEY = KEY
    settings.HYOKA_LINK_OLD_KEYS = []
    settings.SITE_URL = "https://hyoka.example.jp"
    return settings


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def expected_token(key: str, nonce: str) -> str:
    """The derivation, computed here from its definition: HMAC-SHA256 of the labelled
    nonce, URL-safe base64 without padding."""
    digest = hmac.new(key.encode(), f"hyoka-link-v1:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_of(url: str) -> str:
    match = TOKEN.search(url)
    assert match is not None, url
    return match.group(1)


def legacy_participant(site) -> Participant:  # type: ignore[no-untyped-def]
    """A participant as made before links were derived: a random token (the factory's,
    as ``tokens.new_token`` made them), its hash kept by the data migration."""
    participant = ParticipantFactory(site=site)
    migration = importlib.import_module("surveys.migrations.0013_legacy_links_kept")
    migration.keep_legacy_links(apps, None)
    return participant


# --- The same link ---------------------------------------------------------------------


def test_a_participants_link_is_the_same_on_every_call_and_opens_their_questionnaire(site):
    invitation = services.participant_create(site=site, reference="L-1")
    participant = Participant.objects.get(pk=invitation.participant.pk)

    first = links.participant_link(participant)
    again = links.participant_link(Participant.objects.get(pk=participant.pk))

    assert first == again == invitation.url
    assert first.startswith("https://hyoka.example.jp/r/")
    token = token_of(first)
    assert participant_for_token(token) == participant
    assert Client().get(f"/r/{token}/").status_code == 200


def test_the_link_is_the_hmac_of_the_stored_nonce_under_the_key(site):
    invitation = services.participant_create(site=site, reference="L-1")
    row = ParticipantLink.objects.get(participant=invitation.participant)

    assert re.fullmatch(r"[0-9a-f]{32}", row.nonce)  # 128 random bits
    assert invitation.token == expected_token(KEY, row.nonce)
    participant = Participant.objects.get(pk=invitation.participant.pk)
    assert participant.token_hash == sha256(invitation.token)


def test_bulk_links_are_the_single_links_in_a_fixed_number_of_queries(site):
    made = [services.participant_create(site=site, reference=f"B-{i}") for i in range(30)]
    participants = list(Participant.objects.filter(site=site))

    with CaptureQueriesContext(connection) as few:
        links.participant_links(participants[:3])
    with CaptureQueriesContext(connection) as many:
        by_id = links.participant_links(participants)

    assert len(many) == len(few)
    assert by_id == {i.participant.pk: i.url for i in made}


def test_reminders_and_reprints_carry_the_link_of_the_invitation(site):
    imported = services.participants_import_csv(
        study=site.study, data=f"reference,site\nR-1,{site.code}\nR-2,{site.code}\n"
    )
    invitation_links = {i.participant.pk: i.url for i in imported}

    reminder = links.participant_links(Participant.objects.filter(site=site))
    reprint = links.participant_links(Participant.objects.filter(site=site))

    assert reminder == reprint == invitation_links


def test_the_api_shows_the_stable_link_on_create(site):
    user = User.objects.create_superuser("root", password="pw-links-1234")
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    body = client.post(
        "/api/v1/participants/", {"site": site.pk, "reference": "API-1"}, format="json"
    ).json()

    participant = Participant.objects.get(pk=body["id"])
    assert body["invitation_url"] == links.participant_link(participant)
    assert body["token"] == token_of(body["invitation_url"])


# --- Replacing ------------------------------------------------------------------------


def test_replacing_ends_the_old_link_at_once_and_records_who_did_it(site):
    manager = User.objects.create_superuser("manager", password="pw-links-1234")
    participant = services.participant_create(site=site, reference="X-1").participant
    old = links.participant_link(participant)

    (new,) = links.participant_replace_links(participants=[participant], by=manager)

    assert new.url != old
    assert participant_for_token(token_of(old)) is None
    assert participant_for_token(new.token) == participant
    assert links.participant_link(Participant.objects.get(pk=participant.pk)) == new.url
    last = Participant.history.filter(id=participant.pk).latest("history_id")  # type: ignore[attr-defined]
    assert last.history_change_reason == "invitation link reissued"
    assert last.history_user == manager


def test_erased_and_withdrawn_participants_get_no_new_link(site):
    erased, withdrawn = ParticipantFactory(site=site), ParticipantFactory(site=site)
    erasure.participant_erase(participant=erased, by=None, reason="asked")
    services.participant_withdraw(participant=withdrawn)

    with pytest.raises(ParticipantErased):
        links.participant_replace_links(participants=[erased])
    with pytest.raises(ParticipantWithdrawn):
        links.participant_replace_links(participants=[withdrawn])
    assert not ParticipantLink.objects.exists()


# --- Links from before ----------------------------------------------------------------


def test_a_link_from_before_keeps_working_and_gets_a_derived_link_beside_it(site):
    participant = legacy_participant(site)
    old_token = participant.token

    derived = links.participant_link(participant)

    assert token_of(derived) != old_token
    assert participant_for_token(old_token) == participant  # the letter already sent
    assert participant_for_token(token_of(derived)) == participant
    assert Client().get(f"/r/{old_token}/").status_code == 200
    assert links.participant_link(Participant.objects.get(pk=participant.pk)) == derived


def test_a_link_from_before_works_even_without_the_data_migration(site):
    """A participant made by hand (no stored nonce, no kept hash): the derivation keeps
    their current hash first."""
    participant = ParticipantFactory(site=site)

    derived = links.participant_link(participant)

    assert participant_for_token(participant.token) == participant
    assert participant_for_token(token_of(derived)) == participant


def test_only_a_miss_pays_for_the_links_from_before(site):
    participant = legacy_participant(site)
    derived = token_of(links.participant_link(participant))

    with CaptureQueriesContext(connection) as hit:
        assert link_for_token(derived) is not None
    with CaptureQueriesContext(connection) as miss:
        assert link_for_token(participant.token) is not None

    assert len(hit) == 1
    assert len(miss) == 2


def test_replacing_ends_the_link_from_before_too(site):
    participant = legacy_participant(site)
    derived = token_of(links.participant_link(participant))

    links.participant_replace_links(participants=[participant])

    assert participant_for_token(participant.token) is None
    assert participant_for_token(derived) is None
    assert not LegacyLink.objects.filter(participant=participant).exists()


def test_a_withdrawn_participants_link_from_before_stops_working(site):
    participant = legacy_participant(site)
    links.participant_link(participant)
    services.participant_withdraw(participant=participant)

    assert participant_for_token(participant.token) is None


def test_the_data_migration_keeps_every_hash_and_its_reverse_drops_them(site):
    kept, erased = ParticipantFactory(site=site), ParticipantFactory(site=site)
    erasure.participant_erase(participant=erased, by=None, reason="asked")
    new = services.participant_create(site=site, reference="NEW").participant
    migration = importlib.import_module("surveys.migrations.0013_legacy_links_kept")

    migration.keep_legacy_links(apps, None)

    assert dict(LegacyLink.objects.values_list("participant_id", "token_hash")) == {
        kept.pk: sha256(kept.token)
    }
    assert new.pk not in set(LegacyLink.objects.values_list("participant_id", flat=True))
    migration.drop_legacy_links(apps, None)
    assert not LegacyLink.objects.exists()
    assert participant_for_token(kept.token) == kept  # not derived yet: still its own hash


# --- Erasure --------------------------------------------------------------------------


def test_an_erased_participant_has_no_working_link_and_gets_none(site):
    participant = legacy_participant(site)
    derived = token_of(links.participant_link(participant))

    erasure.participant_erase(participant=participant, by=None, reason="asked")

    assert participant_for_token(derived) is None
    assert participant_for_token(participant.token) is None
    with pytest.raises(ParticipantErased):
        links.participant_link(participant)
    assert not ParticipantLink.objects.filter(participant=participant).exists()
    assert not LegacyLink.objects.filter(participant=participant).exists()


def test_a_withdrawn_participant_gets_no_link(site):
    participant = services.participant_create(site=site, reference="W-1").participant
    services.participant_withdraw(participant=participant)

    with pytest.raises(ParticipantWithdrawn):
        links.participant_link(participant)


# --- The key --------------------------------------------------------------------------


def test_a_copy_of_the_database_without_the_key_gives_no_link(site):
    participant = services.participant_create(site=site, reference="D-1").participant
    stored = Participant.objects.get(pk=participant.pk).token_hash
    nonce = ParticipantLink.objects.get(participant=participant).nonce

    guesses = [expected_token(key, nonce) for key in ("", "hyoka", NEW_KEY, stored)]

    assert all(sha256(guess) != stored for guess in guesses)
    assert sha256(expected_token(KEY, nonce)) == stored  # only the key gives it


def test_a_rotation_with_the_old_key_kept_leaves_every_link_the_same(link_key, site):
    before = services.participant_create(site=site, reference="K-1").participant
    old_link = links.participant_link(before)

    link_key.HYOKA_LINK_KEY = NEW_KEY
    link_key.HYOKA_LINK_OLD_KEYS = [KEY]
    after = services.participant_create(site=site, reference="K-2").participant

    assert links.participant_link(Participant.objects.get(pk=before.pk)) == old_link
    nonce = ParticipantLink.objects.get(participant=after).nonce
    assert token_of(links.participant_link(after)) == expected_token(NEW_KEY, nonce)


def test_a_link_whose_key_is_gone_still_works_but_is_not_shown_and_says_why(link_key, site):
    participant = services.participant_create(site=site, reference="K-1").participant
    token = token_of(links.participant_link(participant))
    link_key.HYOKA_LINK_KEY = NEW_KEY  # the old key dropped without replacing the link

    with pytest.raises(LinkKeyMissing) as refused:
        links.participant_link(participant)

    assert "HYOKA_LINK_OLD_KEYS" in refused.value.message
    assert links.key_id(KEY) in refused.value.message
    assert participant_for_token(token) == participant

    # The admin's export says so too, instead of failing.
    manager = User.objects.create_superuser("manager", password="pw-links-1234")
    client = Client()
    client.force_login(manager)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    response = client.post(
        reverse("admin:surveys_participant_changelist"),
        {"action": "export_links", "_selected_action": [participant.pk], "confirmed": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "no longer configured" in page
    assert participant.reference in page

    # Replacing it gives a link under the current key.
    (new,) = links.participant_replace_links(participants=[participant])
    assert links.participant_link(Participant.objects.get(pk=participant.pk)) == new.url


def test_the_command_replaces_the_links_made_under_an_old_key(link_key, site, tmp_path):
    leaked = services.participant_create(site=site, reference="C-1").participant
    leaked_link = links.participant_link(leaked)
    link_key.HYOKA_LINK_KEY = NEW_KEY
    link_key.HYOKA_LINK_OLD_KEYS = [KEY]
    fresh = services.participant_create(site=site, reference="C-2").participant
    fresh_link = links.participant_link(fresh)
    out = tmp_path / "new-links.csv"

    listing = io.StringIO()
    call_command("replace_links", "--keys", stdout=listing)
    assert f"{links.key_id(KEY)}: 1 links (HYOKA_LINK_OLD_KEYS)" in listing.getvalue()
    call_command(
        "replace_links", "--study", site.study.code, "--old-keys", "--out", str(out),
        stdout=io.StringIO(),
    )  # fmt: skip

    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["reference"] for r in rows] == ["C-1"]
    assert participant_for_token(token_of(leaked_link)) is None
    assert participant_for_token(token_of(rows[0]["link"])) == leaked
    assert links.participant_link(Participant.objects.get(pk=fresh.pk)) == fresh_link
    link_key.HYOKA_LINK_OLD_KEYS = []  # the leaked key can go now
    assert links.participant_link(Participant.objects.get(pk=leaked.pk)) == rows[0]["link"]
    with pytest.raises(CommandError, match="exists"):
        call_command("replace_links", "--study", site.study.code, "--out", str(out))
