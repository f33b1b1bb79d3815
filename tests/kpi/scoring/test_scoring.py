"""Scoring through the whole path: submissions → run → results."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from statsmodels.stats.proportion import proportion_confint

from kpi import tasks
from kpi.models import KPI, EvaluationRun, KPIResult
from kpi.scoring import execution, services
from surveys import services as survey_services
from surveys.models import Response
from tests.factories import ParticipantFactory, complete_answers


def score(study, trigger=EvaluationRun.Trigger.COMMAND) -> EvaluationRun:  # type: ignore[no-untyped-def]
    run = EvaluationRun.objects.create(study=study, trigger=trigger)
    return execution.run_execute(run_id=run.pk)


def overall(run: EvaluationRun) -> dict[str, KPIResult]:
    return {r.kpi_code: r for r in run.results.filter(site=None)}


# --- The reference case ------------------------------------------------------------------


def test_the_reference_case_is_reproduced(reference_study):
    run = score(reference_study)
    assert run.status == EvaluationRun.Status.SUCCEEDED
    assert run.responses_counted == 229
    r = overall(run)
    # The published figures (shared/seed/README.md).
    assert (r["response_rate"].numerator, r["response_rate"].denominator) == (229, 352)
    assert round(r["response_rate"].value * 100) == 65
    expected_top_two = {
        "reassured": (229, 229, 100),
        "continue": (227, 229, 99),
        "reuse": (229, 229, 100),
        "understood": (155, 156, 99),
    }
    for code, (successes, base, percent) in expected_top_two.items():
        result = r[code]
        assert (result.numerator, result.denominator) == (successes, base), code
        assert round(result.value * 100) == percent, code
        assert result.threshold == Decimal("70")
        assert result.verdict == "met"
        assert result.met_point is True
    assert (r["line_share"].numerator, r["line_share"].denominator) == (199, 229)
    assert round(r["line_share"].value * 100) == 87
    ratio = r["reach_ratio"]
    assert (ratio.numerator, ratio.denominator, ratio.overlap) == (156, 50, 39)
    assert round(ratio.value, 1) == 3.1
    cells = [
        r[f"channels_{c}"].numerator for c in ("online_only", "both", "municipal_only", "neither")
    ]
    assert cells == [117, 39, 11, 62]


def test_shares_carry_the_wilson_interval(reference_study):
    r = overall(score(reference_study))["continue"]
    low, high = proportion_confint(227, 229, alpha=0.05, method="wilson")
    assert r.ci_low == pytest.approx(low, abs=1e-9)
    assert r.ci_high == pytest.approx(high, abs=1e-9)
    # 227/229 meets 70 % even at the interval's lower bound.
    assert r.met_with_confidence is True


def test_shares_over_respondents_show_what_non_respondents_could_change(reference_study):
    r = overall(score(reference_study))["reassured"]
    # 229 of 229 respondents; 352 invited, so 123 did not answer.
    assert r.nonresponse_low == pytest.approx(229 / 352)
    assert r.nonresponse_high == pytest.approx(1.0)
    # Every non-respondent answers, as in the range: the smallest k of the 123 answering
    # no (the others yes) with (229 + 123 - k) / 352 < 70 %, by brute force.
    k = next(k for k in range(124) if 10 * (229 + 123 - k) < 7 * 352)
    assert r.nonresponse_high - k / 352 < 0.7 <= r.nonresponse_high - (k - 1) / 352
    assert r.tipping_direction == "no"
    assert r.tipping_count == k
    # A share over a segment has no non-response range: non-respondents' segment is unknown.
    assert overall(score(reference_study))["understood"].nonresponse_low is None


def test_per_site_results_add_up_to_the_whole_study(reference_study):
    run = score(reference_study)
    by_site: dict[str, list[KPIResult]] = {}
    for result in run.results.exclude(site=None).select_related("site"):
        by_site.setdefault(result.kpi_code, []).append(result)
    for code, whole in overall(run).items():
        sites = by_site[code]
        assert {s.site.code for s in sites} == {"setagaya", "itabashi", "fuchu"}
        assert sum(s.numerator for s in sites) == whole.numerator
        assert sum(s.denominator for s in sites) == whole.denominator
    fuchu = run.results.get(kpi_code="reassured", site__code="fuchu")
    assert (fuchu.numerator, fuchu.denominator, fuchu.value) == (0, 0, None)
    assert fuchu.verdict == "inconclusive"


def test_a_base_below_the_minimum_is_inconclusive(reference_study):
    KPI.objects.filter(study=reference_study, code="understood").update(min_n=157)
    r = overall(score(reference_study))["understood"]
    assert r.denominator == 156
    assert r.verdict == "inconclusive"
    assert r.met_point is None


def test_the_bound_rule_judges_the_interval(reference_study):
    # 99 % of 229 is above 98 %, but its Wilson lower bound (96.9 %) is not.
    KPI.objects.filter(study=reference_study, code="continue").update(
        threshold=Decimal("98"), rule="bound"
    )
    r = overall(score(reference_study))["continue"]
    low, _ = proportion_confint(227, 229, alpha=0.05, method="wilson")
    assert low < 0.98 < 227 / 229
    assert (r.met_point, r.met_with_confidence, r.verdict) == (True, False, "not_met")


def test_editing_a_kpi_never_changes_results_already_computed(reference_study):
    run = score(reference_study)
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    kpi.threshold = Decimal("100.0")
    kpi.comparator = ">"
    kpi.save()
    result = run.results.get(kpi_code="reassured", site=None)
    assert (result.comparator, result.threshold, result.verdict) == (">=", Decimal("70"), "met")
    snapshot = next(d for d in run.definitions if d["code"] == "reassured")
    assert (snapshot["comparator"], Decimal(snapshot["threshold"])) == (">=", Decimal("70"))


def test_the_cutoff_excludes_later_submissions(reference_study):
    run = score(reference_study)
    participant = (
        reference_study.sites.get(code="setagaya")
        .participants.exclude(response__status="submitted")
        .first()
    )
    survey_services.response_submit(
        participant=participant, answers=complete_answers(), language="ja"
    )
    rescored = execution.run_execute(run_id=run.pk)  # already finished: a no-op
    assert rescored.responses_counted == 229
    assert score(reference_study).responses_counted == 230


# --- Queries ------------------------------------------------------------------------------


def test_the_number_of_queries_does_not_grow_with_the_responses(reference_study):
    def queries() -> int:
        run = EvaluationRun.objects.create(study=reference_study, trigger="command")
        with CaptureQueriesContext(connection) as captured:
            execution.run_execute(run_id=run.pk)
        return len(captured)

    before = queries()
    site = reference_study.sites.get(code="itabashi")
    for participant in site.participants.exclude(response__status="submitted")[:40]:
        survey_services.response_submit(
            participant=participant, answers=complete_answers(), language="ja"
        )
    assert queries() == before
    # Counting is one query over responses plus one over participants; the rest claims the
    # run, loads the definitions (with their prefetches) and writes the results in bulk.
    assert before <= 25


# --- Runs: idempotent, concurrent, failing -------------------------------------------------


def test_running_a_run_twice_leaves_one_set_of_results(reference_study):
    run = score(reference_study)
    first = sorted(run.results.values_list("pk", flat=True))
    execution.run_execute(run_id=run.pk)
    assert sorted(run.results.values_list("pk", flat=True)) == first


def test_a_redelivered_running_run_completes_with_one_set_of_results(reference_study):
    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    # A worker claimed the run and died before writing anything.
    EvaluationRun.objects.filter(pk=run.pk).update(status="running")
    run = execution.run_execute(run_id=run.pk)
    assert run.status == "succeeded"
    n_kpis = KPI.objects.filter(study=reference_study).count()
    n_by_site = KPI.objects.filter(study=reference_study, by_site=True).count()
    assert run.results.count() == n_kpis + 3 * n_by_site


def test_a_failing_run_records_its_error(reference_study, monkeypatch):
    def boom(**kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("the counting exploded")

    monkeypatch.setattr(execution, "count_study", boom)
    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    tasks.score_run.apply(args=(run.pk,))
    run.refresh_from_db()
    assert run.status == "failed"
    assert "the counting exploded" in run.error
    assert run.finished_at is not None
    assert not run.results.exists()


def test_a_transient_database_error_is_retried_then_succeeds(reference_study, monkeypatch):
    from django.db import OperationalError

    real = execution.count_study
    calls = []

    def flaky(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(execution, "count_study", flaky)
    run = EvaluationRun.objects.create(study=reference_study, trigger="command")
    tasks.score_run.apply(args=(run.pk,))
    run.refresh_from_db()
    assert len(calls) == 2
    assert run.status == "succeeded"
    assert run.attempts == 2


def test_a_missing_run_is_not_retried(db):
    assert tasks.score_run.apply(args=(987654,)).get() == "missing"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_run_executed_twice_at_once_leaves_one_set_of_results():
    from kpi.definitions.loading import kpis_path, load_kpis
    from surveys.demo import generate_demo_responses
    from surveys.loading import load_study

    study = load_study()
    load_kpis(study=study, path=kpis_path())
    generate_demo_responses(study)
    run = EvaluationRun.objects.create(study=study, trigger="command")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def execute() -> None:
        try:
            barrier.wait()
            execution.run_execute(run_id=run.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=execute) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    run.refresh_from_db()
    assert run.status == "succeeded"
    n = (
        KPI.objects.filter(study=study).count()
        + 3 * KPI.objects.filter(study=study, by_site=True).count()
    )
    assert KPIResult.objects.filter(run=run).count() == n


# --- Triggers ------------------------------------------------------------------------------


def test_a_burst_of_submissions_causes_one_run(study, django_capture_on_commit_callbacks):
    participants = ParticipantFactory.create_batch(12, site__study=study)
    with django_capture_on_commit_callbacks(execute=True):
        for p in participants:
            survey_services.response_submit(
                participant=p, answers=complete_answers(), language="ja"
            )
    runs = EvaluationRun.objects.filter(study=study)
    assert runs.count() == 1
    assert runs.get().trigger == "submission"
    # In embedded mode the task ran in-process.
    assert runs.get().status == "succeeded"


def test_submissions_in_the_next_minute_cause_another_run(
    study, monkeypatch, django_capture_on_commit_callbacks
):
    clock = [1_800_000_000.0]
    monkeypatch.setattr(services.time, "time", lambda: clock[0])
    first, second = ParticipantFactory.create_batch(2, site__study=study)
    with django_capture_on_commit_callbacks(execute=True):
        survey_services.response_submit(
            participant=first, answers=complete_answers(), language="ja"
        )
    clock[0] += services.DEBOUNCE_SECONDS
    with django_capture_on_commit_callbacks(execute=True):
        survey_services.response_submit(
            participant=second, answers=complete_answers(), language="ja"
        )
    assert EvaluationRun.objects.filter(study=study).count() == 2


def test_a_broker_failure_never_fails_the_submission(
    study, monkeypatch, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.score_run, "apply_async", down)
    participant = ParticipantFactory(site__study=study)
    with django_capture_on_commit_callbacks(execute=True):
        survey_services.response_submit(
            participant=participant, answers=complete_answers(), language="ja"
        )
    assert Response.objects.get(participant=participant).status == "submitted"
    # The run waits in the queue for the backstop.
    assert EvaluationRun.objects.get(study=study).status == "queued"


def test_the_backstop_scores_studies_with_unscored_submissions(
    reference_study, django_capture_on_commit_callbacks
):
    score(reference_study)
    assert tasks.score_unscored() == 0  # everything is scored
    participant = (
        reference_study.sites.get(code="setagaya")
        .participants.exclude(response__status="submitted")
        .first()
    )
    # Submitted while the broker was down: stored, but no run was created for it.
    Response.objects.create(
        participant=participant,
        instrument=reference_study.instruments.get(),
        site=participant.site,
        status="submitted",
        submitted_at=timezone.now(),
        source="web",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.score_unscored() == 1
    latest = EvaluationRun.objects.filter(study=reference_study).latest("created_at")
    assert latest.trigger == "backstop"
    assert latest.status == "succeeded"
    assert latest.responses_counted == 230


def test_the_nightly_task_scores_every_open_study(
    reference_study, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.score_open_studies() == 1
    run = EvaluationRun.objects.get(study=reference_study, trigger="schedule")
    assert run.status == "succeeded"
