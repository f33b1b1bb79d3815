"""A KPI's figures on the latest data before it is saved: the admin's "Preview".

Scored by ``execution.score_definitions``, the function a run scores with, over the
responses submitted until now at the sites the caller may read; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from kpi.definitions.frozen import KPIDef
from surveys import scoping
from surveys.models import Site, Study

from .execution import score_definitions
from .models import KPIResult


@dataclass(frozen=True)
class Preview:
    """``overall``: over every site the caller may read (the whole study when that is all
    of its sites); then one result per site, when the KPI is broken down by site."""

    overall: KPIResult
    by_site: list[tuple[Site, KPIResult]]
    whole_study: bool
    sites_counted: int
    sites_in_study: int


def kpi_preview(*, definition: KPIDef, study: Study, user: scoping.User) -> Preview | None:
    """``definition`` scored now over ``user``'s sites of ``study``; None when they may
    read none of its sites."""
    all_sites = list(study.sites.order_by("code"))
    mine = {s.pk for s in scoping.sites(user, study.sites.all())}
    sites = [s for s in all_sites if s.pk in mine]
    if not sites:
        return None
    scored = score_definitions(
        study_id=study.pk,
        definitions=[definition],
        site_ids=[s.pk for s in sites],
        cutoff=timezone.now(),
    )
    overall, *per_site = scored.results
    by_id = {s.pk: s for s in sites}
    return Preview(
        overall=overall,
        by_site=[(by_id[r.site_id], r) for r in per_site if r.site_id is not None],
        whole_study=len(sites) == len(all_sites),
        sites_counted=len(sites),
        sites_in_study=len(all_sites),
    )
