"""Writes: every change to the survey domain goes through a function here.

Each is keyword-only, runs in one transaction, and announces side effects only after
commit. Rule violations raise ``surveys.errors.RuleViolation`` subclasses and change nothing.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from . import audit, sql, tokens
from .answers import (
    ANSWER_COLUMNS,
    MAX_CHOICES,
    CleanAnswers,
    InstrumentForm,
    answer_rows,
    answer_values,
)
from .bidi import strip_bidi_controls
from .errors import (
    AlreadySubmitted,
    AnswersInvalid,
    ImportRejected,
    InstrumentFrozen,
    InstrumentInvalid,
    ParticipantErased,
    SurveyClosed,
)
from .history import Reason, save_with_reason
from .models import (
    Answer,
    Choice,
    ErasureRecord,
    Instrument,
    Language,
    Participant,
    Question,
    Response,
    Site,
    Study,
)
from .selectors import participant_instrument
from .signals import response_submitted
from .text import forbidden_character, forbidden_message

# --- Participants ---------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """A participant with the plain link: returned once, at creation or reissue."""

    participant: Participant
    token: str

    @property
    def url(self) -> str:
        return tokens.invitation_url(self.token)


def participant_create(*, site: Site, reference: str) -> Invitation:
    token, token_hash = tokens.new_token()
    participant = Participant(site=site, reference=reference, token_hash=token_hash)
    save_with_reason(participant, Reason.PARTICIPANT_CREATED.value)
    return Invitation(participant=participant, token=token)


@transaction.atomic
def participant_reissue_links(*, participants: Iterable[Participant]) -> list[Invitation]:
    """New links for these participants; their old links stop working at once. An erased
    participant gets none (it would give them back a way in)."""
    participants = list(participants)
    if ErasureRecord.objects.filter(participant__in=participants).exists():
        raise ParticipantErased()
    now = timezone.now()
    invitations = []
    for participant in participants:
        token, participant.token_hash = tokens.new_token()
        participant.token_issued_at = now
        invitations.append(Invitation(participant=participant, token=token))
    # One UPDATE and one INSERT of historical rows (which keep the time, never the hash).
    bulk_update_with_history(
        [i.participant for i in invitations],
        Participant,
        ["token_hash", "token_issued_at"],
        batch_size=1000,
        default_change_reason=Reason.LINK_REISSUED.value,
        default_date=now,
    )
    return invitations


def participant_withdraw(*, participant: Participant) -> None:
    """The participant leaves the study: their link stops working; their answers stay."""
    participant.status = Participant.Status.WITHDRAWN
    save_with_reason(participant, Reason.PARTICIPANT_WITHDRAWN.value, update_fields=["status"])


IMPORT_COLUMNS = ("reference", "site")
REFERENCE_MAX: int = Participant._meta.get_field("reference").max_length or 64  # type: ignore[union-attr]


def participants_import_csv(
    *, study: Study, data: bytes | str, sites: QuerySet[Site] | None = None
) -> list[Invitation]:
    """Import participants from CSV (columns ``reference,site``; the site by its code).

    ``sites`` are the sites of the study the caller may import into (a manager's own,
    ``scoping.sites(..., at_least=MANAGER)``); ``None``, every site of the study. Any other
    site is one that does not exist: a row naming it is refused with the same words
    whether it exists elsewhere or nowhere, and nothing about its participants (a
    reference taken there) or its code is ever said.

    All rows are checked first; if any row is wrong, nothing is imported and
    ``ImportRejected.errors`` maps row numbers (as in a spreadsheet, the header is row 1)
    to messages.
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ImportRejected(
            _(
                "The file is not in UTF-8. In Excel, save it as “CSV UTF-8 (comma delimited)” "
                "and import it again."
            )
        ) from None
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        records = list(reader)
    except csv.Error as exc:
        raise ImportRejected(
            _("The file is not a readable CSV file (%(error)s).") % {"error": exc}
        ) from None
    allowed = study.sites.all() if sites is None else sites.filter(study=study)
    return _import_rows(allowed, header, records, restricted=sites is not None)


