"""A registered study is scored by its registered specification; the deviations recorded
since are scored beside it, and their effect on each verdict kept with the run.

``registered_definitions`` reads the KPIs back from the registration's canonical JSON
(with today's ids, by code: a registered KPI is never removed). ``changed_definitions``
are today's KPIs that differ from the registered ones, compared as the specification
writes them. ``effects`` pairs each registered result with the result under the
deviations: plain data, stored on the run as ``deviation_effects``.
"""

from __future__ import annotations

import json
from typing import Any

from kpi.definitions.frozen import KPIDef
from kpi.definitions.models import KPI
from kpi.scoring.models import KPIResult

from .canonical import kpi_json
from .models import Registration


def registered_definitions(study_id: int) -> list[KPIDef] | None:
    """The study's registered active KPIs, in display order; None if not registered."""
    registration = Registration.objects.filter(study_id=study_id).only("canonical_json").first()
    if registration is None:
        return None
    spec = json.loads(bytes(registration.canonical_json))
    ids = dict(KPI.objects.filter(study_id=study_id).values_list("code", "pk"))
    return [KPIDef.from_json({**k, "id": ids.get(k["code"], 0)}) for k in spec["kpis"]]


def changed_definitions(registered: list[KPIDef], current: list[KPIDef]) -> list[KPIDef]:
    """Today's KPIs that a deviation changed (or made active) since the registration."""
    before = {d.code: kpi_json(d.to_json()) for d in registered}
    return [d for d in current if before.get(d.code) != kpi_json(d.to_json())]


def _figures(result: KPIResult) -> dict[str, Any]:
    return {
        "verdict": result.verdict,
        "value": result.value,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "comparator": result.comparator,
        "threshold": None if result.threshold is None else str(result.threshold),
        "rule": result.rule,
        "confidence": str(result.confidence),
        "min_n": result.min_n,
    }


def effects(
    registered: list[KPIResult],
    deviated: list[KPIResult],
    dropped: set[str],
    site_codes: dict[int, str],
) -> list[dict[str, Any]]:
    """For each KPI and scope a deviation touched: the registered figures and verdict, and
    those under the deviations (``None``: the deviation made the KPI inactive)."""
    after = {(r.kpi_code, r.site_id): r for r in deviated}
    out = []
    for result in registered:
        key = (result.kpi_code, result.site_id)
        if key not in after and result.kpi_code not in dropped:
            continue
        other = after.get(key)
        out.append(
            {
                "kpi": result.kpi_code,
                "site": site_codes.get(result.site_id) if result.site_id else None,
                "registered": _figures(result),
                "deviated": _figures(other) if other is not None else None,
                "verdict_changes": other is None or other.verdict != result.verdict,
            }
        )
    return out
