"""A new study made by copying an existing one: its set-up, never its people.

Copied: the study's descriptions, language and retention; its sites (codes and names,
with the new period and no questionnaire window yet); its latest instrument (the
published one, else the newest) as a draft version 1 of the new study, to review and
publish; and, through the ``study_copied`` signal, what other apps keep of it (``kpi``:
segments and KPIs). Not copied: participants, responses, contacts, campaigns, runs,
evaluations, files.

Who may copy: a manager (or signer) on every site of the source study, since the copy
carries every site's set-up. The copying user gets the same role on each new site, so
that they can see and finish the study they made; a superuser needs no role.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from . import scoping
from .errors import RuleViolation
from .history import Reason, save_with_reason
from .models import Instrument, Membership, Site, Study
from .services import instrument_copy
from .signals import study_copied


class CopyRefused(RuleViolation):
    code = "copy_refused"


def may_copy(user: Any, study: Study) -> bool:
    """Manager or signer on every site of ``study`` (a superuser: any study)."""
    if scoping.sees_everything(user):
        return True
    sites = study.sites.values("pk")
    if not sites.exists():
        return False
    mine = scoping.sites(user, study.sites.all(), at_least=Membership.Role.MANAGER)
    return mine.count() == study.sites.count()


def source_instrument(study: Study) -> Instrument | None:
    """The instrument a copy starts from: the newest published one, else the newest."""
    instruments = study.instruments.order_by("-version")
    return instruments.filter(status=Instrument.Status.PUBLISHED).first() or instruments.first()


@transaction.atomic
def study_copy(
    *,
    source: Study,
    user: Any,
    code: str,
    name_ja: str,
    name_en: str,
    period_start: dt.date,
    period_end: dt.date,
) -> Study:
    if not may_copy(user, source):
        raise CopyRefused(
            _(
                "Only a manager of every site of “%(study)s” can copy it: the copy carries "
                "every site's set-up."
            )
            % {"study": source.name}
        )
    errors = {}
    if Study.objects.filter(code=code).exists():
        errors["code"] = _("A study with this code exists already.")
    if period_end < period_start:
        errors["period_end"] = _("The period cannot end before it starts.")
    if errors:
        raise RuleViolation(_("The copy was not made."), errors=errors)
    copy = Study.objects.create(
        code=code,
        name_ja=name_ja,
        name_en=name_en,
        description_ja=source.description_ja,
        description_en=source.description_en,
        issuing_body_ja=source.issuing_body_ja,
        issuing_body_en=source.issuing_body_en,
        period_start=period_start,
        period_end=period_end,
        default_language=source.default_language,
        retention_months=source.retention_months,
        status=Study.Status.SETUP,
    )
    roles = (
        {}
        if scoping.sees_everything(user)
        else dict(
            Membership.objects.filter(user_id=user.pk, site__study=source).values_list(
                "site__code", "role"
            )
        )
    )
    for site in source.sites.order_by("code"):
        new_site = Site.objects.create(
            study=copy,
            code=site.code,
            name_ja=site.name_ja,
            name_en=site.name_en,
            period_start=period_start,
            period_end=period_end,
        )
        if site.code in roles:
            membership = Membership(user=user, site=new_site, role=roles[site.code])
            save_with_reason(membership, Reason.STUDY_COPIED.value)
    instrument = source_instrument(source)
    new_instrument = (
        instrument_copy(instrument=instrument, study=copy, version=1) if instrument else None
    )
    study_copied.send(sender=Study, source=source, copy=copy, instrument=new_instrument, user=user)
    return copy