def _import_rows(
    allowed: QuerySet[Site],
    header: list[str],
    records: list[dict[str, str | None]],
    *,
    restricted: bool,
) -> list[Invitation]:
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise ImportRejected(
            _("The file needs the columns %(columns)s (missing: %(missing)s).")
            % {"columns": ", ".join(IMPORT_COLUMNS), "missing": ", ".join(missing)}
        )
    sites = {s.code: s for s in allowed}
    # References are unique per site (``participant_reference_unique_in_site``): only the
    # allowed sites' are looked at, so no answer depends on another site's participants.
    existing = set(
        Participant.objects.filter(site__in=sites.values()).values_list("site__code", "reference")
    )
    seen: dict[tuple[str, str], int] = {}
    rows: list[tuple[Site, str]] = []
    errors: dict[int, list[str]] = {}
    for number, record in enumerate(records, start=2):
        row = {(k or "").strip().lower(): v for k, v in record.items() if isinstance(v, str)}
        reference = strip_bidi_controls(row.get("reference") or "").strip()
        site_code = (row.get("site") or "").strip()
        problems = []
        if not reference:
            problems.append(_("The reference is empty."))
        elif len(reference) > REFERENCE_MAX:
            problems.append(
                _("The reference is longer than %(max)d characters.") % {"max": REFERENCE_MAX}
            )
        elif "@" in reference:
            problems.append(_("The reference looks like an e-mail address; use a pseudonym."))
        elif (character := forbidden_character(reference)) is not None:
            problems.append(forbidden_message(character))
        site = sites.get(site_code)
        if site is None:
            problems.append(_unknown_site(site_code, sorted(sites), restricted=restricted))
        key = (site_code, reference)
        if reference and site and key in existing:
            problems.append(_("This participant already exists at this site."))
        elif reference and site and key in seen:
            problems.append(_("Same participant as row %(row)d.") % {"row": seen[key]})
        if problems:
            errors[number] = problems
        elif site is not None:
            seen[key] = number
            rows.append((site, reference))
    if errors:
        raise ImportRejected(errors=errors)
    if not rows:
        raise ImportRejected(_("The file has no participants."))
    invitations = []
    for site, reference in rows:
        token, token_hash = tokens.new_token()
        participant = Participant(site=site, reference=reference, token_hash=token_hash)
        invitations.append(Invitation(participant=participant, token=token))
    with transaction.atomic():  # all rows are stored, or none
        bulk_create_with_history(
            [i.participant for i in invitations],
            Participant,
            batch_size=1000,
            default_change_reason=Reason.PARTICIPANTS_IMPORTED.value,
        )
    return invitations


def _unknown_site(code: str, codes: list[str], *, restricted: bool) -> str:
    """A row's site that is not one of ``codes``: whether it exists at all is not said."""
    listed = ", ".join(codes) or "\u2014"
    if restricted:
        return _("“%(site)s” is not one of the sites you manage in this study (%(sites)s).") % {
            "site": code,
            "sites": listed,
        }
    return _("“%(site)s” is not a site of this study (sites: %(sites)s).") % {
        "site": code,
        "sites": listed,
    }


# --- Instruments ----------------------------------------------------------------------


def instrument_publish(*, instrument: Instrument) -> Instrument:
    if instrument.is_frozen:
        raise InstrumentFrozen(_("This version is already published."))
    if not instrument.questions.exists():
        raise InstrumentInvalid(_("A questionnaire needs at least one question to be published."))
    choices = Choice.objects.filter(question__instrument=instrument).count()
    if choices > MAX_CHOICES:
        raise InstrumentInvalid(
            _("A questionnaire can have at most %(max)d choices in all (this one has %(n)d).")
            % {"max": MAX_CHOICES, "n": choices}
        )
    instrument.status = Instrument.Status.PUBLISHED
    instrument.published_at = timezone.now()
    instrument.save(update_fields=["status", "published_at"])
    return instrument


