"""Load a study's segments and KPIs from a ``kpis.toml`` file (the reference's sits beside
its ``study.toml``; ``manage.py load_kpis`` loads any).

All or nothing: every segment and KPI of the file is checked by the services (the admin's
rules); if any is refused, nothing is loaded and the error names every refused item.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from surveys.loading import REFERENCE_STUDY, DefinitionError, read_toml
from surveys.models import Question, Study
from surveys.selectors import instrument_current

from .models import KPI, Segment
from .services import ClauseData, KPIFields, User, kpi_save, segment_save


def kpis_path(study_path: Path = REFERENCE_STUDY) -> Path | None:
    name = read_toml(study_path).get("kpis")
    return study_path.parent / name if name else None


class ItemError(Exception):
    """One item of the file is refused (its message names the field)."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    return str(exc)


def load_kpis(*, study: Study, path: Path, user: User | None = None) -> list[KPI]:
    """Create the file's segments and KPIs for ``study``, against its current instrument,
    through ``services`` (recorded as made by ``user``; None: no account). Raises
    ``DefinitionError`` naming every refused item; then nothing is written."""
    data = read_toml(path)
    instrument = instrument_current(study)
    if instrument is None:
        raise DefinitionError(f"study {study.code} has no published instrument")
    questions = {q.code: q for q in instrument.questions.prefetch_related("choices")}
    errors: list[str] = []

    def each(kind: str, items: Any, load: Callable[[dict[str, Any], int], Any]) -> list[Any]:
        if not isinstance(items, list):
            errors.append(f"{kind}: expected a list of tables")
            return []
        loaded = []
        for number, item in enumerate(items, start=1):
            name = item.get("code", f"#{number}") if isinstance(item, dict) else f"#{number}"
            try:
                if not isinstance(item, dict):
                    raise ItemError("expected a table")
                with transaction.atomic():  # a refused item leaves the others' work usable
                    loaded.append(load(item, number))
            except (ItemError, ValidationError, KeyError, TypeError, ValueError) as exc:
                errors.append(f"{kind} {name}: {_describe(exc)}")
        return loaded

    segments: dict[str, Segment] = {}

    def load_segment(seg: dict[str, Any], _number: int) -> Segment:
        clauses = [_clause(c, questions) for c in seg["clauses"]]
        segment = segment_save(
            fields={
                "study": study,
                "code": seg["code"],
                "name_ja": seg["name_ja"],
                "name_en": seg.get("name_en", ""),
            },
            clauses=clauses,
            user=user,
        )
        segments[segment.code] = segment
        return segment

    def segment_named(code: str | None) -> Segment | None:
        if code is None:
            return None
        if code not in segments:
            raise ItemError(f"no segment {code!r} (in the file or loaded)")
        return segments[code]

    def load_kpi(k: dict[str, Any], order: int) -> KPI:
        mean = k.get("mean_question")
        if mean is not None and mean not in questions:
            raise ItemError(f"mean_question: no question {mean!r}")
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
            "mean_question": questions[mean] if mean is not None else None,
            "comparator": k.get("comparator", ""),
            "threshold": _decimal(k, "threshold"),
            "rule": k.get("rule", "point"),
            "min_n": k.get("min_n", 30),
            "by_site": k.get("by_site", True),
        }
        if "confidence" in k:
            fields["confidence"] = _decimal(k, "confidence")  # type: ignore[typeddict-item]
        return kpi_save(fields=fields, user=user)

    with transaction.atomic():
        each("segment", data.get("segments", []), load_segment)
        kpis = each("kpi", data.get("kpis", []), load_kpi)
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise DefinitionError(
            f"{path}: nothing was loaded; {len(errors)} item(s) refused:\n" + "\n".join(errors),
            errors={"items": errors},
        )
    return kpis


def _clause(c: dict[str, Any], questions: dict[str, Question]) -> ClauseData:
    question = questions.get(c["question"])
    if question is None:
        raise ItemError(f"no question {c['question']!r}")
    wanted = set(c.get("choices", []))
    picked = [ch for ch in question.choices.all() if ch.code in wanted]
    if len(picked) != len(wanted):
        unknown = sorted(wanted - {ch.code for ch in picked})
        raise ItemError(f"question {question.code!r} has no choice {', '.join(unknown)}")
    return ClauseData(
        question=question, choices=picked, tag=c.get("tag", ""), negate=c.get("negate", False)
    )


def _decimal(item: dict[str, Any], name: str) -> Decimal | None:
    if name not in item:
        return None
    try:
        value = Decimal(str(item[name]))
    except InvalidOperation:
        raise ItemError(f"{name}: {item[name]!r} is not a number") from None
    if not value.is_finite():
        raise ItemError(f"{name}: {item[name]!r} is not a number")
    return value
