"""A real Celery worker, on Redis and PostgreSQL, scores the reference study end to end."""

from __future__ import annotations

import pytest

from config.celery import app
from kpi.definitions.loading import kpis_path, load_kpis
from kpi.models import EvaluationRun
from kpi.scoring import receivers
from kpi.scoring.services import run_request
from surveys.demo import generate_demo_responses
from surveys.loading import load_study
from tests.celery_worker import celery_worker, own_broker, wait_until


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_scores_the_reference_study(tmp_path, monkeypatch):
    # Build the study without the automatic runs its 229 submissions would ask for.
    monkeypatch.setattr(receivers, "run_request_debounced", lambda **kwargs: None)
    study = load_study()
    load_kpis(study=study, path=kpis_path())
    generate_demo_responses(study)

    with (
        own_broker(tmp_path / "redis"),
        celery_worker(app.conf.task_default_queue, tmp_path / "worker.log") as worker,
    ):
        run = run_request(study=study, trigger=EvaluationRun.Trigger.COMMAND)
        assert EvaluationRun.objects.get(pk=run.pk).status in {"queued", "running", "succeeded"}
        wait_until(
            lambda: EvaluationRun.objects.get(pk=run.pk).is_finished,
            90,
            "the worker finishes the run",
            worker.log,
        )
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert "kpi.score_run" in worker.log()
    results = {r.kpi_code: r for r in run.results.filter(site=None)}
    assert (results["response_rate"].numerator, results["response_rate"].denominator) == (229, 352)
    assert (results["understood"].numerator, results["understood"].denominator) == (155, 156)
    assert (results["reach_ratio"].numerator, results["reach_ratio"].denominator) == (156, 50)
    assert results["reach_ratio"].overlap == 39