@transaction.atomic
def instrument_new_version(*, instrument: Instrument) -> Instrument:
    """A draft copy of ``instrument`` as the study's next version, to edit and publish."""
    study = instrument.study
    last = study.instruments.order_by("-version").values_list("version", flat=True).first() or 0
    copy = Instrument.objects.create(
        study=study,
        version=last + 1,
        title_ja=instrument.title_ja,
        title_en=instrument.title_en,
        intro_ja=instrument.intro_ja,
        intro_en=instrument.intro_en,
    )
    question_map: dict[int, Question] = {}
    choice_map: dict[int, Choice] = {}
    old_questions = list(instrument.questions.prefetch_related("choices", "condition_choices"))
    for old in old_questions:
        new = Question.objects.create(
            instrument=copy,
            **{
                f.name: getattr(old, f.name)
                for f in Question._meta.concrete_fields
                if f.name not in {"id", "instrument", "condition_question"}
            },
        )
        question_map[old.pk] = new
        for old_choice in old.choices.all():
            choice_map[old_choice.pk] = Choice.objects.create(
                question=new,
                **{
                    f.name: getattr(old_choice, f.name)
                    for f in Choice._meta.concrete_fields
                    if f.name not in {"id", "question"}
                },
            )
    for old in old_questions:
        if old.condition_question_id:
            new = question_map[old.pk]
            new.condition_question = question_map[old.condition_question_id]
            new.save(update_fields=["condition_question"])
            new.condition_choices.set([choice_map[c.pk] for c in old.condition_choices.all()])
    return copy


# --- Responses ------------------------------------------------------------------------


def _check_open(participant: Participant) -> None:
    if not participant.site.is_survey_open():
        raise SurveyClosed()


def _lock_participant(participant: Participant) -> Response | None:
    """Lock the participant's row, so that concurrent requests for one participant run one
    after the other, and return their response as it is once the lock is held."""
    return sql.lock_participant_and_read_response(participant)


def _locked_response(
    participant: Participant,
    answers: Mapping[str, Any],
    *,
    submitted: bool,
    language: str,
    source: str,
    idempotency_key: str | None = None,
) -> tuple[Response, bool]:
    """With the participant's row locked: their response, refusing one already submitted,
    or, if they have none, a new one made of ``answers`` (``AnswersInvalid`` says what is
    wrong with them). ``True`` when the response was made here."""
    response = _lock_participant(participant)
    if response is not None and response.is_submitted:
        raise AlreadySubmitted()
    if response is not None:
        return response, False
    form = InstrumentForm.load(_current_instrument(participant))
    clean = _clean_or_refuse(form, answers, complete=submitted)
    created = _create(
        participant,
        form,
        clean,
        submitted=submitted,
        language=language,
        source=source,
        idempotency_key=idempotency_key,
    )
    return created, True


def _current_instrument(participant: Participant) -> Instrument:
    instrument = participant_instrument(participant)
    if instrument is None:
        raise SurveyClosed()
    return instrument


def _normal_language(language: str) -> str:
    return language if language in Language.values else Language.JA


def _create(
    participant: Participant,
    form: InstrumentForm,
    clean: CleanAnswers,
    *,
    submitted: bool,
    language: str,
    source: str,
    idempotency_key: str | None = None,
) -> Response:
    """A participant's first save or submission, with their row locked: the response, in
    its final state, and its answers, each recorded once as created. Fixed statements
    (``surveys/sql.py``): four INSERTs in all."""
    now = timezone.now()
    reason = audit.participant_reason(source, submission=submitted)
    response = _new_response(
        participant,
        form,
        clean,
        submitted=submitted,
        language=language,
        source=source,
        idempotency_key=idempotency_key,
        now=now,
    )
    with sql.statements() as run:
        sql.insert(run, response)
        sql.insert_rows(run, Answer, ANSWER_COLUMNS, answer_values(response.pk, form, clean))
        created = {"history_type": "+", "reason": reason, "when": now}
        sql.record(run, Response, "id", response.pk, **created)  # type: ignore[arg-type]
        sql.record(run, Answer, "response_id", response.pk, **created)  # type: ignore[arg-type]
    return response


