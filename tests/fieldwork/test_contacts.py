"""Contact details (fieldwork/contacts.py, crypto.py): encrypted at rest, readable through
the ORM, rotated keys, the LINE index; the CSV import with per-row errors and nothing
half-imported; kept out of the audit history and the response export."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.db import connection
from django.utils import translation
from rest_framework.test import APIClient

from fieldwork import contacts, crypto, selectors
from fieldwork.contacts import ContactValues, contact_set, contacts_import_csv
from fieldwork.models import Contact
from surveys import services
from surveys.errors import ImportRejected
from surveys.models import Participant
from tests.factories import ParticipantFactory, SiteFactory, complete_answers

ADDRESS = "hanako.yamada@example.jp"
LINE_ID = "U" + "0123456789abcdef" * 2


def raw_columns(contact: Contact) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT email, line_user_id, postal_name, postal_address FROM fieldwork_contact "
            "WHERE id = %s",
            [contact.pk],
        )
        row = cursor.fetchone()
    return dict(zip(["email", "line_user_id", "postal_name", "postal_address"], row, strict=True))


def test_the_database_columns_hold_no_plain_contact_details(participant):
    contact = contact_set(
        participant=participant,
        values=ContactValues(
            email=ADDRESS,
            line_user_id=LINE_ID,
            postal_name="山田 花子",
            postal_address="横浜市中区本町1-1",
        ),
    )

    raw = raw_columns(contact)
    for plain in (ADDRESS, LINE_ID, "山田 花子", "横浜市中区本町1-1"):
        assert all(plain not in value for value in raw.values())
    assert Fernet(crypto._keys()[0].encode()).decrypt(raw["email"].encode()).decode() == ADDRESS
    again = Contact.objects.get(pk=contact.pk)
    assert (again.email, again.line_user_id, again.postal_name) == (ADDRESS, LINE_ID, "山田 花子")


def test_a_rotated_key_still_reads_old_rows_and_reencryption_moves_them(participant, settings):
    old = settings.HYOKA_CONTACT_KEYS[0]
    contact = contact_set(
        participant=participant, values=ContactValues(email=ADDRESS, line_user_id=LINE_ID)
    )
    new = Fernet.generate_key().decode()
    settings.HYOKA_CONTACT_KEYS = [new, old]

    assert Contact.objects.get(pk=contact.pk).email == ADDRESS
    assert selectors.contact_by_line_user(LINE_ID) == contact  # found by the old index

    assert contacts.contacts_reencrypt() == 1
    assert contacts.contacts_reencrypt() == 0  # nothing left to do
    settings.HYOKA_CONTACT_KEYS = [new]  # the old key dropped
    assert Fernet(new.encode()).decrypt(raw_columns(contact)["email"].encode()) == ADDRESS.encode()
    assert Contact.objects.get(pk=contact.pk).email == ADDRESS
    assert selectors.contact_by_line_user(LINE_ID) == contact


def test_the_line_user_index_finds_only_its_own_participant(site):
    first, second = ParticipantFactory(site=site), ParticipantFactory(site=site)
    contact_set(participant=first, values=ContactValues(line_user_id=LINE_ID))
    other = "U" + "f" * 32
    contact_set(participant=second, values=ContactValues(line_user_id=other))

    assert selectors.contact_by_line_user(LINE_ID).participant == first
    assert selectors.contact_by_line_user(other).participant == second
    assert selectors.contact_by_line_user("U" + "e" * 32) is None


def test_contacts_are_kept_out_of_every_history_table(participant):
    contact_set(participant=participant, values=ContactValues(email=ADDRESS))

    history_tables = [t for t in connection.introspection.table_names() if "historical" in t]
    assert history_tables
    with connection.cursor() as cursor:
        for table in history_tables:
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            assert not {"email", "line_user_id", "postal_address"} & set(columns), table


# --- The CSV import -------------------------------------------------------------------

HEADER = "reference,email,line_user_id,postal_name,postal_address,language\r\n"


def test_an_import_stores_every_row(site):
    a, b = ParticipantFactory(site=site), ParticipantFactory(site=site)
    data = (
        HEADER
        + f"{a.reference},{ADDRESS},{LINE_ID},,,en\r\n"
        + f'{b.reference},,,山田 太郎,"横浜市中区本町1-1\r\nコーポ101",\r\n'
    ).encode()

    result = contacts_import_csv(study=site.study, data=data)

    assert (result.created, result.updated) == (2, 0)
    first, second = Contact.objects.get(participant=a), Contact.objects.get(participant=b)
    assert (first.email, first.line_user_id, first.language) == (ADDRESS, LINE_ID, "en")
    assert (second.postal_name, second.postal_address, second.language) == (
        "山田 太郎",
        "横浜市中区本町1-1\nコーポ101",
        "ja",
    )


def test_importing_again_replaces_the_contact_details(site):
    a = ParticipantFactory(site=site)
    contacts_import_csv(study=site.study, data=HEADER + f"{a.reference},{ADDRESS},,,,\r\n")

    result = contacts_import_csv(
        study=site.study, data=HEADER + f"{a.reference},new@example.jp,,,,en\r\n"
    )

    assert (result.created, result.updated) == (0, 1)
    assert Contact.objects.get(participant=a).email == "new@example.jp"


def test_bad_rows_give_per_row_errors_and_nothing_is_imported(site):
    good = ParticipantFactory(site=site)
    bad_mail, bad_line, bad_lang = (ParticipantFactory(site=site) for _ in range(3))
    data = (
        HEADER
        + f"{good.reference},{ADDRESS},,,,\r\n"  # row 2: fine
        + f"{bad_mail.reference},yamada@@example,,,,\r\n"  # row 3
        + f"{bad_line.reference},,U123,,,\r\n"  # row 4
        + "NOBODY,someone@example.jp,,,,\r\n"  # row 5
        + f"{bad_lang.reference},x@example.jp,,,,fr\r\n"  # row 6
        + f"{good.reference},{ADDRESS},,,,\r\n"  # row 7: twice
        + f"{bad_mail.reference},,,,,\r\n"  # row 8: nothing to store
    )

    with translation.override("en"), pytest.raises(ImportRejected) as caught:
        contacts_import_csv(study=site.study, data=data)
    with translation.override("ja"), pytest.raises(ImportRejected) as in_japanese:
        contacts_import_csv(study=site.study, data=data)

    assert in_japanese.value.errors[7] == ["2行目と同じ参加者です。"]  # the manager's language
    errors = caught.value.errors
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]
    assert "not a valid e-mail address" in errors[3][0]
    assert "not a LINE user id" in errors[4][0]
    assert "No participant with this reference" in errors[5][0]
    assert "“fr”" in errors[6][0]
    assert "Same participant as row 2" in errors[7][0]
    assert "no e-mail address, LINE user id or postal address" in errors[8][0]
    assert Contact.objects.count() == 0


def test_a_participant_of_another_site_does_not_exist_for_the_import(site):
    elsewhere = ParticipantFactory(site=SiteFactory(study=site.study))
    mine = site.study.sites.filter(pk=site.pk)

    with translation.override("en"), pytest.raises(ImportRejected) as caught:
        contacts_import_csv(
            study=site.study, data=HEADER + f"{elsewhere.reference},{ADDRESS},,,,\r\n", sites=mine
        )

    assert "No participant with this reference" in caught.value.errors[2][0]
    assert Contact.objects.count() == 0


@translation.override("en")
def test_a_file_not_in_utf8_or_without_the_columns_is_refused(site):
    with pytest.raises(ImportRejected, match="UTF-8"):
        contacts_import_csv(
            study=site.study, data=(HEADER + "P,山田@example.jp,,,,\r\n").encode("cp932")
        )
    with pytest.raises(ImportRejected, match="needs the columns"):
        contacts_import_csv(study=site.study, data="reference,site\r\nP-1,a\r\n")


def test_the_response_export_holds_no_contact_details(participant):
    contact_set(
        participant=participant,
        values=ContactValues(
            email=ADDRESS, line_user_id=LINE_ID, postal_name="山田 花子", postal_address="横浜市"
        ),
    )
    services.response_submit(participant=participant, answers=complete_answers(), language="ja")
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="x"))

    response = client.get(
        "/api/v1/responses/export/",
        {"study": participant.site.study_id},
        headers={"Accept": "text/csv", "Accept-Language": "en"},
    )

    text = b"".join(response.streaming_content).decode("utf-8")
    assert participant.reference in text  # the row is there
    for value in (ADDRESS, LINE_ID, "山田 花子", "横浜市", "hanako"):
        assert value not in text


def test_participants_and_their_contacts_are_imported_from_one_file(site):
    existing = ParticipantFactory(site=site)
    data = (
        "reference,site,email,line_user_id,postal_name,postal_address,language\r\n"
        f"{existing.reference},{site.code},{ADDRESS},,,,\r\n"
        f"NEW-001,{site.code},new@example.jp,,,,en\r\n"
    )

    result = contacts_import_csv(study=site.study, data=data, create_participants=True)

    assert (result.created, result.updated) == (2, 0)
    new = Participant.objects.get(site=site, reference="NEW-001")
    assert (new.contact.email, new.contact.language) == ("new@example.jp", "en")
    assert Contact.objects.get(participant=existing).email == ADDRESS


@translation.override("en")
def test_a_new_participant_refused_by_the_survey_rules_is_a_row_error_and_nothing_is_kept(
    site,
):
    other_study_site = SiteFactory()
    data = (
        "reference,site,email,line_user_id,postal_name,postal_address,language\r\n"
        f"NEW-001,{site.code},new@example.jp,,,,\r\n"  # row 2: fine on its own
        f"taro@example.jp,{site.code},taro@example.jp,,,,\r\n"  # row 3: an address as reference
        f"NEW-002,{other_study_site.code},b@example.jp,,,,\r\n"  # row 4: not this study's site
        f"NEW-003,{site.code},not-an-address,,,,\r\n"  # row 5: a bad address
    )

    with pytest.raises(ImportRejected) as caught:
        contacts_import_csv(study=site.study, data=data, create_participants=True)

    errors = caught.value.errors
    assert sorted(errors) == [3, 4, 5]
    assert "looks like an e-mail address" in errors[3][0]
    assert "not one of the sites you manage" in errors[4][0]
    assert "not a valid e-mail address" in errors[5][0]
    assert not Participant.objects.filter(reference__startswith="NEW-").exists()
    assert Contact.objects.count() == 0


@translation.override("en")
def test_without_creating_participants_an_unknown_reference_is_an_error(site):
    data = "reference,site,email\r\n" + f"NEW-001,{site.code},new@example.jp\r\n"

    with pytest.raises(ImportRejected) as caught:
        contacts_import_csv(study=site.study, data=data)

    assert "No participant with this reference" in caught.value.errors[2][0]
    assert not Participant.objects.filter(reference="NEW-001").exists()
