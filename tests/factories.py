"""factory_boy factories. Instruments default to the reference questionnaire, loaded from
the file the project ships, so tests answer the real questions."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from surveys import tokens
from surveys.loading import REFERENCE_STUDY, load_instrument, read_toml
from surveys.models import Instrument, Participant, Site, Study

REFERENCE_INSTRUMENT = REFERENCE_STUDY.parent / read_toml(REFERENCE_STUDY)["instrument"]


class StudyFactory(factory.django.DjangoModelFactory[Study]):
    class Meta:
        model = Study

    code = factory.Sequence(lambda n: f"study-{n}")
    name_ja = factory.Sequence(lambda n: f"調査{n}")
    name_en = factory.Sequence(lambda n: f"Study {n}")
    period_start = dt.date(2021, 4, 1)
    period_end = dt.date(2021, 12, 31)
    status = Study.Status.OPEN


class SiteFactory(factory.django.DjangoModelFactory[Site]):
    """A site whose questionnaire opened yesterday and has no closing date."""

    class Meta:
        model = Site

    study = factory.SubFactory(StudyFactory)
    code = factory.Sequence(lambda n: f"site-{n}")
    name_ja = factory.Sequence(lambda n: f"区{n}")
    name_en = factory.Sequence(lambda n: f"Ward {n}")
    period_start = dt.date(2021, 4, 1)
    period_end = dt.date(2021, 9, 30)
    survey_opens_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    survey_closes_at = None


def reference_instrument(study: Study) -> Instrument:
    """The reference questionnaire, published, for ``study``."""
    return load_instrument(study=study, path=REFERENCE_INSTRUMENT, publish=True)


class ParticipantFactory(factory.django.DjangoModelFactory[Participant]):
    """A participant; the plain token is on ``participant.token`` (only factories keep it)."""

    class Meta:
        model = Participant

    site = factory.SubFactory(SiteFactory)
    reference = factory.Sequence(lambda n: f"P-{n:05d}")
    token_hash = ""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        token, kwargs["token_hash"] = tokens.new_token()
        participant = super()._create(model_class, *args, **kwargs)
        participant.token = token
        return participant


def complete_answers(**overrides: object) -> dict[str, object]:
    """A valid, complete set of raw answers to the reference questionnaire."""
    answers: dict[str, object] = {
        "channels": ["anytime", "ward_phone"],
        "reassured": "agree",
        "continue": "somewhat_agree",
        "reuse": "agree",
        "understood": "fully",
        "tool": "line",
    }
    answers.update(overrides)
    return {k: v for k, v in answers.items() if v is not None}


def build_reference_study() -> Study:
    """The reference study with its KPIs and the 229 demo responses, not yet scored."""
    from kpi.definitions.loading import kpis_path, load_kpis
    from surveys.demo import generate_demo_responses
    from surveys.loading import load_study

    study = load_study()
    load_kpis(study=study, path=kpis_path())
    generate_demo_responses(study)
    return study