def _new_response(
    participant: Participant,
    form: InstrumentForm,
    clean: CleanAnswers,
    *,
    submitted: bool,
    language: str,
    source: str,
    idempotency_key: str | None,
    now: datetime,
) -> Response:
    return Response(
        participant=participant,
        instrument=form.instrument,
        site_id=participant.site_id,
        status=Response.Status.SUBMITTED if submitted else Response.Status.DRAFT,
        language=language,
        source=source,
        started_at=now,
        submitted_at=now if submitted else None,
        choice_bits=form.bits(clean),
        idempotency_key=idempotency_key,
    )


def _answer_keys(rows: Iterable[Sequence[Any]]) -> Counter[tuple[Any, ...]]:
    """(question, choice, text, number) rows, comparable: numbers as the database keeps
    them may carry trailing zeros (20.0000 is 20)."""
    return Counter(
        (question, choice, text, None if number is None else Decimal(number).normalize())
        for question, choice, text, number, *_recorded in rows
    )


def _seen_response(participant: Participant) -> Response | None:
    """The response the participant's lookup (``participant_for_token(...,
    with_response=True)``) saw, if it looked: a hint that picks a path; the statements
    themselves decide."""
    if not Participant.response.is_cached(participant):  # type: ignore[attr-defined]
        return None
    return getattr(participant, "response", None)


def _in_one_statement(
    participant: Participant,
    answers: Mapping[str, Any],
    *,
    submitted: bool,
    language: str,
    source: str,
    idempotency_key: str | None = None,
) -> Response | None:
    """The usual cases, each in one statement and no lock held in between (PostgreSQL,
    ``sql.can_write_in_one_statement``): a participant without a response saves or
    submits valid answers; or submits, unchanged, the draft their page autosaved. ``None``
    when it is neither (answers with errors, a changed draft, a response already
    submitted, no current instrument) or when a concurrent request got there first: the
    general path, which locks the participant's row, takes over and says what is wrong.
    The statement's conditions decide, not what was read before it: the response's
    unique participant for a new one, the draft's ``updated_at`` for a draft."""
    if not sql.can_write_in_one_statement():
        return None
    seen = _seen_response(participant)
    if seen is not None:
        if not submitted or seen.is_submitted:
            return None
        return _submit_draft_as_saved(
            seen, answers, language=language, source=source, idempotency_key=idempotency_key
        )
    instrument = participant_instrument(participant)
    if instrument is None:
        return None
    form = InstrumentForm.load(instrument)
    clean, errors = form.clean(answers, complete=submitted)
    if errors:
        return None
    now = timezone.now()
    response = _new_response(
        participant,
        form,
        clean,
        submitted=submitted,
        language=language,
        source=source,
        idempotency_key=idempotency_key,
        now=now,
    )
    rows = [values[1:] for values in answer_values(0, form, clean)]
    reason = audit.participant_reason(source, submission=submitted)
    with sql.statements() as run:
        return sql.create(run, response, rows, reason=reason, when=now)


def _submit_draft_as_saved(
    response: Response,
    answers: Mapping[str, Any],
    *,
    language: str,
    source: str,
    idempotency_key: str | None,
) -> Response | None:
    """Submit a draft whose stored answers are ``answers``: one read, one write."""
    form = InstrumentForm.load(response.instrument)
    clean, errors = form.clean(answers, complete=True)
    if errors:
        return None
    with sql.statements() as run:
        stored = sql.answer_values_of(run, response.pk)
        if _answer_keys(stored) != _answer_keys(v[1:] for v in answer_values(0, form, clean)):
            return None
        seen = response.updated_at
        draft_reason = audit.participant_reason(response.source, submission=False)
        _mark_submitted(response, language=language, source=source, key=idempotency_key)
        response.choice_bits = form.bits(clean)
        reason = audit.participant_reason(source, submission=True)
        if not sql.submit_draft(
            run, response, _SUBMITTED_FIELDS, seen=seen, reason=reason, draft_reason=draft_reason
        ):
            # The lookup's response, changed above, is not what is stored: forget it.
            Participant.response.related.delete_cached_value(response.participant)  # type: ignore[attr-defined]
            return None
    return response


_SUBMITTED_FIELDS = (
    "status",
    "submitted_at",
    "language",
    "source",
    "choice_bits",
    "idempotency_key",
    "updated_at",
)


