"""Load a study's segments and KPIs from the ``kpis.toml`` file beside its ``study.toml``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.db import transaction

from surveys.loading import REFERENCE_STUDY, DefinitionError, read_toml
from surveys.models import Study
from surveys.selectors import instrument_current

from .models import KPI, Segment
from .services import ClauseData, KPIFields, kpi_save, segment_save


def kpis_path(study_path: Path = REFERENCE_STUDY) -> Path | None:
    name = read_toml(study_path).get("kpis")
    return study_path.parent / name if name else None


@transaction.atomic
def load_kpis(*, study: Study, path: Path) -> list[KPI]:
    """Create the file's segments and KPIs for ``study``, against its current instrument
    (through ``services``: the admin's rules, recorded with no account)."""
    data = read_toml(path)
    instrument = instrument_current(study)
    if instrument is None:
        raise DefinitionError(f"study {study.code} has no published instrument")
    questions = {q.code: q for q in instrument.questions.prefetch_related("choices")}
    segments: dict[str, Segment] = {}
    for seg in data.get("segments", []):
        clauses = []
        for c in seg["clauses"]:
            question = questions.get(c["question"])
            if question is None:
                raise DefinitionError(f"segment {seg['code']}: no question {c['question']!r}")
            wanted = set(c.get("choices", []))
            picked = [ch for ch in question.choices.all() if ch.code in wanted]
            if len(picked) != len(wanted):
                raise DefinitionError(f"segment {seg['code']}: unknown choices in {sorted(wanted)}")
            clauses.append(
                ClauseData(
                    question=question,
                    choices=picked,
                    tag=c.get("tag", ""),
                    negate=c.get("negate", False),
                )
            )
        segment = segment_save(
            fields={
                "study": study,
                "code": seg["code"],
                "name_ja": seg["name_ja"],
                "name_en": seg.get("name_en", ""),
            },
            clauses=clauses,
            user=None,
        )
        segments[segment.code] = segment

    def segment_named(code: str | None) -> Segment | None:
        if code is None:
            return None
        if code not in segments:
            raise DefinitionError(f"no segment {code!r}")
        return segments[code]

    kpis = []
    for order, k in enumerate(data.get("kpis", []), start=1):
        fields: KPIFields = {
            "study": study,
            "code": k["code"],
            "order": order * 10,
            "group": k.get("group", ""),
            "kind": k["kind"],
            "base": k["base"],
            "name_ja": k["name_ja"],
            "name_en": k.get("name_en", ""),
            "base_description_ja": k.get("base_description_ja", ""),
            "base_description_en": k.get("base_description_en", ""),
            "numerator": segment_named(k.get("numerator")),
            "base_segment": segment_named(k.get("base_segment")),
            "mean_question": questions[k["mean_question"]] if "mean_question" in k else None,
            "comparator": k.get("comparator", ""),
            "threshold": Decimal(k["threshold"]) if "threshold" in k else None,
            "rule": k.get("rule", "point"),
            "min_n": k.get("min_n", 30),
            "by_site": k.get("by_site", True),
        }
        if "confidence" in k:
            fields["confidence"] = Decimal(k["confidence"])
        kpis.append(kpi_save(fields=fields, user=None))
    return kpis
