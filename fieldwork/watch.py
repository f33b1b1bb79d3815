"""The fieldwork watch's figures: per site and per day (Japan time), who was invited,
reached, failed, opened their link, started and submitted; and the cumulative response
rate over those days.

Every figure comes from a few aggregate queries grouped by site and day (``TruncDate`` in
``settings.TIME_ZONE``), one per kind of event, whatever the number of rows: never a loop
over responses or deliveries. The caller passes the sites the user may see
(``surveys.scoping``); nothing of another site is ever read.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from surveys.models import LinkOpening, Participant, Response, Site, Study
from surveys.planner import index_scans

from .models import Delivery

#: A silence longer than this between two days with events parts the fieldwork into
#: rounds (a study answered years ago and reminded today, a second wave); the chart spans
#: the latest round only, its first day carrying what the earlier rounds had reached.
ROUND_GAP = dt.timedelta(days=60)

#: The figures of a day, in the table's order.
FIGURES = ("invited", "delivered", "failed", "opened", "started", "submitted")


def japan_time() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


@dataclass
class Figures:
    """A day's (or a total's) counts."""

    invited: int = 0
    delivered: int = 0
    failed: int = 0
    opened: int = 0
    started: int = 0
    submitted: int = 0

    def add(self, other: Figures) -> None:
        for name in FIGURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> list[int]:
        return [getattr(self, name) for name in FIGURES]


@dataclass
class SiteWatch:
    """One site: its days (oldest first), their total, and the base of its response rate
    (participants counted as invited, as the KPI engine counts them)."""

    site: Site
    #: True: "invited" counts invitations sent by fieldwork; False: the site's participants
    #: were invited some other way, and "invited" counts participants registered that day.
    invited_by_delivery: bool
    base: int
    days: dict[dt.date, Figures] = field(default_factory=dict)
    total: Figures = field(default_factory=Figures)

    def day_rows(self) -> list[tuple[dt.date, Figures]]:
        return sorted(self.days.items())

    def cumulative_rate(self, days: Iterable[dt.date]) -> list[Fraction | None]:
        """The share of the base that had submitted by the end of each of ``days``."""
        if not self.base:
            return [None for _ in days]
        submitted = 0
        rates: list[Fraction | None] = []
        by_day = sorted(self.days.items())
        i = 0
        for day in days:
            while i < len(by_day) and by_day[i][0] <= day:
                submitted += by_day[i][1].submitted
                i += 1
            rates.append(Fraction(submitted, self.base))
        return rates


@dataclass
class Watch:
    """The sites the user sees, with their days; the total over them."""

    sites: list[SiteWatch]
    total: Figures
    base: int
    #: Whether the sites are every site of the study (else the total is "your sites").
    whole_study: bool

    @property
    def first_day(self) -> dt.date | None:
        return min((d for s in self.sites for d in s.days), default=None)

    @property
    def last_day(self) -> dt.date | None:
        return max((d for s in self.sites for d in s.days), default=None)

    def days(self, *, until: dt.date | None = None) -> list[dt.date]:
        """Every day from the first event to the last (or ``until``, if later)."""
        first, last = self.first_day, self.last_day
        if first is None or last is None:
            return []
        if until is not None and until > last:
            last = until
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def chart_days(self, *, today: dt.date, ongoing: bool) -> list[dt.date]:
        """The days the response-rate chart spans: ``chart_span`` over the days with an
        event and the sites' opening days."""
        openings = [
            timezone.localtime(s.site.survey_opens_at, japan_time()).date()
            for s in self.sites
            if s.site.survey_opens_at is not None
        ]
        return chart_span(
            [d for s in self.sites for d in s.days],
            opening=min(openings, default=None),
            today=today,
            ongoing=ongoing,
        )

    def submitted_before(self, day: dt.date) -> int:
        """Responses submitted before ``day`` (at the sites the user sees)."""
        return sum(f.submitted for s in self.sites for d, f in s.days.items() if d < day)

    def cumulative_rate(self, days: Iterable[dt.date]) -> list[Fraction | None]:
        """The share of all the sites' base that had submitted by the end of each day."""
        days = list(days)
        if not self.base:
            return [None for _ in days]
        submitted = [0] * len(days)
        for s in self.sites:
            for i, rate in enumerate(s.cumulative_rate(days)):
                if rate is not None:
                    submitted[i] += int(rate * s.base)
        return [Fraction(n, self.base) for n in submitted]


def chart_span(
    event_days: Iterable[dt.date], *, opening: dt.date | None, today: dt.date, ongoing: bool
) -> list[dt.date]:
    """The days a response-rate chart spans, what a manager watching fieldwork needs:

    - from the start of the latest round of events (``ROUND_GAP``): the earlier of the
      site's opening and the first invitation, when they belong to it (an opening years
      before today's invitations does not), with the day before it, so that the line
      starts from the level before the round (0, or what earlier rounds had reached);
    - to the last event, or to ``today`` while the fieldwork is ``ongoing``.

    A study whose fieldwork lies inside its period is one round: the chart spans it all.
    Empty when nothing has happened."""
    days = set(event_days)
    if opening is not None and opening <= today:
        days.add(opening)
    if not days:
        return []
    ordered = sorted(days)
    start = ordered[0]
    for earlier, later in itertools.pairwise(ordered):
        if later - earlier > ROUND_GAP:
            start = later
    end = max(ordered[-1], today) if ongoing else ordered[-1]
    start -= dt.timedelta(days=1)
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def _per_site_day(queryset: QuerySet, *, site: str, moment: object, **counts: object) -> list:
    """``queryset`` grouped by site and Japanese day: one row per pair with ``counts``."""
    return list(
        queryset.order_by()
        .annotate(watch_site=F(site), watch_day=TruncDate(moment, tzinfo=japan_time()))  # type: ignore[arg-type]
        .values("watch_site", "watch_day")
        .annotate(**counts)  # type: ignore[arg-type]
        .values("watch_site", "watch_day", *counts)
    )


