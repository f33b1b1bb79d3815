"""Erasing a participant's personal data (surveys/erasure.py): the reference becomes a
pseudonym, the link stops working, free text is blanked in the response, drafts, history,
admin log and export; closed answers stay so that scores and signed evaluations recompute
exactly; an erasure record says who, when and why. The append-only history lets
erasure's redacting UPDATE through and nothing else. Through the service, the command and
the admin (reason, password, role, scope)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, models, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from surveys import appendonly, erasure, services
from surveys.errors import ErasureRefused, ParticipantErased
from surveys.exports.records import export_begin
from surveys.exports.running import export_run
from surveys.models import (
    Answer,
    ErasureRecord,
    Instrument,
    Membership,
    Participant,
    Question,
    Response,
    Site,
)
from surveys.selectors import participant_for_token
from surveys.signals import participant_erasing
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

PASSWORD = "pw-erasure-1234"
SECRET_REFERENCE = "YAMADA-Taro-090"
FIRST_TEXT = "My name is Yamada, call 090-1234-5678"
FINAL_TEXT = "Yamada again: taro@example.org"
KEY = "client-key-yamada-taro"
PERMISSIONS = [
    "view_participant",
    "change_participant",
    "delete_participant",
    "view_response",
    "view_erasurerecord",
    "view_retentionpurge",
]


# --- Set-up ---------------------------------------------------------------------------


@pytest.fixture
def site(db) -> Site:  # type: ignore[no-untyped-def]
    """A site of a study whose questionnaire has a closed, a free-text and a number
    question."""
    study = StudyFactory()
    instrument = Instrument.objects.create(study=study, version=1, title_ja="票")
    tool = Question.objects.create(
        instrument=instrument, code="tool", order=1, type=Question.Type.SINGLE, text_ja="手段"
    )
    tool.choices.create(code="line", order=1, label_ja="LINE")
    tool.choices.create(code="phone", order=2, label_ja="電話")
    Question.objects.create(
        instrument=instrument,
        code="comment",
        order=2,
        type=Question.Type.TEXT,
        required=False,
        text_ja="ご意見",
    )
    Question.objects.create(
        instrument=instrument,
        code="children",
        order=3,
        type=Question.Type.NUMBER,
        required=False,
        text_ja="人数",
    )
    services.instrument_publish(instrument=instrument)
    return SiteFactory(study=study, code="setagaya")


def member(username: str, site: Site, role: str = "manager") -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=PERMISSIONS))
    Membership.objects.create(user=user, site=site, role=role)
    return user


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def answered(site: Site, reference: str = SECRET_REFERENCE) -> Participant:
    """A participant who saved a draft with free text, then submitted other free text
    through the API with an Idempotency-Key; the admin's log names them."""
    participant = ParticipantFactory(site=site, reference=reference)
    services.response_save_draft(
        participant=participant, answers={"tool": "line", "comment": FIRST_TEXT}, language="ja"
    )
    services.response_submit(
        participant=participant,
        answers={"tool": "line", "comment": FINAL_TEXT, "children": "2"},
        language="ja",
        source=Response.Source.API,
        idempotency_key=KEY,
    )
    LogEntry.objects.create(
        user=User.objects.get_or_create(username="someone")[0],
        content_type=ContentType.objects.get_for_model(Participant),
        object_id=str(participant.pk),
        object_repr=str(participant),
        action_flag=CHANGE,
        change_message="[]",
    )
    return Participant.objects.get(pk=participant.pk)


def closed_answers(participant: Participant) -> list[tuple[Any, ...]]:
    return sorted(
        Answer.objects.filter(response__participant=participant)
        .exclude(text_value__isnull=False)
        .values_list("question__code", "choice__code", "number_value")
    )


