"""``manage.py demo`` registers the reference specification before its simulated fieldwork:
the authority's time precedes every site's opening and every submission, and the
reference figures are those of the 2021 pilot all the same."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Min

from kpi.models import KPIResult, Registration
from kpi.registration import canonical
from surveys.models import Response, Site


@pytest.mark.django_db(transaction=True)  # the command commits, then scores and signs
def test_the_demo_registers_before_its_fieldwork_and_keeps_the_reference_figures(tsa):
    out = io.StringIO()
    call_command("demo", stdout=out)

    registration = Registration.objects.get()
    opened = Site.objects.filter(survey_opens_at__isnull=False)
    assert sorted(opened.values_list("code", flat=True)) == ["itabashi", "setagaya"]
    first_opening = opened.aggregate(at=Min("survey_opens_at"))["at"]
    first_submission = Response.objects.aggregate(at=Min("started_at"))["at"]
    assert registration.timestamped_at < first_opening <= first_submission
    assert len(tsa.requests_served) >= 1
    stored = bytes(registration.canonical_json)
    assert stored == canonical.dumps(
        canonical.specification(registration.study, registration.instrument)
    )
    assert f"SHA-256 {registration.sha256}" in out.getvalue()

    results = KPIResult.objects.filter(site=None, run=registration.study.runs.latest("pk"))
    whole = {r.kpi_code: (r.numerator, r.denominator) for r in results}
    assert whole["response_rate"] == (229, 352)
    assert whole["channels_online_only"] == (117, 229)
    assert whole["continue"] == (227, 229)
