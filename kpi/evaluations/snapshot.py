"""The frozen content of an evaluation: everything its report shows, as plain JSON.

An evaluation copies this from its run when it is created; the report is rendered from
the copy alone, so later edits to KPIs, sites or responses cannot change a signed report.
``digest`` is the SHA-256 printed in the sign-off block: anyone holding the snapshot can
recompute it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from kpi.registration.models import Deviation, Registration
from kpi.scoring.counting import choice_distribution
from kpi.scoring.models import RESULT_FIELDS, EvaluationRun, KPIResult
from surveys.models import Instrument

FORMAT = 1


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _result(result: KPIResult) -> dict[str, Any]:
    data = {name: getattr(result, name) for name in RESULT_FIELDS}
    data["site"] = result.site.code if result.site else None
    data["threshold"] = format(result.threshold.normalize(), "f") if result.threshold else None
    data["confidence"] = format(result.confidence.normalize(), "f")
    return data


def _instrument(instrument: Instrument) -> dict[str, Any]:
    questions = instrument.questions.prefetch_related("choices", "condition_choices").order_by(
        "order"
    )
    return {
        "version": instrument.version,
        "title_ja": instrument.title_ja,
        "title_en": instrument.title_en,
        "questions": [
            {
                "code": q.code,
                "type": q.type,
                "required": q.required,
                "text_ja": q.text_ja,
                "text_en": q.text_en,
                "help_ja": q.help_ja,
                "help_en": q.help_en,
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
                        "label_ja": c.label_ja,
                        "label_en": c.label_en,
                        "score": c.score,
                        "tags": list(c.tags),
                        "exclusive": c.exclusive,
                    }
                    for c in q.choices.all()
                ],
            }
            for q in questions
        ],
    }


def _registration(registration: Registration) -> dict[str, Any]:
    """The registration as the evidence attaches it: the exact bytes hashed, signed and
    timestamped (the canonical JSON is UTF-8 text, kept as such; the DER files in base64)."""
    return {
        "sha256": registration.sha256,
        "timestamped_at": _iso(registration.timestamped_at),
        "canonical_json": bytes(registration.canonical_json).decode(),
        "timestamp_token": base64.b64encode(bytes(registration.timestamp_token)).decode(),
        "signature": base64.b64encode(bytes(registration.signature)).decode(),
    }


def _deviation(deviation: Deviation, run: EvaluationRun) -> dict[str, Any]:
    user = deviation.made_by
    return {
        "what": deviation.what,
        "old": deviation.old_value,
        "new": deviation.new_value,
        "reason": deviation.reason,
        "who": user.get_full_name() or user.get_username(),
        "when": _iso(deviation.made_at),
        # The run's deviation_effects cover the deviations made before it counted.
        "after_run": run.cutoff is not None and deviation.made_at > run.cutoff,
    }


def registration_data(run: EvaluationRun) -> dict[str, Any]:
    """The registration, the deviations recorded up to now (the evaluation's creation)
    and their effects as the run computed them: frozen with the snapshot, so the signed
    report is rendered from it alone (both tables are append-only, but the deviations
    grow after the evaluation)."""
    registration = Registration.objects.filter(study_id=run.study_id).first()
    if registration is None:
        return {"registration": None, "deviations": [], "deviation_effects": []}
    deviations = Deviation.objects.filter(registration=registration).select_related("made_by")
    return {
        "registration": _registration(registration),
        "deviations": [_deviation(d, run) for d in deviations.order_by("made_at", "pk")],
        "deviation_effects": run.deviation_effects or [],
    }


def build(run: EvaluationRun) -> dict[str, Any]:
    study = run.study
    assert run.cutoff is not None
    instrument = (
        study.instruments.exclude(status=Instrument.Status.DRAFT).order_by("-version").first()
    )
    distributions = choice_distribution(study_id=study.pk, cutoff=run.cutoff)
    return {
        "format": FORMAT,
        "study": {
            "code": study.code,
            "name_ja": study.name_ja,
            "name_en": study.name_en,
            "description_ja": study.description_ja,
            "description_en": study.description_en,
            # Added after format 1's first snapshots: a reader uses .get (absent: "").
            "issuing_body_ja": study.issuing_body_ja,
            "issuing_body_en": study.issuing_body_en,
            "period_start": _iso(study.period_start),
            "period_end": _iso(study.period_end),
            # Absent from snapshots made before it: read as 1 (no protection), so a report
            # signed then renders as it did (``small_cell_threshold``).
            "small_cell_threshold": study.small_cell_threshold,
        },
        "sites": [
            {
                "code": s.code,
                "name_ja": s.name_ja,
                "name_en": s.name_en,
                "period_start": _iso(s.period_start),
                "period_end": _iso(s.period_end),
                "survey_opens_at": _iso(s.survey_opens_at),
                "survey_closes_at": _iso(s.survey_closes_at),
            }
            for s in study.sites.order_by("code")
        ],
        "run": {
            "id": run.pk,
            "cutoff": _iso(run.cutoff),
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "responses_counted": run.responses_counted,
        },
        "definitions": run.definitions,
        "results": [
            _result(r)
            for r in run.results.select_related("site").order_by("order", "kpi_code", "site__code")
        ],
        "distributions": {
            "overall": distributions.pop(None),
            "by_site": dict(sorted(distributions.items())),
        },
        "instrument": _instrument(instrument) if instrument else None,
        **registration_data(run),
    }


def canonical(snapshot: dict[str, Any]) -> bytes:
    return json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def digest(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(snapshot)).hexdigest()


def small_cell_threshold(snapshot: dict[str, Any]) -> int:
    """The threshold the report's tables are protected at: 1 (none) for a snapshot made
    before studies had one."""
    return int(snapshot.get("study", {}).get("small_cell_threshold", 1))
