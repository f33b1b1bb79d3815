"""Fault: the broker (Redis) stops, or freezes, while participants submit.

Real processes: a private ``redis-server``, the web app (gunicorn, production mode), a
Celery worker and Celery beat with a short backstop interval, all on the test's
PostgreSQL database. With Redis stopped (connections refused) or frozen (SIGSTOP:
connections accepted, never answered), every participant's submission is accepted within
the publish bounds of config/settings.py (303) and stored exactly once: the scoring it
asks for cannot be sent, stays a queued run, and ``kpi.score_unscored`` (the backstop beat
runs) sends it once Redis is back (stopped: restarted empty, as after a crash; frozen:
resumed, with whatever it had half-received). The test waits until a scoring has counted
every submission, and every run has finished.
"""

from __future__ import annotations

import time

import httpx
import pytest

from kpi.definitions.loading import kpis_path, load_kpis
from kpi.models import EvaluationRun
from surveys.loading import load_study
from surveys.models import Answer, Response
from surveys.services import participant_create
from tests.celery_worker import celery_worker, wait_until
from tests.celery_worker import test_database_url as database_url
from tests.factories import complete_answers

from .processes import (
    HTTPS,
    celery_beat,
    open_form,
    post_form,
    production_environment,
    redis_server,
    web_server,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PARTICIPANTS = 6
TOOLS = ["line", "phone", "face_to_face", "email", "other_sns", "other"]
WAIT = 120  # seconds, for each bounded wait


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_submissions_while_redis_is_down_are_stored_once_and_scored_when_it_is_back(
    tmp_path, static_root, fault
):
    study = load_study()
    load_kpis(study=study, path=kpis_path())
    site = next(s for s in study.sites.order_by("code") if s.is_survey_open())
    tokens = [
        participant_create(site=site, reference=f"FAULT-{i}").token for i in range(PARTICIPANTS)
    ]
    before = Response.objects.filter(status=Response.Status.SUBMITTED).count()

    with redis_server(tmp_path / "redis") as broker:
        env = production_environment(
            database_url=database_url(),
            broker_url=broker.url(),
            static_root=static_root,
            # The backstop every 2 s, re-sending runs queued for more than 1 s (5 and 3
            # minutes in production).
            HYOKA_BACKSTOP_INTERVAL="2",
            HYOKA_BACKSTOP_STUCK_AFTER="1",
        )
        worker_env = {
            "CELERY_BROKER_URL": broker.url(),
            "HYOKA_BACKSTOP_STUCK_AFTER": "1",
        }
        with (
            web_server(env, tmp_path / "web.log") as web,
            celery_worker("celery", tmp_path / "worker.log", extra_env=worker_env) as worker,
            celery_beat(env, tmp_path),
        ):
            forms = [open_form(web, token) for token in tokens]
            if fault == "stopped":
                broker.stop()
            else:
                broker.freeze()

            durations = []
            for i, form in enumerate(forms):
                started = time.monotonic()
                answer = post_form(web, form, "submit", complete_answers(tool=TOOLS[i]))
                durations.append(time.monotonic() - started)
                assert answer.status_code == 303, (answer.status_code, web.log()[-3000:])
                thanks = httpx.get(form.url, headers=HTTPS, timeout=30)
                assert thanks.status_code == 200
                assert "ご回答ありがとうございました" in thanks.text  # the thank-you page

            # Every submission stored exactly once; none scored yet.
            submitted = Response.objects.filter(
                participant__site=site, participant__reference__startswith="FAULT-"
            )
            assert submitted.count() == PARTICIPANTS
            assert all(r.status == Response.Status.SUBMITTED for r in submitted)
            assert Answer.objects.filter(response__in=submitted).count() == PARTICIPANTS * 7
            assert not EvaluationRun.objects.filter(study=study, status="succeeded").exists()
            # The scoring they asked for: queued, never sent.
            stranded = set(
                EvaluationRun.objects.filter(study=study, status="queued").values_list(
                    "pk", flat=True
                )
            )
            assert stranded
            health = httpx.get(f"{web.url}/healthz", headers=HTTPS, timeout=30)
            assert (health.status_code, health.json()["checks"]["broker"]) == (200, "down")

            if fault == "stopped":
                broker.start()  # the same port, empty: lost messages are not coming back
            else:
                broker.thaw()
            restarted = time.monotonic()

            def scored_everything() -> bool:
                runs = EvaluationRun.objects.filter(study=study)
                return (
                    not runs.exclude(status="succeeded").exists()
                    and runs.filter(responses_counted=before + PARTICIPANTS).exists()
                )

            wait_until(scored_everything, WAIT, "a run counts every submission", worker.log)
            caught_up = time.monotonic() - restarted

    # The stranded runs were sent by the backstop and succeeded; nothing else was needed.
    assert stranded <= set(
        EvaluationRun.objects.filter(study=study, status="succeeded").values_list("pk", flat=True)
    )
    assert "kpi.score_unscored" in worker.log()

    assert submitted.count() == PARTICIPANTS
    assert Answer.objects.filter(response__in=submitted).count() == PARTICIPANTS * 7
    run = EvaluationRun.objects.filter(study=study, status="succeeded").latest("finished_at")
    response_rate = run.results.get(kpi_code="response_rate", site=None)
    assert response_rate.numerator == before + PARTICIPANTS
    print(
        f"submissions with Redis {fault}: {len(durations)} accepted, slowest "
        f"{max(durations):.2f} s, median {sorted(durations)[len(durations) // 2]:.2f} s; "
        f"all scored {caught_up:.1f} s after Redis came back"
    )
