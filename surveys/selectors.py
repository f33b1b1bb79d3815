"""Reads: querysets with the joins their callers need."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce

from .models import Instrument, Participant, Question, Response, Site, Study
from .submission.lookup import link_for_token


def participant_for_token(token: str) -> Participant | None:
    """The active participant a token belongs to, or ``None`` whatever the reason (unknown,
    replaced, withdrawn or malformed). The questionnaire and the API use the fuller
    ``surveys.submission.link_for_token`` (same statement: with their response and the
    current instrument)."""
    link = link_for_token(token)
    return link.participant if link is not None else None


def instrument_current(study: Study) -> Instrument | None:
    """The study's newest published instrument: the one new responses answer."""
    return study.instruments.filter(status=Instrument.Status.PUBLISHED).order_by("-version").first()


def response_for_participant(participant: Participant) -> Response | None:
    return Response.objects.filter(participant=participant).select_related("instrument").first()


# Who counts as invited, the base of the response rate: every active participant, and a
# withdrawn one who had already submitted (their answers stay). The KPI engine counts the
# same way, so the admin's rate and the scored response rate agree.
INVITED = Q(status=Participant.Status.ACTIVE) | Q(response__status=Response.Status.SUBMITTED)


def _invited_count(sites: QuerySet[Site] | None, outer: str) -> CombinedExpression:
    """``INVITED`` participants (of ``sites`` if given) per outer row (``outer``: the path
    from a participant to the outer row's pk), as two counts that each read one index: the active
    participants (``participant_active_by_site``) and the withdrawn ones who had submitted
    (``participant_withdrawn``, a few). ``INVITED`` as one filter (an OR across the
    participant and its response) joins every participant to its response: seconds at a
    million."""
    active = Participant.objects.filter(status=Participant.Status.ACTIVE)
    withdrawn = Participant.objects.filter(
        status=Participant.Status.WITHDRAWN, response__status=Response.Status.SUBMITTED
    )
    if sites is not None:
        active, withdrawn = active.filter(site__in=sites), withdrawn.filter(site__in=sites)
    return Coalesce(_count_subquery(active, outer), 0) + Coalesce(
        _count_subquery(withdrawn, outer), 0
    )


def site_response_counts(study: Study) -> QuerySet[Site]:
    """Sites of a study with invited, draft and submitted counts (the response-rate view):
    per site, counts over its indexes (``site`` on participants and responses), never a
    join of the participants to their responses."""
    return study.sites.annotate(
        participants_total=_invited_count(None, "site"),
        drafts=Coalesce(
            _count_subquery(Response.objects.filter(status=Response.Status.DRAFT), "site"), 0
        ),
        submitted=Coalesce(
            _count_subquery(Response.objects.filter(status=Response.Status.SUBMITTED), "site"), 0
        ),
    ).order_by("code")


def _count_subquery(queryset: QuerySet, outer: str) -> Subquery:
    """``COUNT(*)`` of ``queryset`` rows whose ``outer`` field matches the outer row's pk:
    a correlated subquery, so several counts on one row never multiply each other."""
    counted = (
        queryset.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        # COUNT(*), not COUNT(id): the id is not in the site indexes, and reading it
        # turns an index-only count into a visit of every row (bench/admin.py).
        .annotate(n=Count("*"))
        .values("n")
    )
    return Subquery(counted, output_field=IntegerField())


def studies_with_response_counts(*, sites: QuerySet[Site] | None = None) -> QuerySet[Study]:
    """Studies with their site count and their participant and submitted counts, on the
    same definitions as ``site_response_counts`` (``INVITED``; submitted responses):
    study-wide, or over ``sites`` only (a manager's own sites).

    Each total is the sum of the per-site counts of ``site_response_counts``: a count per
    site reads that site's entries of an index (index-only on PostgreSQL), where a count
    per study, joined through the sites, read a million participants' rows (bench/admin.py)."""
    in_scope = sites if sites is not None else Site.objects.all()
    per_site = (
        Site.objects.filter(study=OuterRef("pk"), pk__in=in_scope.values("pk"))
        .order_by()
        .annotate(
            invited=_invited_count(None, "site"),
            submitted=Coalesce(
                _count_subquery(Response.objects.filter(status=Response.Status.SUBMITTED), "site"),
                0,
            ),
        )
        .values("study")
    )

    def total(name: str) -> Coalesce:
        summed = per_site.annotate(total=Sum(name)).values("total")
        return Coalesce(Subquery(summed, output_field=IntegerField()), 0)

    return Study.objects.annotate(
        sites_total=Coalesce(_count_subquery(in_scope, "study"), 0),
        participants_total=total("invited"),
        submitted=total("submitted"),
    )


def instruments_with_counts(*, responses: QuerySet[Response] | None = None) -> QuerySet[Instrument]:
    """Instruments with their question count and their count of ``responses`` (all of
    them unless given, such as a manager's sites' responses)."""
    responses = responses if responses is not None else Response.objects.all()
    return Instrument.objects.select_related("study").annotate(
        questions_total=Coalesce(_count_subquery(Question.objects.all(), "instrument"), 0),
        responses_total=Coalesce(_count_subquery(responses, "instrument"), 0),
    )
