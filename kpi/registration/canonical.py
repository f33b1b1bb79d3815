"""A study's KPI specification as canonical JSON: the bytes a registration signs.

Everything that decides a verdict, and nothing else that changes:

- ``format``: ``"hyoka-kpi-specification/1"``;
- ``study``: the study's code;
- ``instrument``: the current questionnaire version: ``version`` and its ``questions``
  (``code``, ``order``, ``type``, ``required``, the display ``condition`` as
  ``{"question": code, "choices": [codes]}`` or null, and ``choices``: ``code``,
  ``order``, ``score``, ``tags``, ``exclusive``), the wording left out;
- ``segments``: every segment of the study, ``{"code", "clauses": [{"question",
  "choices", "tag", "negate"}]}`` (``kpi.definitions.frozen.segment_def``);
- ``kpis``: the active KPIs as a scoring run freezes them
  (``kpi.definitions.frozen.study_definitions``, ``KPIDef.to_json``) without their
  database ``id``: code, order, group, kind, names, base descriptions, base, numerator and
  base segments (with their clauses), mean_question, comparator, threshold and confidence
  (decimals as text, as stored), rule, min_n, by_site;
- ``computing_rules``: ``kpi.scoring.RULES_VERSION``.

Canonical form, for an auditor recomputing it: ``json.dumps(spec, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode("utf-8")``. Lists are ordered thus:
questions and choices by their ``order``; segments by ``code``; KPIs by ``order`` then
``code``; a segment's clauses by their own canonical JSON text; choice codes and tags
sorted. Its SHA-256 (lowercase hex) is the registration's hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from kpi.definitions.frozen import segment_def, study_definitions
from kpi.definitions.models import Segment
from kpi.scoring import RULES_VERSION
from surveys.models import Instrument, Study

FORMAT = "hyoka-kpi-specification/1"


def dumps(value: Any) -> bytes:
    """The canonical bytes of ``value``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def segment_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    clauses = [{**c, "choices": sorted(c["choices"])} for c in value["clauses"]]
    return {**value, "clauses": sorted(clauses, key=dumps)}


def _instrument(instrument: Instrument) -> dict[str, Any]:
    questions = instrument.questions.select_related("condition_question").prefetch_related(
        "choices", "condition_choices"
    )
    return {
        "version": instrument.version,
        "questions": [
            {
                "code": q.code,
                "order": q.order,
                "type": q.type,
                "required": q.required,
                "condition": (
                    {
                        "question": q.condition_question.code,
                        "choices": sorted(c.code for c in q.condition_choices.all()),
                    }
                    if q.condition_question
                    else None
                ),
                "choices": [
                    {
                        "code": c.code,
                        "order": c.order,
                        "score": c.score,
                        "tags": sorted(c.tags),
                        "exclusive": c.exclusive,
                    }
                    for c in sorted(q.choices.all(), key=lambda c: c.order)
                ],
            }
            for q in sorted(questions, key=lambda q: q.order)
        ],
    }


def kpi_json(data: dict[str, Any]) -> dict[str, Any]:
    """A frozen KPI (``KPIDef.to_json()``) as the specification has it."""
    out = {k: v for k, v in data.items() if k != "id"}
    out["numerator"] = segment_json(data["numerator"])
    out["base_segment"] = segment_json(data["base_segment"])
    return out


def specification(study: Study, instrument: Instrument) -> dict[str, Any]:
    segments = Segment.objects.filter(study=study).prefetch_related(
        "clauses__question", "clauses__choices"
    )
    return {
        "format": FORMAT,
        "study": study.code,
        "instrument": _instrument(instrument),
        "segments": sorted(
            (segment_json(asdict(segment_def(s))) for s in segments), key=lambda s: s["code"]
        ),
        "kpis": [kpi_json(k.to_json()) for k in study_definitions(study.pk)],
        "computing_rules": RULES_VERSION,
    }
