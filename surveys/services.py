"""Writes: every change to the survey domain goes through a function here.

Each is keyword-only, runs in one transaction, and announces side effects only after
commit. Rule violations raise ``surveys.errors.RuleViolation`` subclasses and change nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history

from . import links
from .answers import MAX_CHOICES, InstrumentForm, answer_rows
from .bidi import strip_bidi_controls
from .errors import (
    AnswersInvalid,
    ImportRejected,
    InstrumentFrozen,
    InstrumentInvalid,
)
from .history import Reason, save_with_reason
from .models import (
    Answer,
    Choice,
    Instrument,
    Language,
    Participant,
    ParticipantLink,
    Question,
    Response,
    Site,
    Study,
)
from .signals import participant_withdrawing, response_submitted
from .submission import records

# A participant's own writes are the submission pipeline's, offered here with the others.
from .submission.pipeline import response_save_draft, response_submit  # noqa: F401
from .text import forbidden_character, forbidden_message

# --- Participants ---------------------------------------------------------------------


# The participant's link: surveys/links.py (stable, derived from the link key).
Invitation = links.Invitation
participant_replace_links = links.participant_replace_links


def participant_create(*, site: Site, reference: str) -> Invitation:
    """A new participant and their link (the same link ``links.participant_link`` gives
    later)."""
    link = links.new_link()
    participant = Participant(site=site, reference=reference, token_hash=link.token_hash)
    with transaction.atomic():
        save_with_reason(participant, Reason.PARTICIPANT_CREATED.value)
        link.row(participant.pk).save(force_insert=True)
    return Invitation(participant=participant, token=link.token)


@transaction.atomic
def participant_withdraw(*, participant: Participant) -> None:
    """The participant leaves the study: their link stops working; their answers stay.
    Other apps cancel what they had queued for them in this transaction
    (``signals.participant_withdrawing``)."""
    participant.status = Participant.Status.WITHDRAWN
    save_with_reason(participant, Reason.PARTICIPANT_WITHDRAWN.value, update_fields=["status"])
    participant_withdrawing.send(sender=Participant, participant=participant)


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
    made = [links.new_link() for _row in rows]
    participants = [
        Participant(site=site, reference=reference, token_hash=link.token_hash)
        for (site, reference), link in zip(rows, made, strict=True)
    ]
    with transaction.atomic():  # all rows are stored, or none
        # PostgreSQL and SQLite give the new rows' ids back (``RETURNING``).
        bulk_create_with_history(
            participants,
            Participant,
            batch_size=1000,
            default_change_reason=Reason.PARTICIPANTS_IMPORTED.value,
        )
        ParticipantLink.objects.bulk_create(
            [link.row(p.pk) for p, link in zip(participants, made, strict=True)], batch_size=1000
        )
    return [
        Invitation(participant=participant, token=link.token)
        for participant, link in zip(participants, made, strict=True)
    ]


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
    return instrument_copy(instrument=instrument, study=study, version=last + 1)


def instrument_copy(*, instrument: Instrument, study: Study, version: int) -> Instrument:
    """A draft copy of ``instrument`` (questions, choices, conditions) as ``version`` of
    ``study``: a new version of its own study, or the first of a copied study."""
    copy = Instrument.objects.create(
        study=study,
        version=version,
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
#
# A participant's own writes (drafts, submission) are the submission pipeline's:
# ``surveys/submission/pipeline.py``. They are services like the others.


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
    now = timezone.now()
    with transaction.atomic():
        # Each table, then its history (``submission/records.py``, the writer of every
        # record of responses and answers): one INSERT each per batch.
        responses = Response.objects.bulk_create(
            [
                Response(
                    participant=row.participant,
                    instrument=instrument,
                    site_id=row.participant.site_id,
                    status=Response.Status.SUBMITTED,
                    language=row.language if row.language in Language.values else Language.JA,
                    source=Response.Source.IMPORT,
                    started_at=row.submitted_at,
                    submitted_at=row.submitted_at,
                    choice_bits=form.bits(clean),
                )
                for row, clean in zip(rows, cleaned, strict=True)
            ],
            batch_size=1000,
        )
        Answer.objects.bulk_create(
            [
                answer
                for response, clean in zip(responses, cleaned, strict=True)
                for answer in answer_rows(response.pk, form, clean)
            ],
            batch_size=2000,
        )
        ids = [response.pk for response in responses]
        reason = Reason.RESPONSES_IMPORTED.value
        records.record(Response, records.CREATED, where="id", values=ids, reason=reason, when=now)
        records.record(
            Answer, records.CREATED, where="response_id", values=ids, reason=reason, when=now
        )
        site_ids = sorted({r.participant.site_id for r in rows})
        # One announcement per site, not per response: scoring is debounced anyway.
        transaction.on_commit(lambda: _announce_import(instrument.study_id, site_ids))
    return responses


def _announce_import(study_id: int, site_ids: list[int]) -> None:
    for site_id in site_ids:
        response_submitted.send(
            sender=Response,
            response_id=None,
            participant_id=None,
            study_id=study_id,
            site_id=site_id,
        )
