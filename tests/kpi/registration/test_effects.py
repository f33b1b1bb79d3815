"""A registered study is judged by its registered specification; a deviation's effect on
each verdict is computed beside it and shown on the run's page."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse

from kpi.models import KPI, EvaluationRun, KPIResult, Registration
from kpi.registration import canonical, services
from kpi.scoring import execution
from surveys.selectors import instrument_current

from .conftest import PASSWORD, account


def registered_without_the_service(study, user) -> Registration:  # type: ignore[no-untyped-def]
    """The reference study (its responses are in) as if registered before them."""
    instrument = instrument_current(study)
    data = canonical.dumps(canonical.specification(study, instrument))
    return Registration.objects.create(
        study=study,
        instrument=instrument,
        canonical_json=data,
        sha256=canonical.sha256(data),
        signature=b"-",
        timestamp_token=b"-",
        timestamped_at=study.created_at,
        registered_by=user,
        statement="Fixed.",
    )


def test_the_run_judges_by_the_registration_and_shows_the_deviation_beside(reference_study, client):
    signer = account("signer", role="signer", sites=reference_study.sites.all())
    registered_without_the_service(reference_study, signer)
    kpi = KPI.objects.get(study=reference_study, code="continue")
    registered_threshold = kpi.threshold
    services.kpi_deviate(
        kpi=kpi, fields={"threshold": Decimal("99.5")}, user=signer, password=PASSWORD, reason="r"
    )

    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    run = execution.run_execute(run_id=run.pk)

    whole = KPIResult.objects.get(run=run, kpi_code="continue", site=None)
    assert whole.threshold == registered_threshold  # judged by the registration
    assert whole.verdict == "met"  # 227 of 229 against "at least 70 %"
    effect = next(e for e in run.deviation_effects if e["kpi"] == "continue" and e["site"] is None)
    assert effect["registered"]["verdict"] == "met"
    assert effect["registered"]["threshold"] == str(registered_threshold)
    assert effect["deviated"]["threshold"] == "99.5000"
    # 227 of 229 is 99.13 %: below "at least 99.5 %" on any rule.
    assert effect["deviated"]["verdict"] == "not_met" and effect["verdict_changes"]
    assert {e["kpi"] for e in run.deviation_effects} == {"continue"}

    admin_user = account("root", role=None)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    html = client.get(
        reverse("admin:kpi_evaluationrun_change", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Effect of the deviations on the verdicts" in html
    assert 'data-kpi="continue"' in html


def test_an_unregistered_study_has_no_deviation_effects(reference_study):
    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    run = execution.run_execute(run_id=run.pk)
    assert run.deviation_effects == []
    assert KPIResult.objects.filter(run=run).exists()
