"""A participant's draft save or submission, from posted answers to stored rows.

``response_save_draft`` and ``response_submit`` are the only writers of a participant's
response and answers (the web questionnaire, the API, tests and commands all call them).
Each reads top to bottom:

1. **Refuse** what no write could change (``_prepared``): a questionnaire that is not open,
   a response the link's lookup saw submitted, a study with nothing published.
2. **Clean** the answers, once, against the instrument the participant answers
   (``surveys/answers.py``: the same rules as the API and imports). Errors raise
   ``AnswersInvalid`` and nothing is written.
3. **One statement**, on PostgreSQL, for the two usual cases (``_in_one_statement``,
   statements in ``statements.py``): a first save or submission (the response's unique
   participant decides between concurrent ones), and a draft submitted as it was
   autosaved (only if it is still that draft). The result says whether it wrote, or why
   not (``Fast``).
4. Otherwise **the general path** (``_locked``): the participant's row locked, their
   response read again, then written with the ORM. A second submission is refused here.
5. **History**, for both paths, by one writer (``records.py``); a submission is
   announced after commit (``surveys.signals.response_submitted``).

Why the one-statement writes exist, with figures: ``bench/README.md``.
"""

from __future__ import annotations

import copy
import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..answers import CleanAnswers, InstrumentForm, answer_rows, answer_values
from ..errors import AlreadySubmitted, AnswersInvalid, SurveyClosed
from ..models import Answer, Language, Participant, Response
from ..signals import response_submitted
from . import records, statements
from .lookup import Link, link_of


def response_save_draft(
    *,
    participant: Participant | Link,
    answers: Mapping[str, Any],
    language: str,
    source: str = Response.Source.WEB,
) -> Response:
    """Keep ``answers`` (the whole questionnaire as it stands) as the participant's draft.

    ``participant``: as their link's lookup found them (``link_for_token``), or a
    participant in hand (looked up here). Unanswered questions are fine in a draft; an
    invalid value raises ``AnswersInvalid`` and nothing changes. Answers to questions the
    other answers hide are not kept.
    """
    write = _prepared(participant, answers, submitted=False, language=language, source=source)
    return _stored(write)


def response_submit(
    *,
    participant: Participant | Link,
    answers: Mapping[str, Any],
    language: str,
    source: str = Response.Source.WEB,
    idempotency_key: str | None = None,
) -> Response:
    """Submit the participant's answers, once.

    ``answers`` is the whole questionnaire; every shown required question must be answered
    and every value valid, or ``AnswersInvalid`` is raised and nothing changes. A
    participant who has already submitted gets ``AlreadySubmitted``; two concurrent
    submissions store exactly one response. ``idempotency_key`` (an API client's) is
    stored with the response.
    """
    write = _prepared(
        participant,
        answers,
        submitted=True,
        language=language,
        source=source,
        idempotency_key=idempotency_key,
    )
    response = _stored(write)
    site = write.link.site
    # At once, the submission being committed; or when a caller's transaction commits.
    transaction.on_commit(
        lambda: response_submitted.send(
            sender=Response,
            response_id=response.pk,
            participant_id=response.participant_id,
            study_id=site.study_id,
            site_id=site.pk,
        )
    )
    return response


# --- 1 and 2: refuse, clean -------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """A draft save or submission, checked and cleaned: what both paths write."""

    link: Link
    form: InstrumentForm
    clean: CleanAnswers
    submitted: bool
    language: str
    source: str
    idempotency_key: str | None

    @property
    def reason(self) -> str:
        return records.participant_reason(self.source, submission=self.submitted)

    def answer_keys(self) -> Counter[tuple[Any, ...]]:
        return _answer_keys(values[1:] for values in answer_values(0, self.form, self.clean))


def _prepared(
    participant: Participant | Link,
    answers: Mapping[str, Any],
    *,
    submitted: bool,
    language: str,
    source: str,
    idempotency_key: str | None = None,
) -> Write:
    link = participant if isinstance(participant, Link) else link_of(participant)
    if not link.site.is_survey_open():
        raise SurveyClosed()
    # A submitted response stays submitted: what the lookup saw is enough to refuse.
    if link.response is not None and link.response.is_submitted:
        raise AlreadySubmitted()
    instrument = link.instrument()
    if instrument is None:
        raise SurveyClosed()
    form = InstrumentForm.load(instrument)
    # The one place a participant's answers are cleaned.
    clean, errors = form.clean(answers, complete=submitted)
    if errors:
        raise AnswersInvalid(errors=errors)
    return Write(
        link=link,
        form=form,
        clean=clean,
        submitted=submitted,
        language=language if language in Language.values else Language.JA,
        source=source,
        idempotency_key=idempotency_key,
    )