def _mark_submitted(response: Response, *, language: str, source: str, key: str | None) -> None:
    response.status = Response.Status.SUBMITTED
    response.submitted_at = timezone.now()
    response.language = language
    response.source = source
    response.idempotency_key = key


def _store(
    response: Response,
    form: InstrumentForm,
    clean: CleanAnswers,
    *,
    reason: str,
    record: bool = True,
    submission: bool = False,
) -> None:
    """Replace an existing response's answers (recording those that changed, unless
    ``record`` is false: see ``audit.answers_replace``); the caller saves ``choice_bits``
    with the response. Submitting a draft as it was autosaved, the usual case on the web,
    reads the answers with a fixed statement and writes none, unless some are not
    recorded yet."""
    values = answer_values(response.pk, form, clean)
    with sql.statements() as run:
        stored = sql.answer_values_of(run, response.pk)
    changed = _answer_keys(stored) != _answer_keys([v[1:] for v in values])
    unrecorded = not all(row[-1] for row in stored)
    if changed or (record and unrecorded):
        rows = answer_rows(response.pk, form, clean)
        audit.answers_replace(response, rows, reason=reason, record=record, final=submission)
    response.choice_bits = form.bits(clean)


def _clean_or_refuse(
    form: InstrumentForm, answers: Mapping[str, Any], *, complete: bool
) -> CleanAnswers:
    clean, errors = form.clean(answers, complete=complete)
    if errors:
        raise AnswersInvalid(errors=errors)
    return clean


def response_save_draft(
    *,
    participant: Participant,
    answers: Mapping[str, Any],
    language: str,
    source: str = Response.Source.WEB,
) -> Response:
    """Keep ``answers`` (the whole questionnaire as it stands) as the participant's draft.

    Unanswered questions are fine in a draft; an invalid value raises ``AnswersInvalid``
    and nothing changes. Answers to questions the other answers hide are not kept.
    """
    _check_open(participant)
    language = _normal_language(language)
    created = _in_one_statement(
        participant, answers, submitted=False, language=language, source=source
    )
    if created is not None:
        return created
    with transaction.atomic():
        response, made = _locked_response(
            participant, answers, submitted=False, language=language, source=source
        )
        if made:
            return response
        form = InstrumentForm.load(response.instrument)
        clean = _clean_or_refuse(form, answers, complete=False)
        reason = audit.participant_reason(source, submission=False)
        # Recorded only after a pause: an autosave a few seconds after the last one
        # updates the draft without a history record of its own (surveys/audit.py).
        record = audit.draft_save_is_recorded(response)
        _store(response, form, clean, reason=reason, record=record)
        response.language = language
        fields = ["language", "choice_bits", "updated_at"]
        if record:
            audit.save_recorded(response, update_fields=fields, reason=reason)
        else:
            response.save_without_historical_record(update_fields=fields)  # type: ignore[attr-defined]
    return response


def response_submit(
    *,
    participant: Participant,
    answers: Mapping[str, Any],
    language: str,
    source: str = Response.Source.WEB,
    idempotency_key: str | None = None,
) -> Response:
    """Submit the participant's answers, once.

    ``answers`` is the whole questionnaire; every shown required question must be answered
    and every value valid, or ``AnswersInvalid`` is raised and nothing changes. A
    participant who has already submitted gets ``AlreadySubmitted``; two concurrent
    submissions store exactly one response (the response's unique participant, then the
    participant's row lock, decide). ``idempotency_key`` (an API client's) is stored with
    the response.

    The usual cases, a first submission and the submission of a draft as it was
    autosaved, write the response in its final state, with its history, and the answers
    only if they are new: nothing written twice, and on PostgreSQL in one statement.
    """
    _check_open(participant)
    language = _normal_language(language)
    response = _in_one_statement(
        participant,
        answers,
        submitted=True,
        language=language,
        source=source,
        idempotency_key=idempotency_key,
    )
    if response is None:
        with transaction.atomic():
            response = _submit_locked(
                participant,
                answers,
                language=language,
                source=source,
                idempotency_key=idempotency_key,
            )
    site = participant.site
    # At once, the submission being committed; or when a caller's transaction commits.
    transaction.on_commit(
        lambda: response_submitted.send(
            sender=Response, response_id=response.pk, study_id=site.study_id, site_id=site.pk
        )
    )
    return response


