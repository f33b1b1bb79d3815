"""Writing a campaign: checked (its texts' placeholders, its start neither in the past nor
inside its quiet hours, its sites of its study), then saved with its sites in one
transaction. The admin's form shows the same problems (``campaign_problems``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext_lazy as _

from surveys.errors import RuleViolation
from surveys.models import Site

from ..models import Campaign, Delivery
from . import rules

PAST = _("The invitations cannot start in the past (%(when)s). Choose a later date and time.")
QUIET = _(
    "%(when)s is inside the hours without messages (%(start)s to %(end)s, Japan time). "
    "Choose a time outside them, or change those hours."
)
OTHER_STUDY = _("Choose only sites of the campaign's study.")
STOPPED = "cancelled: the campaign was stopped"


class CampaignInvalid(RuleViolation):
    code = "campaign_invalid"
    default_message = _("The campaign was not saved: correct the fields named below.")


def schedule_problems(
    *, starts_at: datetime, quiet: rules.QuietHours, now: datetime
) -> dict[str, str]:
    """A start in the past or inside the quiet hours, in words (field → message)."""
    local = starts_at.astimezone(rules.JAPAN)
    when = date_format(local, "DATETIME_FORMAT")
    problem = rules.schedule_problems(starts_at=starts_at, quiet=quiet, now=now)
    if problem.get("starts_at") == "past":
        return {"starts_at": str(PAST % {"when": when})}
    if problem.get("starts_at") == "quiet":
        values = {
            "when": when,
            "start": time_format(quiet.start, "H:i"),
            "end": time_format(quiet.end, "H:i"),
        }
        return {"starts_at": str(QUIET % values)}
    return {}


def start_problems(
    *,
    starts_at: datetime | None,
    quiet_from: time | None,
    quiet_until: time | None,
    previous: datetime | None,
    now: datetime,
) -> dict[str, str]:
    """``schedule_problems`` for a start that is new or changed (``previous`` is the saved
    one), or still to come: a running campaign's unchanged start is rightly in the past."""
    if starts_at is None or quiet_from is None or quiet_until is None:
        return {}  # the field's own error says so
    if previous == starts_at and starts_at < now:
        return {}
    quiet = rules.QuietHours(start=quiet_from, end=quiet_until)
    return schedule_problems(starts_at=starts_at, quiet=quiet, now=now)


def campaign_problems(
    *, campaign: Campaign, sites: Iterable[Site], now: datetime
) -> dict[str, list[str]]:
    """Everything wrong with ``campaign`` as it would be saved, by field. The start is
    checked against ``now`` only when it is new or changed (a running campaign's start is
    in the past, rightly)."""
    problems: dict[str, list[str]] = {}
    try:
        campaign.full_clean(validate_unique=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            problems.setdefault(name, []).extend(messages)
    previous = (
        Campaign.objects.filter(pk=campaign.pk).values_list("starts_at", flat=True).first()
        if campaign.pk
        else None
    )
    for name, message in start_problems(
        starts_at=campaign.starts_at,
        quiet_from=campaign.quiet_from,
        quiet_until=campaign.quiet_until,
        previous=previous,
        now=now,
    ).items():
        problems.setdefault(name, []).append(message)
    if any(site.study_id != campaign.study_id for site in sites):
        problems.setdefault("sites", []).append(str(OTHER_STUDY))
    return problems


def campaign_save(*, campaign: Campaign, sites: Iterable[Site], now: datetime) -> Campaign:
    """Check and save ``campaign`` with its ``sites`` (none: every site of the study);
    ``CampaignInvalid`` with the problems by field, nothing saved."""
    sites = list(sites)
    problems = campaign_problems(campaign=campaign, sites=sites, now=now)
    if problems:
        raise CampaignInvalid(errors=problems)
    with transaction.atomic():
        campaign.save()
        campaign.sites.set(sites)
        if not campaign.active:  # "messages are sent only while this is ticked"
            campaign_deliveries_cancel(campaign=campaign, now=now)
    return campaign


def campaign_deliveries_cancel(*, campaign: Campaign, now: datetime) -> int:
    """Cancel what the campaign has queued (messages not yet sent, letters not yet
    printed); those steps are due again if the campaign is started again."""
    return Delivery.objects.filter(campaign=campaign, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.CANCELLED, finished_at=now, last_error=STOPPED
    )
