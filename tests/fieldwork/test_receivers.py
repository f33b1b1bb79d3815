"""Fieldwork follows ``surveys``' signals (fieldwork/receivers.py): erasure and the
retention purge delete the contact row and cancel queued deliveries in their own
transaction; a withdrawal cancels in its transaction; a submission cancels once committed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from fieldwork import services
from fieldwork.models import Contact, Delivery
from surveys import erasure
from surveys import services as survey_services
from surveys.models import Study
from tests.factories import complete_answers

from .conftest import with_contact


@pytest.fixture
def queued(site, sender):  # type: ignore[no-untyped-def]
    """A participant with an e-mail address and a queued invitation (not sent: the
    sending task is only enqueued after a commit that never comes in these tests)."""
    participant = with_contact(
        site, email="hanako@example.jp", postal_name="山田", postal_address="横浜市"
    )
    result = services.email_deliveries_queue(participants=[participant])
    return participant, Delivery.objects.get(pk=result.ids[0])


def test_erasure_deletes_the_contact_and_cancels_what_is_queued(queued):
    participant, delivery = queued

    erasure.participant_erase(participant=participant, by=None, reason="asked by the resident")

    assert not Contact.objects.filter(participant=participant).exists()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED
    assert delivery.last_error == "personal data erased"


def test_an_erasure_rolled_back_keeps_the_contact(queued):
    participant, delivery = queued

    with pytest.raises(RuntimeError), transaction.atomic():
        erasure.participant_erase(participant=participant, by=None, reason="test")
        assert not Contact.objects.filter(participant=participant).exists()
        raise RuntimeError("the erasure's transaction fails after the receiver ran")

    assert Contact.objects.get(participant=participant).email == "hanako@example.jp"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED


def test_the_retention_purge_deletes_every_contact_of_the_study(site, sender, queued):
    participant, delivery = queued
    other = with_contact(site, email="taro@example.jp")
    study = site.study
    study.status = Study.Status.CLOSED
    study.save()

    (purge,) = erasure.studies_purge_expired(
        now=dt.datetime.combine(study.personal_data_expires_on, dt.time(12), tzinfo=dt.UTC)
    )

    assert purge.participants == 2
    assert not Contact.objects.filter(participant__in=[participant, other]).exists()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED


def test_a_withdrawal_cancels_queued_deliveries_in_its_transaction(queued):
    participant, delivery = queued

    with transaction.atomic():
        survey_services.participant_withdraw(participant=participant)
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.CANCELLED  # before the commit

    assert delivery.last_error == "cancelled: the participant withdrew"
    assert Contact.objects.filter(participant=participant).exists()  # kept: not an erasure


def test_a_submission_cancels_queued_deliveries_once_committed(
    queued, django_capture_on_commit_callbacks
):
    participant, delivery = queued

    with django_capture_on_commit_callbacks(execute=True):
        survey_services.response_submit(
            participant=participant, answers=complete_answers(), language="ja"
        )

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED
    assert delivery.last_error == "cancelled: the participant submitted"


def test_a_draft_save_cancels_nothing(queued, django_capture_on_commit_callbacks):
    participant, delivery = queued

    with django_capture_on_commit_callbacks(execute=True):
        survey_services.response_save_draft(
            participant=participant, answers={"reassured": "agree"}, language="ja"
        )

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED


def test_erasure_drops_failure_reasons_that_quote_the_address(queued):
    participant, delivery = queued
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED, last_error="550 5.1.1 <hanako@example.jp>: no such user"
    )

    erasure.participant_erase(participant=participant, by=None, reason="asked by the resident")

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED  # what happened stays
    assert "hanako" not in delivery.last_error
