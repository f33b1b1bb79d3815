"""The survey services: participants and their links, drafts, submission, instruments, import."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from surveys import selectors, services
from surveys.errors import (
    AlreadySubmitted,
    AnswersInvalid,
    ImportRejected,
    InstrumentFrozen,
    SurveyClosed,
)
from surveys.models import Answer, Choice, Instrument, Participant, Response
from surveys.signals import response_submitted
from tests.factories import ParticipantFactory, SiteFactory, complete_answers


def stored(response: Response) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for question, choice in response.answers.values_list("question__code", "choice__code"):
        out.setdefault(question, set()).add(choice)
    return out


# --- Links -----------------------------------------------------------------------------


def test_a_new_participant_gets_a_256_bit_link_stored_only_as_its_sha256(site):
    invitation = services.participant_create(site=site, reference="SET-1")
    token = invitation.token
    assert len(token) == 43  # 32 random bytes, URL-safe base64
    assert invitation.url.endswith(f"/r/{token}/")
    participant = Participant.objects.get(pk=invitation.participant.pk)
    assert participant.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM surveys_participant")
        assert not any(token in str(value) for row in cursor.fetchall() for value in row)


def test_a_token_finds_its_participant(participant):
    assert selectors.participant_for_token(participant.token) == participant


@pytest.mark.parametrize(
    "token",
    ["", "short", "x" * 43, "!" * 43, "a" * 500, "../../etc/passwd", "%00" * 20, "é" * 43],
)
def test_unknown_and_malformed_tokens_find_nobody(participant, token):
    assert selectors.participant_for_token(token) is None


def test_a_withdrawn_participants_link_stops_working(participant):
    services.participant_withdraw(participant=participant)
    assert selectors.participant_for_token(participant.token) is None


def test_reissuing_a_link_replaces_the_old_one(participant):
    [invitation] = services.participant_replace_links(participants=[participant])
    assert selectors.participant_for_token(participant.token) is None
    assert selectors.participant_for_token(invitation.token) == participant


# --- Drafts and submission -------------------------------------------------------------


def test_a_draft_keeps_partial_answers_and_can_be_resumed(participant):
    services.response_save_draft(
        participant=participant,
        answers={"channels": ["night"], "reassured": "agree"},
        language="en",
    )
    response = Response.objects.get(participant=participant)
    assert response.status == Response.Status.DRAFT
    assert response.language == "en"
    assert services.response_draft_answers(response) == {
        "channels": ["night"],
        "reassured": "agree",
    }


def test_saving_a_draft_again_replaces_the_earlier_answers(participant):
    services.response_save_draft(
        participant=participant, answers={"channels": ["night", "live"]}, language="ja"
    )
    services.response_save_draft(participant=participant, answers={"tool": "line"}, language="ja")
    response = Response.objects.get(participant=participant)
    assert stored(response) == {"tool": {"line"}}


def test_an_invalid_draft_changes_nothing(participant):
    services.response_save_draft(participant=participant, answers={"tool": "line"}, language="ja")
    with pytest.raises(AnswersInvalid) as caught:
        services.response_save_draft(
            participant=participant, answers={"tool": "carrier-pigeon"}, language="ja"
        )
    assert set(caught.value.errors) == {"tool"}
    assert stored(Response.objects.get(participant=participant)) == {"tool": {"line"}}


def test_submitting_stores_one_response_with_every_answer(participant):
    response = services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    assert response.status == Response.Status.SUBMITTED
    assert response.submitted_at is not None
    assert stored(response) == {
        "channels": {"anytime", "ward_phone"},
        "reassured": {"agree"},
        "continue": {"somewhat_agree"},
        "reuse": {"agree"},
        "understood": {"fully"},
        "tool": {"line"},
    }


def test_the_response_keeps_its_site_and_a_bit_for_each_chosen_choice(participant):
    response = services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    # Bits number the instrument's choices in question order, then choice order.
    ordered = Choice.objects.filter(question__instrument=response.instrument).order_by(
        "question__order", "order"
    )
    position = {c.pk: i for i, c in enumerate(ordered)}
    expected = sum(1 << position[a.choice_id] for a in response.answers.exclude(choice=None))
    response.refresh_from_db()
    assert response.choice_bits == expected
    assert bin(expected).count("1") == 7  # two channels and five single answers
    assert response.site_id == participant.site_id


def test_a_second_submission_is_refused_and_changes_nothing(participant):
    services.response_submit(participant=participant, answers=complete_answers(), language="ja")
    with pytest.raises(AlreadySubmitted):
        services.response_submit(
            participant=participant, answers=complete_answers(tool="phone"), language="en"
        )
    with pytest.raises(AlreadySubmitted):
        services.response_save_draft(participant=participant, answers={}, language="ja")
    response = Response.objects.get(participant=participant)
    assert stored(response)["tool"] == {"line"}
    assert response.language == "ja"
    assert Response.objects.count() == 1


def test_an_incomplete_submission_names_each_missing_answer_and_stores_nothing(participant):
    with pytest.raises(AnswersInvalid) as caught:
        services.response_submit(
            participant=participant, answers={"channels": ["night"]}, language="ja"
        )
    # understood is required too: an online channel was ticked.
    assert set(caught.value.errors) == {"reassured", "continue", "reuse", "understood", "tool"}
    assert not Response.objects.exists()
    assert not Answer.objects.exists()


def test_the_comprehension_item_is_not_asked_without_an_online_channel(participant):
    response = services.response_submit(
        participant=participant,
        answers=complete_answers(channels=["ward_desk", "articles"], understood="fully"),
        language="ja",
    )
    # The answer to a question that was not shown is dropped, never stored.
    assert "understood" not in stored(response)


def test_the_comprehension_item_is_required_after_an_online_channel(participant):
    with pytest.raises(AnswersInvalid) as caught:
        services.response_submit(
            participant=participant,
            answers=complete_answers(channels=["midwife_chat"], understood=None),
            language="ja",
        )
    assert set(caught.value.errors) == {"understood"}


def test_none_cannot_be_combined_with_a_channel(participant):
    with pytest.raises(AnswersInvalid) as caught:
        services.response_submit(
            participant=participant,
            answers=complete_answers(channels=["none", "anytime"]),
            language="ja",
        )
    assert set(caught.value.errors) == {"channels"}


def test_submission_is_announced_once_after_commit(participant, django_capture_on_commit_callbacks):
    received = []

    def listener(**kwargs):  # type: ignore[no-untyped-def]
        received.append(kwargs)

    response_submitted.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = services.response_submit(
                participant=participant, answers=complete_answers(), language="ja"
            )
    finally:
        response_submitted.disconnect(listener)
    assert len(received) == 1
    assert received[0]["response_id"] == response.pk
    assert received[0]["study_id"] == participant.site.study_id
    assert received[0]["site_id"] == participant.site_id


@pytest.mark.parametrize(
    ("opens", "closes"),
    [(None, None), (dt.timedelta(days=1), None), (dt.timedelta(days=-9), dt.timedelta(days=-1))],
    ids=["not-scheduled", "not-yet-open", "closed"],
)
def test_a_site_outside_its_questionnaire_window_refuses_answers(study, opens, closes):
    now = timezone.now()
    site = SiteFactory(
        study=study,
        survey_opens_at=now + opens if opens is not None else None,
        survey_closes_at=now + closes if closes is not None else None,
    )
    participant = ParticipantFactory(site=site)
    with pytest.raises(SurveyClosed):
        services.response_submit(participant=participant, answers=complete_answers(), language="ja")
    with pytest.raises(SurveyClosed):
        services.response_save_draft(participant=participant, answers={}, language="ja")
    assert not Response.objects.exists()


# --- Database invariants ---------------------------------------------------------------


def test_an_answer_row_holds_exactly_one_value(participant):
    response = services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    answer = response.answers.filter(choice__isnull=False).first()
    assert answer is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Answer.objects.create(
            response=response, question=answer.question, choice=answer.choice, text_value="x"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Answer.objects.create(response=response, question=answer.question, choice=answer.choice)


def test_a_participant_has_at_most_one_response(participant):
    response = services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.create(
            participant=participant, instrument=response.instrument, source="web"
        )


def test_a_submitted_response_must_have_its_submission_time(participant):
    response = services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.filter(pk=response.pk).update(submitted_at=None)


# --- Instruments -----------------------------------------------------------------------


def test_a_published_instrument_cannot_be_published_again(study):
    instrument = selectors.instrument_current(study)
    assert instrument is not None
    with pytest.raises(InstrumentFrozen):
        services.instrument_publish(instrument=instrument)


def test_a_new_version_copies_questions_choices_and_conditions_as_a_draft(study):
    published = selectors.instrument_current(study)
    assert published is not None
    draft = services.instrument_new_version(instrument=published)
    assert draft.version == published.version + 1
    assert draft.status == Instrument.Status.DRAFT
    assert list(draft.questions.values_list("code", flat=True)) == list(
        published.questions.values_list("code", flat=True)
    )
    understood = draft.questions.get(code="understood")
    assert understood.condition_question == draft.questions.get(code="channels")
    assert set(understood.condition_choices.values_list("code", flat=True)) == {
        "anytime",
        "night",
        "midwife_chat",
    }
    assert all(c.question.instrument_id == draft.pk for c in understood.condition_choices.all())
    # Responses keep answering the published version until the new one is published.
    assert selectors.instrument_current(study) == published
    services.instrument_publish(instrument=draft)
    assert selectors.instrument_current(study) == draft


# --- Import ----------------------------------------------------------------------------


def test_importing_participants_creates_every_row_with_a_link(study):
    SiteFactory(study=study, code="setagaya")
    SiteFactory(study=study, code="itabashi")
    data = "\ufeffreference,site\nA-1,setagaya\nA-2,itabashi\nA-3,setagaya\n".encode()
    invitations = services.participants_import_csv(study=study, data=data)
    assert sorted(i.participant.reference for i in invitations) == ["A-1", "A-2", "A-3"]
    assert Participant.objects.filter(site__study=study).count() == 3
    for invitation in invitations:
        assert selectors.participant_for_token(invitation.token) == invitation.participant


def test_an_import_with_one_bad_row_imports_nothing_and_names_the_rows(study):
    SiteFactory(study=study, code="setagaya")
    ParticipantFactory(site=study.sites.get(code="setagaya"), reference="OLD-1")
    data = (
        "reference,site\n"
        "A-1,setagaya\n"  # row 2: fine
        "A-2,shibuya\n"  # row 3: not a site of the study
        ",setagaya\n"  # row 4: empty reference
        "A-1,setagaya\n"  # row 5: same as row 2
        "OLD-1,setagaya\n"  # row 6: exists already
        "hanako@example.jp,setagaya\n"  # row 7: not a pseudonym
    )
    with pytest.raises(ImportRejected) as caught:
        services.participants_import_csv(study=study, data=data)
    assert set(caught.value.errors) == {3, 4, 5, 6, 7}
    assert Participant.objects.filter(site__study=study).count() == 1


def test_an_import_without_the_columns_says_which_are_missing(study):
    with pytest.raises(ImportRejected) as caught:
        services.participants_import_csv(study=study, data="name,ward\nx,y\n")
    assert "reference" in caught.value.message
    assert "site" in caught.value.message
