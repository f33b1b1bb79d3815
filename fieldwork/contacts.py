"""Writes of contact details: importing them from CSV, setting one participant's, erasing
them, and re-encrypting every row after a key rotation (``crypto.py``).

The values are encrypted by the model's fields; only here is the LINE user id's blind
index computed, so every write of a contact goes through this module.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from surveys.bidi import strip_bidi_controls
from surveys.errors import ImportRejected
from surveys.models import ErasureRecord, Language, Participant, Site, Study
from surveys.services import participants_import_csv
from surveys.text import forbidden_character, forbidden_message

from . import crypto
from .models import LINE_USER_ID, Contact

IMPORT_COLUMNS = (
    "reference",
    "email",
    "line_user_id",
    "postal_name",
    "postal_address",
    "language",
)
REQUIRED_COLUMNS = ("reference",)
VALUE_MAX = 500  # characters of any one value: an address is far shorter


@dataclass(frozen=True)
class ContactValues:
    email: str = ""
    line_user_id: str = ""
    postal_name: str = ""
    postal_address: str = ""
    language: str = Language.JA


@dataclass(frozen=True)
class ContactImport:
    created: int
    updated: int


def contact_set(*, participant: Participant, values: ContactValues) -> Contact:
    """Set the participant's contact details (created or replaced). An erased participant
    gets none (``ImportRejected``)."""
    problems = _problems(values)
    if ErasureRecord.objects.filter(participant=participant).exists():
        problems.append(_("This participant's personal data was erased."))
    if problems:
        raise ImportRejected(" ".join(problems), errors={"contact": problems})
    with transaction.atomic():
        contact = Contact.objects.filter(participant=participant).first() or Contact(
            participant=participant
        )
        _apply(contact, values)
        contact.save()
    return contact


def contacts_erase(*, participant_id: int) -> int:
    """Delete the participant's contact row (erasure, retention). No copy is left: contacts
    have no history."""
    deleted, _by_model = Contact.objects.filter(participant_id=participant_id).delete()
    return deleted


def contacts_import_csv(
    *,
    study: Study,
    data: bytes | str,
    sites: QuerySet[Site] | None = None,
    create_participants: bool = False,
) -> ContactImport:
    """Import contact details for the study's participants from CSV (columns
    ``reference,email,line_user_id,postal_name,postal_address,language``, and ``site``
    when a reference is used at more than one site), UTF-8.

    ``create_participants``: a row whose reference is not yet at the site its ``site``
    column names creates that participant (by ``surveys.services.participants_import_csv``,
    with its rules for references), in the same transaction as the contacts: participants
    and contact details in one file.

    ``sites``: the sites the caller may write to (a manager's own); ``None``, every site
    of the study. A participant elsewhere is one that does not exist. Every row is checked
    first; if any is wrong, nothing is stored and ``ImportRejected.errors`` maps row
    numbers (the header is row 1) to messages in the active language. A participant who
    already has contact details gets the file's values instead."""
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
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        records = list(reader)
    except csv.Error as exc:
        raise ImportRejected(
            _("The file is not a readable CSV file (%(error)s).") % {"error": exc}
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing or not set(header) & set(IMPORT_COLUMNS[1:5]):
        raise ImportRejected(
            _("The file needs the columns %(columns)s (missing: %(missing)s).")
            % {
                "columns": ", ".join(IMPORT_COLUMNS),
                "missing": ", ".join(missing) or ", ".join(IMPORT_COLUMNS[1:5]),
            }
        )
    allowed = study.sites.all() if sites is None else sites.filter(study=study)
    participants: dict[str, list[Participant]] = {}
    for p in Participant.objects.filter(site__in=allowed).select_related("site"):
        participants.setdefault(p.reference, []).append(p)
    erased = set(
        ErasureRecord.objects.filter(participant__site__in=allowed).values_list(
            "participant_id", flat=True
        )
    )
    codes = {site.code for site in allowed}
    seen: dict[int, int] = {}
    new_seen: dict[tuple[str, str], int] = {}
    rows: list[tuple[Participant, ContactValues]] = []
    to_create: list[tuple[int, str, str, ContactValues]] = []  # row, site code, reference
    errors: dict[int, list[str]] = {}
    for number, record in enumerate(records, start=2):
        row = {(k or "").strip().lower(): (v or "") for k, v in record.items() if k is not None}
        if any(isinstance(v, list) for v in record.values()) or None in record:
            errors[number] = [_("The row has more values than the header has columns.")]
            continue
        reference = strip_bidi_controls(row.get("reference", "")).strip()
        site_code = row.get("site", "").strip()
        problems: list[str] = []
        participant = None
        creating = False
        if not reference:
            problems.append(_("The reference is empty."))
        else:
            found = [
                p
                for p in participants.get(reference, [])
                if not site_code or p.site.code == site_code
            ]
            if not found and create_participants and site_code:
                creating = True
                if site_code not in codes:
                    problems.append(
                        _("“%(site)s” is not one of the sites you manage in this study.")
                        % {"site": site_code}
                    )
                elif (site_code, reference) in new_seen:
                    problems.append(
                        _("Same participant as row %(row)d.")
                        % {"row": new_seen[(site_code, reference)]}
                    )
            elif not found:
                problems.append(
                    _("No participant with this reference at the sites you manage in this study.")
                )
            elif len(found) > 1:
                problems.append(
                    _("This reference is used at several sites: add a “site” column with its code.")
                )
            else:
                participant = found[0]
                if participant.pk in erased:
                    problems.append(_("This participant's personal data was erased."))
                elif participant.pk in seen:
                    problems.append(
                        _("Same participant as row %(row)d.") % {"row": seen[participant.pk]}
                    )
        values = ContactValues(
            email=row.get("email", "").strip(),
            line_user_id=row.get("line_user_id", "").strip(),
            postal_name=row.get("postal_name", "").strip(),
            postal_address=row.get("postal_address", "").strip().replace("\r\n", "\n"),
            language=row.get("language", "").strip().lower() or Language.JA,
        )
        problems.extend(_problems(values))
        if problems:
            errors[number] = problems
        elif creating:
            new_seen[(site_code, reference)] = number
            to_create.append((number, site_code, reference, values))
        elif participant is not None:
            seen[participant.pk] = number
            rows.append((participant, values))
    if not errors and not rows and not to_create:
        raise ImportRejected(_("The file has no contact details."))
    with transaction.atomic():  # all rows are stored, or none
        rows.extend(_created(study, sites, to_create, errors))
        if errors:
            raise ImportRejected(errors=errors)  # rolls back the participants created
        existing = {
            c.participant_id: c
            for c in Contact.objects.select_for_update().filter(
                participant_id__in=[p.pk for p, _v in rows]
            )
        }
        new, changed = [], []
        for participant, values in rows:
            contact = existing.get(participant.pk)
            if contact is None:
                contact = Contact(participant=participant)
                new.append(contact)
            else:
                changed.append(contact)
            _apply(contact, values)
        Contact.objects.bulk_create(new, batch_size=500)
        Contact.objects.bulk_update(
            changed,
            [
                "email",
                "line_user_id",
                "line_user_index",
                "postal_name",
                "postal_address",
                "language",
            ],
            batch_size=500,
        )
    return ContactImport(created=len(new), updated=len(changed))


def _created(
    study: Study,
    sites: QuerySet[Site] | None,
    to_create: list[tuple[int, str, str, ContactValues]],
    errors: dict[int, list[str]],
) -> list[tuple[Participant, ContactValues]]:
    """Create the participants of ``to_create`` through the survey domain's import (its
    rules, its history), its per-row errors added to ``errors`` under the file's row
    numbers. Checked even when other rows are wrong, so that every error shows at once;
    the caller's transaction rolls them back then."""
    if not to_create:
        return []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["reference", "site"])
    writer.writerows([reference, site_code] for _n, site_code, reference, _v in to_create)
    try:
        invitations = participants_import_csv(study=study, data=out.getvalue(), sites=sites)
    except ImportRejected as exc:
        for row, messages in exc.errors.items():
            number = to_create[int(row) - 2][0]
            errors.setdefault(number, []).extend(
                messages if isinstance(messages, list) else [messages]
            )
        if not exc.errors:
            errors.setdefault(to_create[0][0], []).append(exc.message)
        return []
    made = {(i.participant.site.code, i.participant.reference): i.participant for i in invitations}
    return [(made[(code, reference)], values) for _n, code, reference, values in to_create]


def _problems(values: ContactValues) -> list[str]:
    """What is wrong with these values, in the active language."""
    problems: list[str] = []
    if not (values.email or values.line_user_id or values.postal_address):
        problems.append(_("The row has no e-mail address, LINE user id or postal address."))
    for value in (values.email, values.line_user_id, values.postal_name, values.postal_address):
        if len(value) > VALUE_MAX:
            problems.append(_("A value is longer than %(max)d characters.") % {"max": VALUE_MAX})
            return problems
        character = forbidden_character(value.replace("\n", ""))
        if character is not None:
            problems.append(forbidden_message(character))
            return problems
    if values.email:
        try:
            validate_email(values.email)
        except ValidationError:
            problems.append(
                _("“%(value)s” is not a valid e-mail address.") % {"value": values.email}
            )
    if values.line_user_id:
        try:
            LINE_USER_ID(values.line_user_id)
        except ValidationError:
            problems.append(
                _("“%(value)s” is not a LINE user id (“U” followed by 32 characters 0-9 and a-f).")
                % {"value": values.line_user_id}
            )
    if values.postal_address and not values.postal_name:
        problems.append(_("A postal address needs the name to print on the letter."))
    if values.language not in Language.values:
        problems.append(
            _("The language must be “ja” or “en”, not “%(value)s”.") % {"value": values.language}
        )
    return problems


def _apply(contact: Contact, values: ContactValues) -> None:
    contact.email = values.email
    contact.line_user_id = values.line_user_id
    contact.line_user_index = crypto.line_user_index(values.line_user_id)
    contact.postal_name = values.postal_name
    contact.postal_address = values.postal_address
    contact.language = values.language


def contacts_reencrypt(*, batch_size: int = 500) -> int:
    """Encrypt every contact again under the first key of ``HYOKA_CONTACT_KEYS`` and
    recompute the LINE index (after a key rotation). Returns how many rows changed.
    Each batch is one transaction; run again, it finds nothing left to do."""
    fields = ["email", "line_user_id", "postal_name", "postal_address"]
    changed = 0
    last = 0
    while True:
        with transaction.atomic():
            ids = list(
                Contact.objects.filter(pk__gt=last)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return changed
            last = ids[-1]
            stale = {
                row[0]
                for row in _raw_rows(ids)
                if not all(crypto.is_current(token) for token in row[1:])
            }
            contacts = list(Contact.objects.select_for_update().filter(pk__in=stale))
            for contact in contacts:
                contact.line_user_index = crypto.line_user_index(contact.line_user_id)
            # Saving writes every value encrypted under the first key.
            Contact.objects.bulk_update(contacts, [*fields, "line_user_index"])
            changed += len(contacts)


def _raw_rows(ids: list[int]) -> list[tuple[str, ...]]:
    """The stored tokens themselves (not decrypted by the field)."""
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(ids))
        cursor.execute(
            f"SELECT id, email, line_user_id, postal_name, postal_address FROM {table} "  # noqa: S608
            f"WHERE id IN ({placeholders})",
            ids,
        )
        return list(cursor.fetchall())
