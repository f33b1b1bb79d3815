"""Load a study and its instrument from the versioned TOML files a project ships.

The reference study lives in ``surveys/reference/tokyo-dx-2021/``; another study of the
same shape is another folder with the same two files.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from .errors import RuleViolation
from .models import Choice, Instrument, Question, Site, Study

REFERENCE_STUDY = Path(__file__).resolve().parent / "reference" / "tokyo-dx-2021" / "study.toml"
SUPPORTED_FORMAT = 1


class DefinitionError(RuleViolation):
    code = "definition_invalid"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DefinitionError(f"{path}: {exc}") from exc
    if data.get("format") != SUPPORTED_FORMAT:
        raise DefinitionError(f"{path}: format must be {SUPPORTED_FORMAT}")
    return data


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise DefinitionError(f"expected a date and time, got {value!r}")
    return value if timezone.is_aware(value) else timezone.make_aware(value)


@transaction.atomic
def load_study(path: Path = REFERENCE_STUDY) -> Study:
    """Create the study in ``path`` with its sites and its published instrument.

    Refuses a study code that already exists: loading is not an update (a published
    instrument is frozen; a change is a new version).
    """
    data = read_toml(path)
    if Study.objects.filter(code=data["code"]).exists():
        raise DefinitionError(f"study {data['code']!r} already exists")
    study = Study.objects.create(
        code=data["code"],
        name_ja=data["name_ja"],
        name_en=data.get("name_en", ""),
        description_ja=data.get("description_ja", ""),
        description_en=data.get("description_en", ""),
        issuing_body_ja=data.get("issuing_body_ja", ""),
        issuing_body_en=data.get("issuing_body_en", ""),
        period_start=data["period_start"],
        period_end=data["period_end"],
        default_language=data.get("default_language", "ja"),
        status=data.get("status", Study.Status.SETUP),
    )
    for site in data.get("sites", []):
        Site.objects.create(
            study=study,
            code=site["code"],
            name_ja=site["name_ja"],
            name_en=site.get("name_en", ""),
            period_start=site["period_start"],
            period_end=site["period_end"],
            survey_opens_at=_aware(site.get("survey_opens_at")),
            survey_closes_at=_aware(site.get("survey_closes_at")),
        )
    if "instrument" in data:
        load_instrument(study=study, path=path.parent / data["instrument"], publish=True)
    return study


@transaction.atomic
def load_instrument(*, study: Study, path: Path, publish: bool) -> Instrument:
    data = read_toml(path)
    instrument = Instrument.objects.create(
        study=study,
        version=data["version"],
        title_ja=data["title_ja"],
        title_en=data.get("title_en", ""),
        intro_ja=data.get("intro_ja", ""),
        intro_en=data.get("intro_en", ""),
        source=path.name,
    )
    scales = {name: scale["choices"] for name, scale in data.get("scales", {}).items()}
    questions: dict[str, Question] = {}
    conditions: list[tuple[Question, dict[str, Any]]] = []
    for order, q in enumerate(data["questions"], start=1):
        if q["type"] not in Question.Type.values:
            raise DefinitionError(f"question {q['code']}: unknown type {q['type']!r}")
        question = Question.objects.create(
            instrument=instrument,
            code=q["code"],
            order=order,
            type=q["type"],
            required=q.get("required", True),
            text_ja=q["text_ja"],
            text_en=q.get("text_en", ""),
            help_ja=q.get("help_ja", ""),
            help_en=q.get("help_en", ""),
            max_length=q.get("max_length"),
            min_value=q.get("min_value"),
            max_value=q.get("max_value"),
        )
        questions[question.code] = question
        choices = scales[q["scale"]] if "scale" in q else q.get("choices", [])
        if question.has_choices and not choices:
            raise DefinitionError(f"question {q['code']}: a {q['type']} question needs choices")
        if question.type == Question.Type.SCALE4 and len(choices) != 4:
            raise DefinitionError(f"question {q['code']}: a four-point scale needs 4 choices")
        Choice.objects.bulk_create(
            Choice(
                question=question,
                code=c["code"],
                order=i,
                label_ja=c["label_ja"],
                label_en=c.get("label_en", ""),
                score=c.get("score"),
                tags=c.get("tags", []),
                exclusive=c.get("exclusive", False),
            )
            for i, c in enumerate(choices, start=1)
        )
        if "condition" in q:
            conditions.append((question, q["condition"]))
    for question, condition in conditions:
        source = questions.get(condition["question"])
        if source is None or source.order >= question.order:
            raise DefinitionError(
                f"question {question.code}: its condition must name an earlier question"
            )
        options = list(source.choices.all())
        if "tag" in condition:
            matching = [c for c in options if condition["tag"] in c.tags]
        else:
            matching = [c for c in options if c.code in condition["choices"]]
        if not matching:
            raise DefinitionError(f"question {question.code}: its condition matches no choice")
        question.condition_question = source
        question.save(update_fields=["condition_question"])
        question.condition_choices.set(matching)
    if publish:
        from .services import instrument_publish

        instrument_publish(instrument=instrument)
    return instrument