def _submit_locked(
    participant: Participant,
    answers: Mapping[str, Any],
    *,
    language: str,
    source: str,
    idempotency_key: str | None,
) -> Response:
    """A submission that is not a valid first one: with the participant's row locked,
    refuse a second submission, say what is wrong with the answers, or submit the draft."""
    response, made = _locked_response(
        participant,
        answers,
        submitted=True,
        language=language,
        source=source,
        idempotency_key=idempotency_key,
    )
    if made:
        return response
    form = InstrumentForm.load(response.instrument)
    clean = _clean_or_refuse(form, answers, complete=True)
    reason = audit.participant_reason(source, submission=True)
    _store(response, form, clean, reason=reason, submission=True)
    _mark_submitted(response, language=language, source=source, key=idempotency_key)
    with sql.statements() as run:
        sql.update(run, response, _SUBMITTED_FIELDS)
        sql.record(
            run,
            Response,
            "id",
            response.pk,
            history_type="~",
            reason=reason,
            when=response.updated_at,
        )
    return response


def response_draft_answers(response: Response) -> dict[str, str | list[str]]:
    """A stored response's answers in the raw shape (codes and strings), to refill a form."""
    form = InstrumentForm.load(response.instrument)
    clean = form.clean_from_rows(response.answers.select_related("question", "choice"))
    return form.to_raw(clean)


@dataclass(frozen=True)
class ImportedResponse:
    participant: Participant
    answers: Mapping[str, Any]
    submitted_at: Any  # datetime
    language: str = Language.JA


def responses_import(*, instrument: Instrument, rows: Iterable[ImportedResponse]) -> list[Response]:
    """Store already-collected responses (paper forms, another system) as submitted, in
    bulk: each is validated by the same rules as the questionnaire, and if any row is
    invalid or its participant has already responded, nothing is stored
    (``AnswersInvalid.errors`` maps participant references to their problems)."""
    form = InstrumentForm.load(instrument)
    rows = list(rows)
    errors: dict[str, Any] = {}
    cleaned = []
    for row in rows:
        clean, problems = form.clean(row.answers, complete=True)
        if problems:
            errors[row.participant.reference] = problems
        cleaned.append(clean)
    taken = set(
        Response.objects.filter(participant__in=[r.participant for r in rows]).values_list(
            "participant__reference", flat=True
        )
    )
    for reference in taken:
        errors[reference] = _("This participant has already responded.")
    if errors:
        raise AnswersInvalid(errors=errors)
    with transaction.atomic():
        # Each table and its history: one INSERT each per batch.
        responses = bulk_create_with_history(
            [
                Response(
                    participant=row.participant,
                    instrument=instrument,
                    site_id=row.participant.site_id,
                    status=Response.Status.SUBMITTED,
                    language=_normal_language(row.language),
                    source=Response.Source.IMPORT,
                    started_at=row.submitted_at,
                    submitted_at=row.submitted_at,
                    choice_bits=form.bits(clean),
                )
                for row, clean in zip(rows, cleaned, strict=True)
            ],
            Response,
            batch_size=1000,
            default_change_reason=Reason.RESPONSES_IMPORTED.value,
        )
        bulk_create_with_history(
            [
                answer
                for response, clean in zip(responses, cleaned, strict=True)
                for answer in answer_rows(response.pk, form, clean)
            ],
            Answer,
            batch_size=2000,
            default_change_reason=Reason.RESPONSES_IMPORTED.value,
        )
        site_ids = sorted({r.participant.site_id for r in rows})
        # One announcement per site, not per response: scoring is debounced anyway.
        transaction.on_commit(lambda: _announce_import(instrument.study_id, site_ids))
    return responses


def _announce_import(study_id: int, site_ids: list[int]) -> None:
    for site_id in site_ids:
        response_submitted.send(
            sender=Response, response_id=None, study_id=study_id, site_id=site_id
        )
