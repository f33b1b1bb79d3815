"""Synthetic responses for the reference study, generated deterministically.

The ``[demo]`` table of a study file gives the participants and respondents per site, the
channel groups and the answer counts per choice; this module turns them into participants
and submitted responses (through the same service the questionnaire uses), so that the
demo reproduces the published counts exactly and every answer passes validation.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import transaction

from .answers import InstrumentForm
from .loading import REFERENCE_STUDY, DefinitionError, _aware, read_toml
from .models import Participant, Study
from .selectors import instrument_current
from .services import ImportedResponse, Invitation, participant_create, responses_import

GROUPS = ("online_only", "both", "municipal_only", "neither")


def _expand(counts: dict[str, int], rng: random.Random) -> list[str]:
    """``{"a": 2, "b": 1}`` as a shuffled list of codes, ``["b", "a", "a"]``."""
    codes = [code for code, n in counts.items() for _ in range(n)]
    rng.shuffle(codes)
    return codes


def _channels(group: str, form: InstrumentForm, rng: random.Random) -> list[str]:
    """A plausible, varied set of channel choices for a respondent in ``group``."""
    choices = list(form.choices["channels"].values())
    online = [c.code for c in choices if "online" in c.tags]
    municipal = [c.code for c in choices if "municipal" in c.tags]
    other = [c.code for c in choices if not c.tags and not c.exclusive]
    none = [c.code for c in choices if c.exclusive]

    def some(pool: Sequence[str], at_least: int) -> list[str]:
        return rng.sample(pool, rng.randint(at_least, len(pool)))

    picked: list[str] = []
    if group in ("online_only", "both"):
        picked += some(online, 1)
    if group in ("municipal_only", "both"):
        picked += some(municipal, 1)
    # The channels that do not count: articles, live streams, home visits, check-ups.
    if group != "neither" or rng.random() < 0.5:
        picked += some(other, 0)
    if not picked:
        picked = none
    return picked


@transaction.atomic
def generate_demo_responses(
    study: Study,
    path: Path = REFERENCE_STUDY,
    *,
    submitted_between: tuple[dt.datetime, dt.datetime] | None = None,
) -> dict[str, list[Invitation]]:
    """Create the demo participants of every site and submit the demo responses.

    The submissions are spread over the file's ``submitted_between``, or over the one
    given (the demo dates its simulated fieldwork after the specification's registration:
    kpi/management/commands/demo.py); the same seed picks the same answers either way.
    Returns the invitations of participants who have not responded, per site code.
    """
    demo: dict[str, Any] = read_toml(path)["demo"]
    rng = random.Random(demo["seed"])  # noqa: S311 -- reproducible demo data, not secrets
    instrument = instrument_current(study)
    assert instrument is not None
    form = InstrumentForm.load(instrument)
    sites = {s.code: s for s in study.sites.all()}

    respondents: list[Participant] = []
    pending: dict[str, list[Invitation]] = {}
    for code, total in demo["participants"].items():
        invitations = [
            participant_create(site=sites[code], reference=f"{code[:3].upper()}-{i:04d}")
            for i in range(1, total + 1)
        ]
        chosen = set(rng.sample(range(total), demo["respondents"][code]))
        respondents += [inv.participant for i, inv in enumerate(invitations) if i in chosen]
        pending[code] = [inv for i, inv in enumerate(invitations) if i not in chosen]
    rng.shuffle(respondents)

    groups = _expand(demo["channel_groups"], rng)
    if len(groups) != len(respondents):
        raise DefinitionError("channel groups must add up to the respondents")
    answers: list[dict[str, Any]] = [{"channels": _channels(group, form, rng)} for group in groups]
    for code, counts in demo["answers"].items():
        question = form.by_code[code]
        asked = [a for a in answers if form.is_shown(question, form.clean(a, complete=False)[0])]
        values = _expand(counts, rng)
        if len(values) != len(asked):
            raise DefinitionError(
                f"demo answers to {code!r} add up to {len(values)}, "
                f"but {len(asked)} respondents are asked it"
            )
        for a, value in zip(asked, values, strict=True):
            a[code] = value

    start, end = submitted_between or tuple(_aware(t) for t in demo["submitted_between"])
    assert start is not None and end is not None
    span = (end - start).total_seconds()
    responses_import(
        instrument=instrument,
        rows=[
            ImportedResponse(
                participant=participant,
                answers=raw,
                submitted_at=start + dt.timedelta(seconds=rng.uniform(0, span)),
            )
            for participant, raw in zip(respondents, answers, strict=True)
        ],
    )
    return pending
