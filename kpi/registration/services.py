"""Writes of registrations and deviations.

``register`` fixes a study's KPI specification before its fieldwork: the canonical JSON
(``canonical``), its SHA-256, a detached CMS signature by the programme's certificate
(``kpi.evaluations.signing._signer``) and an RFC 3161 timestamp over the SHA-256 from the
configured authority (``kpi.evidence.timestamps.stamp``). The authority's time, not the
server's clock, must precede the study's fieldwork. ``kpi_deviate`` is the one way to
change a registered KPI afterwards, ``segment_deviate`` a registered segment's conditions
(``lock`` explains how they pass the triggers).
All take what sign-off takes: the signer's authority and the password, again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any, cast

from asn1crypto import cms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import DecimalField
from django.utils.translation import gettext as _
from pyhanko.sign.timestamps import TimestampRequestError

from kpi.definitions import services as definitions
from kpi.definitions.frozen import ClauseDef, kpi_def, segment_def
from kpi.definitions.models import KPI, Segment
from kpi.evaluations.signing import SigningNotConfigured, _signer
from kpi.evidence.timestamps import TimestampingNotConfigured, stamp
from surveys import scoping
from surveys.bidi import strip_bidi_controls
from surveys.models import Membership, Site, Study
from surveys.selectors import instrument_current

from . import canonical, lock
from .errors import DeviationRefused, RegistrationRefused
from .models import Deviation, Registration
from .selectors import fieldwork_opens_at, fieldwork_started, registration_for

User = AbstractBaseUser | AnonymousUser

REGISTER = "kpi.add_registration"
DEVIATE = "kpi.add_deviation"


def may_register(user: User, study: Study, *, permission: str = REGISTER) -> bool:
    """Whether ``user`` may register the study's specification (or record a deviation,
    ``permission=DEVIATE``): as for sign-off (``kpi.evaluations.services.may_sign``), the
    permission, the signer role on a site of the study and a role on every site of it."""
    if not user.is_authenticated or not user.has_perm(permission):  # type: ignore[attr-defined]
        return False
    if scoping.sees_everything(user):
        return True
    sites = Site.objects.filter(study_id=study.pk)
    return (
        scoping.sites(user, sites, at_least=Membership.Role.SIGNER).exists()
        and scoping.sites(user, sites).count() == sites.count()
    )


def _check_act(user: AbstractBaseUser, password: str, text: str, field: str) -> str:
    """The password again and the act's words (without direction controls: printed)."""
    if not password or not user.check_password(password):
        message = _("The password is not correct.")
        raise RegistrationRefused(message, errors={"password": message})
    text = strip_bidi_controls(text).strip()
    if not text:
        message = (
            _("Write the statement you register the specification with.")
            if field == "statement"
            else _("Give the reason for the deviation.")
        )
        raise RegistrationRefused(message, errors={field: message})
    return text


def _gen_time(token: cms.ContentInfo) -> Any:
    return token["content"]["encap_content_info"]["content"].parsed["gen_time"].native


def register(
    *, study: Study, user: AbstractBaseUser, password: str, statement: str
) -> Registration:
    """Register the study's KPI specification: refused without the signer's authority,
    with a wrong password or no statement, once registered, and once fieldwork started."""
    if not may_register(user, study):
        raise RegistrationRefused(
            _("Registering a KPI specification takes the signer role in the study.")
        )
    statement = _check_act(user, password, statement, "statement")
    if registration_for(study) is not None:
        raise RegistrationRefused(
            _(
                "This study's KPI specification is already registered; "
                "it changes only by a deviation."
            )
        )
    started = fieldwork_started(study)
    if started:
        raise RegistrationRefused(
            _("The specification must be registered before fieldwork: %(why)s") % {"why": started}
        )
    instrument = instrument_current(study)
    if instrument is None:
        raise RegistrationRefused(_("Publish the questionnaire before registering the KPIs."))
    data = canonical.dumps(canonical.specification(study, instrument))
    digest = hashlib.sha256(data).digest()
    # Signed and timestamped outside the transaction (the authority is a network call);
    # the transaction then checks that nothing it signed has changed meanwhile.
    try:
        signature = asyncio.run(_signer().async_sign_general_data(data, "sha256")).dump()
        token = stamp(digest)
    except (SigningNotConfigured, TimestampingNotConfigured, TimestampRequestError) as exc:
        raise RegistrationRefused(
            _(
                "The specification could not be signed and timestamped (%(error)s); "
                "nothing was registered."
            )
            % {"error": exc}
        ) from exc
    timestamped_at = _gen_time(token)
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)
        opens = fieldwork_opens_at(study)
        if opens is not None and opens <= timestamped_at:
            raise RegistrationRefused(
                _(
                    "The time-stamping authority dates the registration at or after "
                    "fieldwork opened."
                )
            )
        if registration_for(study) is not None or fieldwork_started(study):
            raise RegistrationRefused(
                _("The study changed while it was being registered; try again.")
            )
        if canonical.dumps(canonical.specification(study, instrument)) != data:
            raise RegistrationRefused(
                _("The KPIs changed while they were being registered; try again.")
            )
        return Registration.objects.create(
            study=study,
            instrument=instrument,
            canonical_json=data,
            sha256=digest.hex(),
            signature=signature,
            timestamp_token=token.dump(),
            timestamped_at=timestamped_at,
            registered_by_id=user.pk,
            statement=statement,
        )