def study_watch(study: Study, sites: QuerySet[Site]) -> Watch:
    """The watch over ``sites`` (the user's sites; they are narrowed to ``study``'s).
    Ten queries (and three setting the planner on PostgreSQL), whatever the number of
    participants, messages and days."""
    visible = list(sites.filter(study=study).order_by("code"))
    ids = [s.pk for s in visible]
    whole = len(ids) == Site.objects.filter(study=study).count()

    deliveries = Delivery.objects.filter(participant__site_id__in=ids)
    by_delivery = set(
        deliveries.filter(kind=Delivery.Kind.INVITATION)
        .order_by()
        .values_list("participant__site_id", flat=True)
        .distinct()
    )
    sent = _per_site_day(
        deliveries.filter(status=Delivery.Status.SENT),
        site="participant__site_id",
        moment="sent_at",
        delivered=Count("pk"),
        invitations=Count("pk", filter=Q(kind=Delivery.Kind.INVITATION)),
    )
    failed = _per_site_day(
        deliveries.filter(status=Delivery.Status.FAILED),
        site="participant__site_id",
        moment=Coalesce("finished_at", "created_at"),
        failed=Count("pk"),
    )
    # surveys.selectors.INVITED as two groupings, each over one index: as one filter (an
    # OR across the participant and its response) it joins every participant to its
    # response.
    invited = Participant.objects.filter(site_id__in=ids)
    withdrawn = _per_site_day(
        invited.filter(
            status=Participant.Status.WITHDRAWN, response__status=Response.Status.SUBMITTED
        ),
        site="site_id",
        moment="created_at",
        registered=Count("pk"),
    )
    opened = _per_site_day(
        LinkOpening.objects.filter(participant__site_id__in=ids),
        site="participant__site_id",
        moment="opened_at",
        opened=Count("pk"),
    )
    # The three counts over every participant and response in scope: on PostgreSQL each
    # an index-only scan in (site, day) order of an index of migration surveys 0017, the
    # day read from the index rather than converted per row (surveys/planner.py).
    # COUNT(*), not COUNT(id): the id is not in those indexes.
    with index_scans():
        registered = withdrawn + _per_site_day(
            invited.filter(status=Participant.Status.ACTIVE),
            site="site_id",
            moment="created_at",
            registered=Count("*"),
        )
        started = _per_site_day(
            Response.objects.filter(site_id__in=ids),
            site="site_id",
            moment="started_at",
            started=Count("*"),
        )
        submitted = _per_site_day(
            Response.objects.filter(site_id__in=ids, status=Response.Status.SUBMITTED),
            site="site_id",
            moment="submitted_at",
            submitted=Count("*"),
        )

    days: dict[int, dict[dt.date, Figures]] = defaultdict(lambda: defaultdict(Figures))
    base: dict[int, int] = defaultdict(int)

    def put(rows: list, source: str, target: str) -> None:
        for row in rows:
            if row["watch_day"] is None:  # a moment not recorded: no day to count it on
                continue
            figures = days[row["watch_site"]][row["watch_day"]]
            setattr(figures, target, getattr(figures, target) + row[source])

    put(sent, "delivered", "delivered")
    put(failed, "failed", "failed")
    put(opened, "opened", "opened")
    put(started, "started", "started")
    put(submitted, "submitted", "submitted")
    for row in registered:
        base[row["watch_site"]] += row["registered"]
        if row["watch_site"] not in by_delivery:
            days[row["watch_site"]][row["watch_day"]].invited += row["registered"]
    for row in sent:
        if row["watch_site"] in by_delivery:
            days[row["watch_site"]][row["watch_day"]].invited += row["invitations"]

    watches = []
    total = Figures()
    for site in visible:
        site_days = {d: f for d, f in days.get(site.pk, {}).items() if any(f.values())}
        site_total = Figures()
        for figures in site_days.values():
            site_total.add(figures)
        total.add(site_total)
        watches.append(
            SiteWatch(
                site=site,
                invited_by_delivery=site.pk in by_delivery,
                base=base.get(site.pk, 0),
                days=site_days,
                total=site_total,
            )
        )
    return Watch(sites=watches, total=total, base=sum(w.base for w in watches), whole_study=whole)


def delivery_log(study: Study, sites: QuerySet[Site]) -> QuerySet[Delivery, tuple[Any, ...]]:
    """The deliveries of ``study`` at ``sites``, oldest first, with what the CSV needs
    (never the participant's contact details)."""
    return (
        Delivery.objects.filter(participant__site__in=sites.filter(study=study))
        .order_by("created_at", "pk")
        .values_list(
            "participant__reference",
            "participant__site__code",
            "channel",
            "kind",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "due_at",
            "sent_at",
            "finished_at",
        )
    )