def _stored(write: Write) -> Response:
    outcome = _in_one_statement(write)
    if outcome.fast is Fast.WRITTEN:
        assert outcome.response is not None
        return outcome.response
    with transaction.atomic():
        return _locked(write)


# --- 3: the usual cases in one statement (PostgreSQL) -----------------------------------


class Fast(enum.Enum):
    """What became of the one-statement attempt."""

    WRITTEN = "written"
    NOT_ON_THIS_DATABASE = "the database has no data-modifying WITH"
    DRAFT_SAVED_AGAIN = "an existing draft is saved: whether it is recorded is decided locked"
    DRAFT_CHANGED = "the stored draft is not these answers"
    LOST_RACE = "a concurrent request wrote first: the statement's condition was false"


@dataclass(frozen=True)
class FastOutcome:
    fast: Fast
    response: Response | None = None  # when WRITTEN


def _in_one_statement(write: Write) -> FastOutcome:
    """The usual cases, each in one statement with no lock held in between: a participant
    without a response saves or submits; or submits, unchanged, the draft their page
    autosaved. The statement's conditions decide, not what the lookup read: the
    response's unique participant for a new one, the draft's ``updated_at`` (and the
    participant's row lock) for a draft."""
    if not statements.can_write_in_one_statement():
        return FastOutcome(Fast.NOT_ON_THIS_DATABASE)
    seen = write.link.response
    if seen is None:
        now = timezone.now()
        response = _new_response(write, now)
        rows = [values[1:] for values in answer_values(0, write.form, write.clean)]
        with statements.statements() as run:
            created = statements.create(run, response, rows, reason=write.reason, when=now)
        if created is None:
            return FastOutcome(Fast.LOST_RACE)
        return FastOutcome(Fast.WRITTEN, created)
    if not write.submitted:
        return FastOutcome(Fast.DRAFT_SAVED_AGAIN)
    with statements.statements() as run:
        if _answer_keys(statements.answer_values_of(run, seen.pk)) != write.answer_keys():
            return FastOutcome(Fast.DRAFT_CHANGED)
        response = copy.copy(seen)  # the lookup's value stays as it was read
        _mark_submitted(response, write)
        draft_reason = records.participant_reason(seen.source, submission=False)
        if not statements.submit_draft(
            run,
            response,
            SUBMITTED_FIELDS,
            seen=seen.updated_at,
            reason=write.reason,
            draft_reason=draft_reason,
        ):
            return FastOutcome(Fast.LOST_RACE)
    return FastOutcome(Fast.WRITTEN, response)


# --- 4: the general path ----------------------------------------------------------------


def _locked(write: Write) -> Response:
    """With the participant's row locked, so that their concurrent requests run one after
    the other: refuse a second submission, or make, save or submit their response."""
    participant = write.link.participant
    response = _lock(participant)
    if response is None:
        return _create(write)
    if response.is_submitted:
        raise AlreadySubmitted()
    if response.instrument_id != write.form.instrument.pk:
        # Only if a new version was published between the lookup and a concurrent first
        # save: the answers were checked against another questionnaire.
        raise AnswersInvalid(
            _("The questionnaire has changed. Check your answers and send them again.")
        )
    if write.submitted:
        _replace_answers(response, write, record=True, final=True)
        _mark_submitted(response, write)
        response.save_without_historical_record(update_fields=SUBMITTED_FIELDS)  # type: ignore[attr-defined]
        _record_response(response, records.CHANGED, write.reason)
        return response
    # Recorded only after a pause: an autosave a few seconds after the last one updates
    # the draft without a history record of its own (``records.draft_save_is_recorded``).
    record = records.draft_save_is_recorded(response)
    _replace_answers(response, write, record=record)
    response.language = write.language
    response.choice_bits = write.form.bits(write.clean)
    fields = ["language", "choice_bits", "updated_at"]
    response.save_without_historical_record(update_fields=fields)  # type: ignore[attr-defined]
    if record:
        _record_response(response, records.CHANGED, write.reason)
    return response


def _lock(participant: Participant) -> Response | None:
    """Lock the participant's row (where the database has row locks; SQLite's writers are
    serialised by its IMMEDIATE transactions), then read their response.

    Two statements on purpose: under READ COMMITTED a row joined in the locking statement
    would be read from before a concurrent holder of the lock committed (a double tap
    that has just submitted, say); the second statement sees that commit."""
    list(Participant.objects.select_for_update().filter(pk=participant.pk).values_list("pk"))
    return Response.objects.select_related("instrument").filter(participant=participant).first()


