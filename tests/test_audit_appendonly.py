"""The history cannot be rewritten: every historical table refuses UPDATE and DELETE in
the database (and TRUNCATE on PostgreSQL), through the ORM and through raw SQL; no admin
page edits or deletes a historical row; an account that changed something cannot be
deleted (its records would lose "who")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone
from simple_history.models import HistoricalChanges

from fieldwork.models import Campaign, Sender
from surveys import appendonly, services
from surveys.models import Membership, Participant

HISTORICAL = sorted(
    (m for m in apps.get_models() if issubclass(m, HistoricalChanges)),
    key=lambda m: m._meta.db_table,
)


def refused(statement: Any) -> bool:
    """Whether the database refuses ``statement`` (run in a savepoint, so that the test's
    transaction survives the error on PostgreSQL)."""
    try:
        with transaction.atomic():
            statement()
    except DatabaseError as exc:
        assert "append-only" in str(exc)
        return True
    return False


def test_every_historical_table_has_its_triggers(db):
    installed = appendonly.installed_tables(connection)
    expected = {"UPDATE", "DELETE"} | ({"TRUNCATE"} if connection.vendor == "postgresql" else set())
    assert {m._meta.db_table: installed.get(m._meta.db_table) for m in HISTORICAL} == {
        m._meta.db_table: expected for m in HISTORICAL
    }
    assert len(HISTORICAL) >= 9  # participants … evaluations, and the conditions' choices


@pytest.fixture
def recorded(site) -> Any:  # type: ignore[no-untyped-def]
    """A participant with two historical rows."""
    participant = services.participant_create(site=site, reference="P-1").participant
    services.participant_withdraw(participant=participant)
    return Participant.history.model  # type: ignore[attr-defined]


def test_the_orm_cannot_change_or_delete_a_historical_row(recorded):
    record = recorded.objects.earliest("history_id")
    record.reference = "rewritten"
    assert refused(record.save)
    assert refused(lambda: recorded.objects.update(history_change_reason="rewritten"))
    assert refused(record.delete)
    assert refused(lambda: recorded.objects.all().delete())
    assert recorded.objects.count() == 2
    assert not recorded.objects.filter(reference="rewritten").exists()


def _raw(sql: str) -> Any:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)

    return run


@pytest.fixture
def every_history(study, site) -> None:  # type: ignore[no-untyped-def]
    """At least one row in every historical table."""
    from kpi.definitions.loading import kpis_path, load_kpis
    from kpi.evaluations.services import evaluation_create
    from kpi.models import EvaluationRun
    from kpi.scoring.execution import run_execute
    from surveys.exports.records import export_begin
    from tests.factories import complete_answers

    participant = services.participant_create(site=site, reference="P-1").participant
    services.response_submit(participant=participant, answers=complete_answers(), language="ja")
    ito = User.objects.create_user("ito")
    Membership.objects.create(user=ito, site=site, role="viewer")
    export_begin(user=ito, study=study, format="csv", language="ja")
    load_kpis(study=study, path=kpis_path())  # type: ignore[arg-type]
    run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    evaluation_create(run=run_execute(run_id=run.pk), user=None)
    Sender.objects.create(
        site=site,
        display_name_ja="世田谷区",
        display_name_en="Setagaya City",
        from_address="kosodate@setagaya.example",
    )
    campaign = Campaign.objects.create(
        study=study, name="招待", starts_at=timezone.now() + timedelta(days=1)
    )
    campaign.sites.add(site)


def test_raw_sql_and_the_orm_cannot_change_or_delete_any_historical_table(every_history):
    for model in HISTORICAL:
        table = model._meta.db_table
        count = model.objects.count()
        assert count, table
        # Even writing a value back unchanged is refused (the m2m rows have no type).
        names = {f.attname for f in model._meta.fields}
        column = "history_type" if "history_type" in names else "history_id"
        assert refused(_raw(f'UPDATE "{table}" SET {column} = {column}')), table  # noqa: S608
        assert refused(_raw(f'DELETE FROM "{table}"')), table  # noqa: S608
        assert refused(lambda m=model, c=column: m.objects.update(**{c: F(c)})), table
        assert refused(lambda m=model: m.objects.all().delete()), table
        assert model.objects.count() == count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # TRUNCATE waits for no pending FK checks
def test_postgresql_refuses_update_delete_and_truncate_of_each_table(recorded):
    for model in HISTORICAL:
        table = model._meta.db_table
        assert refused(_raw(f'TRUNCATE "{table}"'))
    assert refused(_raw(f"UPDATE \"{recorded._meta.db_table}\" SET reference = 'x'"))  # noqa: S608
    assert refused(_raw(f'DELETE FROM "{recorded._meta.db_table}"'))  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'surveys_history_append_only'")
        (source,) = cursor.fetchone()
    assert "RAISE EXCEPTION" in source
    assert recorded.objects.count() == 2


def test_no_admin_page_edits_or_deletes_historical_rows(settings):
    registered = {model for model in admin.site._registry}
    assert not registered & set(HISTORICAL)
    assert not getattr(settings, "SIMPLE_HISTORY_EDIT", False)


def test_an_account_that_changed_something_cannot_be_deleted(site):
    from simple_history.models import HistoricalRecords

    user = User.objects.create_user("sato", password="pw-sato-12345")
    request = type("Request", (), {"user": user, "path_info": "/admin/"})()
    HistoricalRecords.context.request = request
    try:
        Membership.objects.create(user=user, site=site, role="manager")
    finally:
        del HistoricalRecords.context.request
    with pytest.raises(ProtectedError):
        user.delete()
    user.is_active = False  # what an administrator does instead
    user.save()
    record = Membership.history.get()  # type: ignore[attr-defined]
    assert (record.history_user, record.history_change_reason) == (user, "admin")


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_can_still_wipe_the_database_and_the_triggers_survive(site):
    services.participant_create(site=site, reference="P-1")
    # pytest-django wipes every table after this test (conftest lets the wipe past the
    # triggers); the next test, test_every_historical_table_has_its_triggers, runs after
    # it in this module and finds them all again.
    assert Participant.history.exists()  # type: ignore[attr-defined]


def test_the_triggers_are_back_after_a_wipe(db):
    test_every_historical_table_has_its_triggers(db)