def tables_holding(value: str) -> list[str]:
    """Every table (live, historical, the admin's log …) with a text column holding
    ``value``: an independent sweep of the whole database."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        text = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField)
        ]
        if not text:
            continue
        condition = models.Q()
        for name in text:
            condition |= models.Q(**{f"{name}__contains": value})
        if model._default_manager.filter(condition).exists():
            found.append(model._meta.db_table)
    return sorted(found)


# --- The service ----------------------------------------------------------------------


def test_erasure_replaces_the_reference_kills_the_link_and_blanks_the_free_text(site, client):
    participant = answered(site)
    token_hash = participant.token_hash
    closed = closed_answers(participant)
    bits = Response.objects.get(participant=participant).choice_bits
    manager = member("sato", site)

    done = erasure.participant_erase(participant=participant, by=manager, reason="request 3 May")

    assert done.new
    participant.refresh_from_db()
    assert participant.reference == f"erased-{participant.pk}"
    assert participant.token_hash != token_hash
    response = Response.objects.get(participant=participant)
    assert response.idempotency_key is None
    assert list(response.answers.filter(question__code="comment").values_list("text_value")) == [
        ("",)
    ]
    # The anonymous closed answers and their bits: exactly as they were.
    assert closed_answers(participant) == closed
    assert closed == [("children", None, Decimal("2")), ("tool", "line", None)]
    assert response.choice_bits == bits
    record = ErasureRecord.objects.get(participant=participant)
    assert (record.erased_by, record.reason, record.purge) == (manager, "request 3 May", None)
    assert done.record == record


def test_the_link_stops_working(site, client):
    participant = ParticipantFactory(site=site)
    url = reverse("surveys:questionnaire", args=[participant.token])
    assert client.get(url).status_code == 200
    erasure.participant_erase(participant=participant, by=None, reason="request")
    assert participant_for_token(participant.token) is None
    assert client.get(url).status_code == 404


def test_no_table_holds_the_erased_values_any_more_and_the_history_only_grew(site):
    participant = answered(site)
    secrets = [SECRET_REFERENCE, FIRST_TEXT, FINAL_TEXT, KEY]
    for secret in secrets:
        assert tables_holding(secret), secret  # the sweep finds them before
    history = {
        m: m.history.model.objects.count()  # type: ignore[attr-defined]
        for m in (Participant, Response, Answer)
    }
    manager = member("sato", site)

    erasure.participant_erase(participant=participant, by=manager, reason="request")

    assert {s: tables_holding(s) for s in secrets} == {s: [] for s in secrets}
    for model, before in history.items():
        assert model.history.model.objects.count() >= before  # type: ignore[attr-defined]
    act = Participant.history.model.objects.filter(  # type: ignore[attr-defined]
        id=participant.pk, history_change_reason="personal data erased"
    ).get()
    assert act.history_user == manager
    assert act.reference == f"erased-{participant.pk}"
    texts = Answer.history.model.objects.filter(  # type: ignore[attr-defined]
        response__participant=participant, text_value__isnull=False
    ).values_list("text_value", flat=True)
    assert set(texts) == {""}
    assert len(texts) >= 4  # draft +, its -, final +, the erasure's ~ (kept, blanked)


def test_a_draft_is_erased_too(site):
    participant = ParticipantFactory(site=site)
    services.response_save_draft(
        participant=participant, answers={"tool": "phone", "comment": FIRST_TEXT}, language="ja"
    )
    erasure.participant_erase(participant=participant, by=None, reason="request")
    response = Response.objects.get(participant=participant)
    assert response.status == Response.Status.DRAFT
    assert tables_holding(FIRST_TEXT) == []
    assert closed_answers(participant) == [("tool", "phone", None)]


def test_erasing_twice_is_a_no_op_that_says_so(site):
    participant = answered(site)
    first = erasure.participant_erase(participant=participant, by=None, reason="request")
    counts = [
        m.history.model.objects.count()  # type: ignore[attr-defined]
        for m in (Participant, Response, Answer)
    ]

    again = erasure.participant_erase(participant=participant, by=None, reason="again")

    assert (again.new, again.record) == (False, first.record)
    assert ErasureRecord.objects.count() == 1
    assert [
        m.history.model.objects.count()  # type: ignore[attr-defined]
        for m in (Participant, Response, Answer)
    ] == counts


def test_erasing_again_sweeps_text_that_landed_after_the_first_erasure(site):
    """A submission in flight while its participant was erased (its link read just before)
    stores its text just after: the second erasure blanks it, with no second record."""
    participant = ParticipantFactory(site=site, reference=SECRET_REFERENCE)
    looked_up = Participant.objects.get(pk=participant.pk)  # the in-flight request's copy
    first = erasure.participant_erase(participant=participant, by=None, reason="request")
    services.response_submit(
        participant=looked_up,
        answers={"tool": "line", "comment": FINAL_TEXT, "children": "2"},
        language="ja",
    )
    assert tables_holding(FINAL_TEXT) != []  # landed late

    again = erasure.participant_erase(participant=participant, by=None, reason="again")

    assert (again.new, again.record) == (False, first.record)
    assert ErasureRecord.objects.count() == 1
    assert tables_holding(FINAL_TEXT) == []
    assert closed_answers(participant) == [("children", None, Decimal("2")), ("tool", "line", None)]


def test_erasing_again_deletes_a_file_exported_with_the_late_text(site, tmp_path, settings):
    """The late text may have been exported before the second erasure blanked it."""
    settings.MEDIA_ROOT = tmp_path
    participant = ParticipantFactory(site=site, reference=SECRET_REFERENCE)
    looked_up = Participant.objects.get(pk=participant.pk)
    erasure.participant_erase(participant=participant, by=None, reason="request")
    services.response_submit(
        participant=looked_up, answers={"tool": "line", "comment": FINAL_TEXT}, language="ja"
    )
    user = User.objects.create_superuser("root", password=PASSWORD)
    export = export_begin(user=user, study=site.study, format="csv", language="en", queued=True)
    export_run(export_id=export.pk)
    export.refresh_from_db()
    path = tmp_path / export.file.name
    assert FINAL_TEXT in path.read_text(encoding="utf-8")

    erasure.participant_erase(participant=participant, by=None, reason="again")

    export.refresh_from_db()
    assert not path.exists()
    assert (export.status, export.expired_because) == ("expired", "erasure")


@pytest.mark.parametrize("who", ["viewer", "signer_elsewhere", "nobody"])
def test_erasing_needs_the_manager_role_on_the_participants_site(site, who):
    participant = answered(site)
    elsewhere = SiteFactory(study=site.study, code="itabashi")
    user = {
        "viewer": lambda: member("ito", site, role="viewer"),
        "signer_elsewhere": lambda: member("ito", elsewhere, role="signer"),
        "nobody": lambda: User.objects.create_user("ito", password=PASSWORD),
    }[who]()
    with pytest.raises(ErasureRefused):
        erasure.participant_erase(participant=participant, by=user, reason="request")
    assert Participant.objects.get(pk=participant.pk).reference == SECRET_REFERENCE
    assert not ErasureRecord.objects.exists()


def test_a_signer_and_a_superuser_may_erase(site):
    signer = member("kato", site, role="signer")
    root = User.objects.create_superuser("root", password=PASSWORD)
    for user in (signer, root):
        participant = ParticipantFactory(site=site)
        assert erasure.participant_erase(participant=participant, by=user, reason="r").new


def test_erasing_needs_a_reason(site):
    participant = ParticipantFactory(site=site)
    with pytest.raises(ErasureRefused) as refused:
        erasure.participant_erase(participant=participant, by=None, reason="   ")
    assert "reason" in refused.value.errors
    assert not ErasureRecord.objects.exists()


def test_other_apps_extend_erasure_inside_its_transaction(site):
    participant = answered(site)
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    def failing(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the contact table could not be erased")

    participant_erasing.connect(failing)
    try:
        with pytest.raises(RuntimeError):
            erasure.participant_erase(participant=participant, by=None, reason="request")
    finally:
        participant_erasing.disconnect(failing)
    # Nothing half-erased.
    assert Participant.objects.get(pk=participant.pk).reference == SECRET_REFERENCE
    assert tables_holding(FINAL_TEXT)
    assert not ErasureRecord.objects.exists()

    participant_erasing.connect(receiver)
    try:
        done = erasure.participant_erase(participant=participant, by=None, reason="request")
    finally:
        participant_erasing.disconnect(receiver)
    assert len(seen) == 1
    assert seen[0]["record"] == done.record
    assert seen[0]["participant"].reference == f"erased-{participant.pk}"
    assert (seen[0]["by"], seen[0]["reason"]) == (None, "request")


def test_an_erased_participant_gets_no_new_link(site):
    participant = ParticipantFactory(site=site)
    erasure.participant_erase(participant=participant, by=None, reason="request")
    with pytest.raises(ParticipantErased):
        services.participant_replace_links(participants=[participant])


def test_the_export_shows_no_erased_text_or_reference(site):
    participant = answered(site)
    other = ParticipantFactory(site=site, reference="KEEP-1")
    services.response_submit(
        participant=other, answers={"tool": "phone", "comment": "kept text"}, language="ja"
    )
    erasure.participant_erase(participant=participant, by=None, reason="request")
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("root", password=PASSWORD))

    response = api.get("/api/v1/responses/export/", headers={"Accept": "text/csv"})

    raw = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {r["participant"]: r for r in csv.DictReader(io.StringIO(raw))}
    erased = rows[f"erased-{participant.pk}"]
    assert (erased["comment"], erased["tool"], erased["children"]) == ("", "line", "2")
    assert rows["KEEP-1"]["comment"] == "kept text"
    for secret in (SECRET_REFERENCE, FIRST_TEXT, FINAL_TEXT, KEY):
        assert secret not in raw


# --- The append-only history: erasure's UPDATE and nothing else ---------------------------


def refused(sql: str, params: list[Any] | None = None) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params or [])
    except DatabaseError as exc:
        assert "append-only" in str(exc)
        return True
    return False


REDACTABLE = sorted(erasure.HISTORY_REDACTIONS)


def test_the_history_refuses_every_update_but_a_redaction_and_every_delete(site):
    participant = answered(site)
    pk = participant.pk
    response = Response.objects.get(participant=participant).pk
    p, r, a = (
        '"surveys_historicalparticipant"',
        '"surveys_historicalresponse"',
        '"surveys_historicalanswer"',
    )
    ordinary = [
        f"UPDATE {p} SET reference = 'someone else' WHERE id = {pk}",  # noqa: S608
        f"UPDATE {p} SET reference = reference WHERE id = {pk}",  # a no-op is refused too  # noqa: S608
        f"UPDATE {p} SET reference = 'erased-' || id, history_change_reason = 'x' WHERE id = {pk}",  # noqa: S608
        f"UPDATE {p} SET reference = 'erased-' || (id + 1) WHERE id = {pk}",  # noqa: S608
        f"UPDATE {p} SET history_user_id = NULL",  # noqa: S608
        f"UPDATE {r} SET idempotency_key = 'another' WHERE id = {response}",  # noqa: S608
        f"UPDATE {r} SET idempotency_key = NULL, status = 'draft' WHERE id = {response}",  # noqa: S608
        f"UPDATE {a} SET text_value = 'forged' WHERE response_id = {response}",  # noqa: S608
        # '' only replaces text: a choice's row cannot gain one.
        f"UPDATE {a} SET text_value = '' WHERE response_id = {response} AND choice_id IS NOT NULL",  # noqa: S608
        f"UPDATE {a} SET text_value = '', question_id = question_id + 1 "  # noqa: S608
        f"WHERE response_id = {response} AND text_value IS NOT NULL",
        f"DELETE FROM {p}",  # noqa: S608
        f"DELETE FROM {r}",  # noqa: S608
        f"DELETE FROM {a} WHERE text_value IS NOT NULL",  # noqa: S608
    ]
    for statement in ordinary:
        assert refused(statement), statement
    # Erasure's own statements pass.
    redactions = [
        f"UPDATE {p} SET reference = 'erased-' || id WHERE id = {pk}",  # noqa: S608
        f"UPDATE {r} SET idempotency_key = NULL WHERE id = {response} "  # noqa: S608
        "AND idempotency_key IS NOT NULL",
        f"UPDATE {a} SET text_value = '' WHERE response_id = {response} "  # noqa: S608
        "AND text_value IS NOT NULL",
    ]
    for statement in redactions:
        assert not refused(statement), statement
    assert tables_holding(FINAL_TEXT) == ["surveys_answer"]  # the live row: not history


def trigger_sql(table: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname = %s AND t.tgname = %s",
                [table, appendonly.PG_UPDATE_TRIGGER],
            )
        else:
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s",
                [f"{table}{appendonly.MARK}update"],
            )
        return str(cursor.fetchone()[0])


@pytest.mark.parametrize("table", REDACTABLE)
def test_every_column_but_the_personal_ones_is_guarded(db, table):
    """A column added to a redactable table after its triggers would be open to UPDATE:
    its migration must install them again (appendonly.redaction_operation)."""
    sql = trigger_sql(table)
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
    personal = set(erasure.HISTORY_REDACTIONS[table])
    quoted = {
        c: (f"new.{c}" if connection.vendor == "postgresql" else f'NEW."{c}"') for c in columns
    }
    for column in columns:
        assert quoted[column] in sql, column
    assert personal < set(columns)


def test_erasure_records_are_append_only(site):
    participant = ParticipantFactory(site=site)
    record = erasure.participant_erase(participant=participant, by=None, reason="r").record
    assert refused(f"UPDATE surveys_erasurerecord SET reason = 'x' WHERE id = {record.pk}")  # noqa: S608
    assert refused(f"DELETE FROM surveys_erasurerecord WHERE id = {record.pk}")  # noqa: S608


class _Editor:
    """What a migration's RunPython gives its functions, for the current connection."""

    connection = connection

    def execute(self, sql: str, params: Any = None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def test_the_trigger_migration_has_a_reverse_that_refuses_erasure_again(site):
    from importlib import import_module

    migration = import_module(
        "surveys.migrations.0009_erasure_records_append_only_history_redactable"
    ).Migration
    records, redactable = migration.operations
    participant = answered(site)
    table = '"surveys_historicalparticipant"'
    redact = f"UPDATE {table} SET reference = 'erased-' || id WHERE id = {participant.pk}"  # noqa: S608

    redactable.reverse_code(apps, _Editor())
    records.reverse_code(apps, _Editor())
    assert refused(redact)
    installed = appendonly.installed_tables(connection)
    assert "surveys_erasurerecord" not in installed
    assert installed[table.strip('"')] >= {"UPDATE", "DELETE"}

    records.code(apps, _Editor())
    redactable.code(apps, _Editor())
    assert not refused(redact)
    assert "surveys_erasurerecord" in appendonly.installed_tables(connection)


@pytest.mark.postgres
def test_postgresql_still_refuses_truncate_and_splits_only_the_redactable_tables(site):
    for table in [*REDACTABLE, "surveys_erasurerecord"]:
        assert refused(f'TRUNCATE "{table}"'), table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s",
            [appendonly.PG_UPDATE_TRIGGER],
        )
        assert sorted(name for name, _ in cursor.fetchall()) == REDACTABLE


