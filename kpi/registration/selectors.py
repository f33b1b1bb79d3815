"""Reads of registrations, and whether a study's fieldwork has opened."""

from __future__ import annotations

import datetime as dt

from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from surveys.models import Participant, Response, Site, Study

from .models import Deviation, Registration


def registration_for(study: Study) -> Registration | None:
    """The study's registration, if its specification is registered."""
    return (
        Registration.objects.select_related("study", "instrument", "registered_by")
        .filter(study_id=study.pk)
        .first()
    )


def deviations_of(registration: Registration) -> list[Deviation]:
    return list(registration.deviations.select_related("made_by").order_by("made_at", "pk"))


def fieldwork_opens_at(study: Study) -> dt.datetime | None:
    """The earliest time a site of the study opens its questionnaire."""
    return Site.objects.filter(study=study).aggregate(at=Min("survey_opens_at"))["at"]


def fieldwork_started(study: Study, *, at: dt.datetime | None = None) -> str | None:
    """Why the study's fieldwork counts as started by ``at`` (now), in words; ``None`` if
    it has not: no site open at or before then, nobody invited, no response."""
    at = at or timezone.now()
    opens = fieldwork_opens_at(study)
    if opens is not None and opens <= at:
        return _("Fieldwork opened on %(when)s.") % {
            "when": timezone.localtime(opens).strftime("%Y-%m-%d %H:%M %Z")
        }
    if Participant.objects.filter(site__study=study, invited_at__isnull=False).exists():
        return _("Participants have already been invited.")
    if Response.objects.filter(site__study=study).exists():
        return _("Responses have already been received.")
    return None
