"""Fieldwork's admin, scoped to the manager's sites: the contact import page, senders,
the delivery log, and the participants' action "Send invitations by e-mail"."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fieldwork import services
from fieldwork.line import linking
from fieldwork.models import Contact, Delivery, Sender
from surveys.models import Membership
from tests.factories import ParticipantFactory, SiteFactory

from .conftest import with_contact

PASSWORD = "pw-fieldwork-1234"
LINE_ID = "U" + "0123456789abcdef" * 2
PERMISSIONS = [
    ("surveys", "view_participant"),
    ("surveys", "change_participant"),
    ("fieldwork", "view_contact"),
    ("fieldwork", "add_contact"),
    ("fieldwork", "change_contact"),
    ("fieldwork", "view_sender"),
    ("fieldwork", "add_sender"),
    ("fieldwork", "change_sender"),
    ("fieldwork", "view_delivery"),
    ("fieldwork", "add_delivery"),
]


@pytest.fixture
def other_site(site):  # type: ignore[no-untyped-def]
    return SiteFactory(study=site.study)


@pytest.fixture
def manager(site):  # type: ignore[no-untyped-def]
    user = User.objects.create_user("kodomo", password=PASSWORD, is_staff=True)
    for app, codename in PERMISSIONS:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    Membership.objects.create(user=user, site=site, role=Membership.Role.MANAGER)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def upload(client: Client, study, text: str):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("admin:fieldwork_contact_import"),
        {"study": study.pk, "file": SimpleUploadedFile("contacts.csv", text.encode("utf-8"))},
    )


HEADER = "reference,email,line_user_id,postal_name,postal_address,language\n"


def test_a_manager_imports_contacts_of_their_site(manager, site):
    people = [ParticipantFactory(site=site) for _ in range(2)]
    text = HEADER + "".join(f"{p.reference},{p.reference.lower()}@example.jp,,,,\n" for p in people)

    response = upload(manager, site.study, text)

    assert response.status_code == 302
    assert sorted(Contact.objects.values_list("email", flat=True)) == sorted(
        f"{p.reference.lower()}@example.jp" for p in people
    )


def test_an_import_naming_another_sites_participant_lists_the_row_and_imports_nothing(
    manager, site, other_site
):
    mine, theirs = ParticipantFactory(site=site), ParticipantFactory(site=other_site)
    text = HEADER + f"{mine.reference},a@example.jp,,,,\n{theirs.reference},b@example.jp,,,,\n"

    response = upload(manager, site.study, text)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-row="3"' in page and 'data-row="2"' not in page
    assert "No participant with this reference" in page
    assert Contact.objects.count() == 0


def test_the_contact_list_shows_no_values_and_only_the_managers_site(manager, site, other_site):
    mine = with_contact(site, email="mine@example.jp")
    theirs = with_contact(other_site, email="theirs@example.jp")

    page = manager.get(reverse("admin:fieldwork_contact_changelist")).content.decode()

    assert "mine@example.jp" not in page and "theirs@example.jp" not in page
    assert mine.reference in page and theirs.reference not in page


def test_a_manager_edits_their_sites_sender_only(manager, site, other_site):
    Sender.objects.create(site=site, display_name_ja="区役所", from_address="a@city.example.jp")
    theirs = Sender.objects.create(
        site=other_site, display_name_ja="別の区", from_address="b@city.example.jp"
    )

    listing = manager.get(reverse("admin:fieldwork_sender_changelist")).content.decode()
    other_page = manager.get(reverse("admin:fieldwork_sender_change", args=[theirs.pk]))

    assert "区役所" in listing and "別の区" not in listing
    assert other_page.status_code == 404


def test_send_invitations_by_email_queues_and_sends_after_commit(
    manager, site, sender, django_capture_on_commit_callbacks
):
    invited = with_contact(site, email="hanako@example.jp")
    no_mail = with_contact(site, postal_name="山田", postal_address="横浜市")

    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(
            reverse("admin:surveys_participant_changelist"),
            {
                "action": "send_invitations_by_email",
                helpers.ACTION_CHECKBOX_NAME: [invited.pk, no_mail.pk],
            },
            follow=True,
        )

    assert response.status_code == 200
    page = response.content.decode()
    assert "1 invitation queued for sending by e-mail." in page
    assert "no e-mail address: 1" in page
    assert [m.to for m in mail.outbox] == [["hanako@example.jp"]]
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_without_a_sender_the_action_says_so_and_queues_nothing(manager, site):
    participant = with_contact(site, email="hanako@example.jp")

    response = manager.post(
        reverse("admin:surveys_participant_changelist"),
        {"action": "send_invitations_by_email", helpers.ACTION_CHECKBOX_NAME: [participant.pk]},
        follow=True,
    )

    assert "has no sender" in response.content.decode()
    assert Delivery.objects.count() == 0


def test_the_delivery_log_shows_the_managers_site_only(manager, site, other_site, sender):
    mine = with_contact(site, email="a@example.jp")
    theirs = with_contact(other_site, email="b@example.jp")
    Sender.objects.create(site=other_site, display_name_ja="別", from_address="b@city.example.jp")
    services.email_deliveries_queue(participants=[mine, theirs])

    page = manager.get(reverse("admin:fieldwork_delivery_changelist")).content.decode()
    assert mine.reference in page and theirs.reference not in page


def test_the_delivery_log_shows_attempts_one_time_and_the_error_cut_short(manager, site):
    """Narrow enough for 1280 px (tests/e2e/test_admin_browser.py), with what a manager
    reads there: how many attempts, when it went (or is due), and why it failed."""
    participant = ParticipantFactory(site=site, reference="R-log")
    error = "550 5.1.1 Recipient address rejected: " + "User unknown " * 10
    Delivery.objects.create(
        participant=participant, channel="email", kind="invitation", status="failed",
        attempts=3, due_at=timezone.now(), last_error=error,
    )  # fmt: skip
    page = manager.get(reverse("admin:fieldwork_delivery_changelist")).content.decode()
    assert "3 attempts" in page
    assert f'title="{error}"' in page  # the whole answer on hover; the delivery's page has it
    assert error not in page.replace(f'title="{error}"', "")  # cut short in the cell
    assert '<span class="hyoka-second-line">due</span>' in page


def test_a_manager_corrects_an_address_and_a_wrong_one_is_refused(manager, site):
    participant = with_contact(site, email="old@example.jp")
    contact = Contact.objects.get(participant=participant)
    url = reverse("admin:fieldwork_contact_change", args=[contact.pk])
    form = {
        "email": "not an address",
        "line_user_id": "",
        "postal_name": "",
        "postal_address": "",
        "language": "ja",
    }

    refused = manager.post(url, form)
    accepted = manager.post(
        url, {**form, "email": "new@example.jp", "line_user_id": "U" + "a" * 32}
    )

    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    assert accepted.status_code == 302
    contact.refresh_from_db()
    assert contact.email == "new@example.jp"
    assert contact.line_user_index  # the index follows the value


def test_a_manager_imports_participants_with_their_contacts(manager, site, other_site):
    text = (
        "reference,site,email,line_user_id,postal_name,postal_address,language\n"
        f"NEW-001,{site.code},new@example.jp,,,,\n"
    )

    def post(text: str):  # type: ignore[no-untyped-def]
        return manager.post(
            reverse("admin:fieldwork_contact_import"),
            {
                "study": site.study.pk,
                "create_participants": "on",
                "file": SimpleUploadedFile("contacts.csv", text.encode("utf-8")),
            },
        )

    response = post(text)
    refused = post(text.replace(site.code, other_site.code).replace("NEW-001", "NEW-002"))

    assert response.status_code == 302
    assert Contact.objects.get().participant.reference == "NEW-001"
    assert refused.status_code == 200  # not created at a site the manager does not manage
    assert "is not one of the sites you manage" in refused.content.decode()
    assert not other_site.participants.exists()


def test_a_viewer_is_not_offered_the_send_action(site, sender):
    user = User.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    for app, codename in PERMISSIONS:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    Membership.objects.create(user=user, site=site, role=Membership.Role.VIEWER)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    participant = with_contact(site, email="hanako@example.jp")

    page = client.get(reverse("admin:surveys_participant_changelist")).content.decode()
    posted = client.post(
        reverse("admin:surveys_participant_changelist"),
        {"action": "send_invitations_by_email", helpers.ACTION_CHECKBOX_NAME: [participant.pk]},
    )

    assert "send_invitations_by_email" not in page
    assert posted.status_code in {200, 302, 403}
    assert Delivery.objects.count() == 0


def test_saving_the_contact_form_does_not_undo_a_line_link_made_while_it_was_open(manager, site):
    participant = with_contact(site, email="old@example.jp")
    contact = Contact.objects.get(participant=participant)
    url = reverse("admin:fieldwork_contact_change", args=[contact.pk])
    page = manager.get(url).content.decode()
    assert 'name="initial-line_user_id"' in page  # the value the manager saw goes back
    seen = {
        "email": "old@example.jp",
        "line_user_id": "",
        "postal_name": "",
        "postal_address": "",
        "language": "ja",
    }
    # Meanwhile the participant sends their code in LINE.
    linking.line_user_link(participant=participant, line_user_id=LINE_ID)

    saved = manager.post(
        url,
        {**seen, **{f"initial-{k}": v for k, v in seen.items()}, "email": "new@example.jp"},
    )

    assert saved.status_code == 302
    contact.refresh_from_db()
    assert (contact.email, contact.line_user_id) == ("new@example.jp", LINE_ID)


def test_a_manager_unlinks_a_line_account_by_emptying_the_field(manager, site):
    participant = with_contact(site, email="old@example.jp")
    linking.line_user_link(participant=participant, line_user_id=LINE_ID)
    contact = Contact.objects.get(participant=participant)
    seen = {
        "email": "old@example.jp",
        "line_user_id": LINE_ID,
        "postal_name": "",
        "postal_address": "",
        "language": "ja",
    }

    saved = manager.post(
        reverse("admin:fieldwork_contact_change", args=[contact.pk]),
        {**seen, **{f"initial-{k}": v for k, v in seen.items()}, "line_user_id": ""},
    )

    assert saved.status_code == 302
    contact.refresh_from_db()
    assert (contact.email, contact.line_user_id, contact.line_user_index) == (
        "old@example.jp",
        "",
        "",
    )
    assert linking.linked_contacts(LINE_ID) == []


def test_the_import_page_says_an_empty_cell_keeps_the_value_and_how_to_remove_one(manager):
    page = manager.get(reverse("admin:fieldwork_contact_import")).content.decode()

    assert "leaves the stored value as it is" in page
    assert "empty the field and save" in page