def _as_stored(fields: definitions.KPIFields) -> definitions.KPIFields:
    """Decimals at the places the database keeps (55.5 is stored, and registered, as
    55.5000): the deviation records the new value as the specification will have it."""
    out = dict(fields)
    for name, value in fields.items():
        field = KPI._meta.get_field(name)
        if isinstance(value, Decimal) and isinstance(field, DecimalField):
            out[name] = value.quantize(Decimal(1).scaleb(-(field.decimal_places or 0)))
    return cast(definitions.KPIFields, out)


def kpi_deviate(
    *,
    kpi: KPI,
    fields: definitions.KPIFields,
    user: AbstractBaseUser,
    password: str,
    reason: str,
) -> Deviation:
    """Change a registered KPI as a recorded deviation: the fields that change, their
    registered and new values (as the specification has them), the reason, who and when;
    then the change itself, in the same transaction."""
    registration = registration_for(kpi.study)
    if registration is None:
        raise DeviationRefused(_("This study's KPIs are not registered: change them directly."))
    if not may_register(user, kpi.study, permission=DEVIATE):
        raise DeviationRefused(_("Recording a deviation takes the signer role in the study."))
    try:
        reason = _check_act(user, password, reason, "reason")
    except RegistrationRefused as exc:
        raise DeviationRefused(exc.message, errors=exc.errors) from exc
    if "study" in fields and fields["study"].pk != kpi.study_id:
        raise DeviationRefused(_("A KPI stays in its study."))
    fields = _as_stored(fields)
    changed = KPI.objects.get(pk=kpi.pk)
    for name, value in fields.items():
        setattr(changed, name, value)
    old = canonical.kpi_json(kpi_def(kpi).to_json())
    new = canonical.kpi_json(kpi_def(changed).to_json())
    keys = sorted(k for k in old if old[k] != new[k])
    if not keys:
        raise DeviationRefused(_("Nothing would change: no deviation to record."))
    with transaction.atomic():
        deviation = Deviation.objects.create(
            registration=registration,
            what=f"kpi {kpi.code}: {', '.join(keys)}",
            old_value={k: old[k] for k in keys},
            new_value={k: new[k] for k in keys},
            reason=reason,
            made_by_id=user.pk,
        )
        with lock.deviation_window(deviation, "kpi_kpi", kpi.pk):
            definitions.kpi_save(kpi=kpi, fields=fields, user=user)
    return deviation


def segment_deviate(
    *,
    segment: Segment,
    clauses: Sequence[definitions.ClauseData],
    user: AbstractBaseUser,
    password: str,
    reason: str,
) -> Deviation:
    """Change a registered segment's conditions as a recorded deviation (its registered
    and new conditions, as the specification writes them), then the change itself."""
    registration = registration_for(segment.study)
    if registration is None:
        raise DeviationRefused(_("This study's KPIs are not registered: change them directly."))
    if not may_register(user, segment.study, permission=DEVIATE):
        raise DeviationRefused(_("Recording a deviation takes the signer role in the study."))
    try:
        reason = _check_act(user, password, reason, "reason")
    except RegistrationRefused as exc:
        raise DeviationRefused(exc.message, errors=exc.errors) from exc
    old = canonical.segment_json(asdict(segment_def(segment)))
    wanted = [
        asdict(
            ClauseDef(
                question=data.question.code if data.question else "",
                choices=tuple(sorted(c.code for c in data.choices)),
                tag=data.tag,
                negate=data.negate,
            )
        )
        for data in clauses
    ]
    new = canonical.segment_json({"code": segment.code, "clauses": wanted})
    assert old is not None and new is not None
    if old == new:
        raise DeviationRefused(_("Nothing would change: no deviation to record."))
    with transaction.atomic():
        deviation = Deviation.objects.create(
            registration=registration,
            what=f"segment {segment.code}: clauses",
            old_value={"clauses": old["clauses"]},
            new_value={"clauses": new["clauses"]},
            reason=reason,
            made_by_id=user.pk,
        )
        with lock.deviation_window(deviation, "kpi_segment", segment.pk):
            definitions.segment_clauses_save(segment=segment, clauses=clauses, user=user)
    return deviation