def _create(write: Write) -> Response:
    """A participant's first save or submission: the response in its final state and its
    answers, each recorded once as created."""
    now = timezone.now()
    response = _new_response(write, now)
    response.save_without_historical_record()  # type: ignore[attr-defined]
    Answer.objects.bulk_create(answer_rows(response.pk, write.form, write.clean))
    _record_response(response, records.CREATED, write.reason, when=now)
    records.record(
        Answer,
        records.CREATED,
        where="response_id",
        values=[response.pk],
        reason=write.reason,
        when=now,
    )
    return response


def _replace_answers(
    response: Response, write: Write, *, record: bool, final: bool = False
) -> None:
    """Make the written answers the response's, touching only those that changed, and
    record each added and removed one.

    First, answers an earlier unrecorded save left (``Answer.recorded`` false) are
    recorded as created when that save was made (the response's ``updated_at``, for a
    draft's reason), so that "+" and "-" records always add up to the answers as they
    stood. With ``record`` false (an autosave soon after the last one) only answers
    already recorded get their "-" as they go; the new ones are stored unrecorded.
    ``final``: the response is being submitted and its answers will not change again, so
    the rows just caught up need not be marked."""
    old = list(Answer.objects.filter(response=response))
    new = answer_rows(response.pk, write.form, write.clean)
    old_keys, new_keys = {_key(a) for a in old}, {_key(a) for a in new}
    removed = [a for a in old if _key(a) not in new_keys]
    added = [a for a in new if _key(a) not in old_keys]
    pending = [a for a in old if not a.recorded] if record else []
    if pending:
        draft = records.participant_reason(response.source, submission=False)
        _record_answers(pending, records.CREATED, draft, when=response.updated_at)
        kept = [a.pk for a in pending if _key(a) in new_keys]
        if kept and not final:
            Answer.objects.filter(pk__in=kept).update(recorded=True)
    now = timezone.now()
    _record_answers(
        removed if record else [a for a in removed if a.recorded],
        records.REMOVED,
        write.reason,
        when=now,
    )
    if removed:
        # A plain DELETE: ``QuerySet.delete()`` would load the rows again and have
        # simple-history's signals record them; they are recorded above.
        Answer.objects.filter(pk__in=[a.pk for a in removed])._raw_delete(Answer.objects.db)  # type: ignore[attr-defined]
    if added:
        for answer in added:
            answer.recorded = record
        Answer.objects.bulk_create(added)
        if record:
            _record_answers(added, records.CREATED, write.reason, when=now)


def _record_response(
    response: Response, kind: str, reason: str, *, when: datetime | None = None
) -> None:
    records.record(
        Response,
        kind,
        where="id",
        values=[response.pk],
        reason=reason,
        when=when or response.updated_at,
    )


def _record_answers(answers: Sequence[Answer], kind: str, reason: str, *, when: datetime) -> None:
    records.record(
        Answer, kind, where="id", values=[a.pk for a in answers], reason=reason, when=when
    )


# --- Shared by both paths ---------------------------------------------------------------

SUBMITTED_FIELDS = (
    "status",
    "submitted_at",
    "language",
    "source",
    "choice_bits",
    "idempotency_key",
    "updated_at",
)


def _new_response(write: Write, now: datetime) -> Response:
    participant = write.link.participant
    return Response(
        participant_id=participant.pk,
        instrument=write.form.instrument,
        site_id=participant.site_id,
        status=Response.Status.SUBMITTED if write.submitted else Response.Status.DRAFT,
        language=write.language,
        source=write.source,
        started_at=now,
        submitted_at=now if write.submitted else None,
        choice_bits=write.form.bits(write.clean),
        idempotency_key=write.idempotency_key,
    )


def _mark_submitted(response: Response, write: Write) -> None:
    response.status = Response.Status.SUBMITTED
    response.submitted_at = timezone.now()
    response.language = write.language
    response.source = write.source
    response.idempotency_key = write.idempotency_key
    response.choice_bits = write.form.bits(write.clean)


def _row_key(question: Any, choice: Any, text: Any, number: Any) -> tuple[Any, ...]:
    """An answer row, comparable: numbers as the database keeps them may carry trailing
    zeros (20.0000 is 20)."""
    return (question, choice, text, None if number is None else Decimal(number).normalize())


def _key(answer: Answer) -> tuple[Any, ...]:
    return _row_key(answer.question_id, answer.choice_id, answer.text_value, answer.number_value)


def _answer_keys(rows: Iterable[Sequence[Any]]) -> Counter[tuple[Any, ...]]:
    """(question, choice, text, number, …) rows as a multiset of keys."""
    return Counter(_row_key(*row[:4]) for row in rows)