# --- The command --------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("erase_participant", *args, stdout=out)
    return out.getvalue()


def test_the_command_erases_by_id_and_says_so_the_second_time(site):
    participant = answered(site)
    manager = member("sato", site)
    out = run(str(participant.pk), "--reason", "request by phone", "--by", "sato")
    assert f"participant {participant.pk}" in out
    assert f"erased-{participant.pk}" in out
    record = ErasureRecord.objects.get(participant=participant)
    assert (record.erased_by, record.reason) == (manager, "request by phone")
    assert "already erased" in run(str(participant.pk), "--reason", "again")
    assert ErasureRecord.objects.count() == 1


def test_the_command_finds_a_participant_by_study_and_reference(site):
    participant = answered(site)
    elsewhere = SiteFactory(study=site.study, code="itabashi")
    ParticipantFactory(site=elsewhere, reference="TWIN")
    twin = ParticipantFactory(site=site, reference="TWIN")
    study = site.study.code

    run("--study", study, "--reference", SECRET_REFERENCE, "--reason", "request")
    record = ErasureRecord.objects.get(participant=participant)
    assert record.erased_by is None  # the system: no --by
    with pytest.raises(CommandError, match="several sites"):
        run("--study", study, "--reference", "TWIN", "--reason", "request")
    run("--study", study, "--reference", "TWIN", "--site", "setagaya", "--reason", "request")
    assert list(ErasureRecord.objects.values_list("participant", flat=True).order_by("pk")) == [
        participant.pk,
        twin.pk,
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999", "--reason", "r"], "no participant 999999"),
        (["--study", "nope", "--reference", "x", "--reason", "r"], "has no participant"),
        (["--reference", "x", "--reason", "r"], "--study and --reference"),
        (["1", "--study", "s", "--reason", "r"], "--study and --reference"),
        (["{pk}", "--reason", "r", "--by", "ghost"], "no user 'ghost'"),
        (["{pk}", "--reason", "r", "--by", "ito"], "may not erase"),
        (["{pk}", "--reason", "  "], "reason"),
        (["{pk}"], "--reason"),
    ],
)
def test_the_command_refuses_clearly_and_changes_nothing(site, args, message):
    participant = answered(site)
    member("ito", site, role="viewer")
    args = [a.replace("{pk}", str(participant.pk)) for a in args]
    # The service's refusals are translated: English here, Japanese by default.
    with translation.override("en"), pytest.raises(CommandError, match=message):
        run(*args)
    assert not ErasureRecord.objects.exists()
    assert Participant.objects.get(pk=participant.pk).reference == SECRET_REFERENCE


# --- The admin ------------------------------------------------------------------------------


def changelist_action(client: Client, participants: list[Participant], **extra: str) -> Any:
    data = {
        "action": "erase",
        helpers.ACTION_CHECKBOX_NAME: [str(p.pk) for p in participants],
        **extra,
    }
    return client.post(reverse("admin:surveys_participant_changelist"), data)


def test_the_admin_action_asks_for_a_reason_and_the_password_then_erases(site):
    people = [answered(site), answered(site, reference="SUZUKI-2")]
    client = client_of(member("sato", site))

    page = changelist_action(client, people)
    assert page.status_code == 200
    assert "Your password" in page.content.decode()
    assert not ErasureRecord.objects.exists()

    wrong = changelist_action(client, people, confirmed="yes", reason="request", password="no")
    assert "The password is not correct." in wrong.content.decode()
    no_reason = changelist_action(client, people, confirmed="yes", reason="", password=PASSWORD)
    assert no_reason.status_code == 200
    assert not ErasureRecord.objects.exists()

    done = changelist_action(
        client, people, confirmed="yes", reason="requests of 3 May", password=PASSWORD
    )
    assert done.status_code == 302
    assert ErasureRecord.objects.count() == 2
    assert set(ErasureRecord.objects.values_list("reason", flat=True)) == {"requests of 3 May"}
    page = client.get(done["Location"]).content.decode()
    assert "The personal data of 2 participants was erased." in page
    assert SECRET_REFERENCE not in page

    again = changelist_action(client, people, confirmed="yes", reason="again", password=PASSWORD)
    assert (
        "2 participants had already been erased" in client.get(again["Location"]).content.decode()
    )


def test_the_participant_page_offers_erasure_and_then_says_it_was_done(site):
    participant = answered(site)
    client = client_of(member("sato", site))
    change = reverse("admin:surveys_participant_change", args=[participant.pk])
    erase = reverse("admin:surveys_participant_erase", args=[participant.pk])
    assert erase in client.get(change).content.decode()

    assert "Your password" in client.get(erase).content.decode()
    assert client.post(erase, {"reason": "r", "password": "wrong"}).status_code == 200
    assert not ErasureRecord.objects.exists()
    response = client.post(erase, {"reason": "request", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == change

    page = client.get(change).content.decode()
    assert "personal data was erased" in page
    assert erase not in page
    assert 'name="reference"' not in page  # read-only: the pseudonym stays
    record = ErasureRecord.objects.get()
    assert (
        client.get(reverse("admin:surveys_erasurerecord_change", args=[record.pk])).status_code
        == 200
    )


def test_a_viewer_is_refused_and_another_sites_participant_does_not_exist(site):
    mine = answered(site)
    elsewhere = SiteFactory(study=site.study, code="itabashi")
    theirs = ParticipantFactory(site=elsewhere)
    unseen = ParticipantFactory(site=SiteFactory(study=site.study, code="nerima"))
    viewer = member("ito", site, role="viewer")
    manager = member("sato", site)
    Membership.objects.create(user=manager, site=elsewhere, role="viewer")
    data = {"reason": "request", "password": PASSWORD}

    # A viewer: no erase link, a 403 on the page, no action to choose.
    client = client_of(viewer)
    url = reverse("admin:surveys_participant_erase", args=[mine.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, data).status_code == 403
    assert (
        url
        not in client.get(
            reverse("admin:surveys_participant_change", args=[mine.pk])
        ).content.decode()
    )
    listing = client.get(reverse("admin:surveys_participant_changelist")).content.decode()
    assert 'value="erase"' not in listing
    changelist_action(client, [mine], confirmed="yes", **data)
    # A manager who only views the other site: 403 for it, on the page and in the action.
    client = client_of(manager)
    url = reverse("admin:surveys_participant_erase", args=[theirs.pk])
    assert client.post(url, data).status_code == 403
    assert changelist_action(client, [mine, theirs], confirmed="yes", **data).status_code == 403
    # A site they are not a member of: its participant does not exist, whatever the role.
    for user in (viewer, manager):
        url = reverse("admin:surveys_participant_erase", args=[unseen.pk])
        assert client_of(user).get(url).status_code == 404
        assert client_of(user).post(url, data).status_code == 404
    changelist_action(client, [unseen], confirmed="yes", **data)  # not in their list
    assert (
        client.post(reverse("admin:surveys_participant_erase", args=["abc"]), data).status_code
        == 404
    )
    assert not ErasureRecord.objects.exists()


def test_erasure_records_are_listed_in_scope_and_read_only(site):
    mine = ParticipantFactory(site=site)
    theirs = ParticipantFactory(site=SiteFactory(study=site.study, code="itabashi"))
    records = [
        erasure.participant_erase(participant=p, by=None, reason="r").record for p in (mine, theirs)
    ]
    client = client_of(member("sato", site))
    listing = client.get(reverse("admin:surveys_erasurerecord_changelist")).content.decode()
    assert f"erased-{mine.pk}" in listing
    assert f"erased-{theirs.pk}" not in listing
    url = reverse("admin:surveys_erasurerecord_change", args=[records[1].pk])
    assert client.get(url).status_code == 404
    assert (
        client.post(
            reverse("admin:surveys_erasurerecord_change", args=[records[0].pk]), {"reason": "x"}
        ).status_code
        == 403
    )
    assert ErasureRecord.objects.get(pk=records[0].pk).reason == "r"


def test_export_links_leaves_erased_participants_out(site):
    kept, erased = ParticipantFactory(site=site), ParticipantFactory(site=site)
    erasure.participant_erase(participant=erased, by=None, reason="r")
    client = client_of(User.objects.create_superuser("root", password=PASSWORD))
    response = client.post(
        reverse("admin:surveys_participant_changelist"),
        {
            "action": "export_links",
            helpers.ACTION_CHECKBOX_NAME: [str(kept.pk), str(erased.pk)],
            "confirmed": "yes",
        },
    )
    body = response.content.decode("utf-8-sig")
    assert kept.reference in body
    assert f"erased-{erased.pk}" not in body
    assert participant_for_token(erased.token) is None


# --- Scores and signed evaluations recompute exactly --------------------------------------


def test_a_rescore_after_erasure_gives_the_same_figures_and_the_signed_ones_recompute(
    reference_study,
):
    from kpi.evaluations import snapshot
    from kpi.evaluations.services import evaluation_create, evaluation_sign_off
    from kpi.models import EvaluationRun
    from kpi.scoring.execution import run_execute
    from surveys.erasure import study_purge
    from surveys.selectors import instrument_current
    from surveys.services import ImportedResponse
    from tests.factories import complete_answers

    study = reference_study
    # A version with a free-text question, answered by a few more participants.
    current = instrument_current(study)
    assert current is not None
    version = services.instrument_new_version(instrument=current)
    Question.objects.create(
        instrument=version,
        code="comment",
        order=99,
        type=Question.Type.TEXT,
        required=False,
        text_ja="ご意見",
    )
    services.instrument_publish(instrument=version)
    site = study.sites.order_by("code").first()
    people = [ParticipantFactory(site=site, reference=f"TEXT-{n}") for n in range(5)]
    when = timezone.now() - dt.timedelta(days=1)
    services.responses_import(
        instrument=version,
        rows=[
            ImportedResponse(
                participant=p,
                answers=complete_answers(comment=f"secret comment {n}"),
                submitted_at=when,
            )
            for n, p in enumerate(people)
        ],
    )

    def scored() -> EvaluationRun:
        run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
        return run_execute(run_id=run.pk)

    def figures(run: EvaluationRun) -> list[tuple[Any, ...]]:
        return list(
            run.results.order_by("kpi_code", "site__code").values_list(
                "kpi_code",
                "site__code",
                "numerator",
                "denominator",
                "respondents",
                "invited",
                "value",
                "ci_low",
                "ci_high",
                "verdict",
            )
        )

    def signed_part(content: dict[str, Any]) -> bytes:
        return snapshot.canonical(
            {"results": content["results"], "distributions": content["distributions"]}
        )

    before = scored()
    evaluation = evaluation_create(run=before, user=None)
    signer = User.objects.create_superuser("signer", password=PASSWORD)
    evaluation_sign_off(
        evaluation=evaluation,
        user=signer,
        password=PASSWORD,
        statement="ok",
        signer_name="Signer",
        signer_role="",
    )
    assert tables_holding("secret comment 3")

    purge = study_purge(study=study)

    assert purge is not None
    assert purge.participants == Participant.objects.filter(site__study=study).count()
    assert tables_holding("secret comment 3") == []
    assert tables_holding("TEXT-3") == []
    after = scored()
    assert figures(after) == figures(before)
    assert len(figures(after)) > 10
    evaluation.refresh_from_db()
    assert snapshot.digest(evaluation.snapshot) == evaluation.snapshot_sha256
    assert signed_part(snapshot.build(after)) == signed_part(evaluation.snapshot)
