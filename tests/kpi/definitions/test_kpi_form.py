"""The KPI form a programme manager fills in: success ticked as answers of a question (the
same verdict as an explicit segment of them), targets and the confidence level in
percent, "did you mean 70 %?" for a share's target under 1, bad input refused at its
field, and the preview: the figures a scoring run then stores, over the caller's sites
only, with nothing saved."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from kpi.definitions import services
from kpi.models import KPI, EvaluationRun, KPIResult, Segment
from kpi.scoring import execution
from surveys.models import Answer, Choice, Membership, Question, Response, Site, Study
from tests.factories import StudyFactory, reference_instrument
from tests.kpi.test_admin import english, field_errors, form_data, manager, text, url

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
__all__ = ["manager"]  # the fixture, used by name


def run_now(study: Study) -> EvaluationRun:
    run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    return execution.run_execute(run_id=run.pk)


def question(study: Study, code: str) -> Question:
    return Question.objects.get(instrument__study=study, instrument__status="published", code=code)


def choices(study: Study, question_code: str, *codes: str) -> list[Choice]:
    return list(
        Choice.objects.filter(question=question(study, question_code), code__in=codes).order_by(
            "order"
        )
    )


def share_from_rows(study: Study, question_code: str, codes: set[str], sites: Any = None):
    """(successes, respondents) from the response and answer rows, in Python."""
    responses = Response.objects.filter(site__study=study, status=Response.Status.SUBMITTED)
    if sites is not None:
        responses = responses.filter(site__in=sites)
    ids = set(responses.values_list("pk", flat=True))
    chose = set(
        Answer.objects.filter(
            response_id__in=ids, question__code=question_code, choice__code__in=codes
        ).values_list("response_id", flat=True)
    )
    return len(chose), len(ids)


def edit(client: Client, kpi: KPI, **changes: Any) -> tuple[Any, dict[str, Any]]:
    data = form_data(client.get(url("kpi_change", kpi.pk)))
    data.update(changes)
    return client.post(url("kpi_change", kpi.pk), data), data


# --- Percent -----------------------------------------------------------------------------


def test_the_form_shows_and_takes_the_confidence_level_in_percent(manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    response, data = edit(manager, kpi, confidence="97.5", rule="bound")
    assert data["threshold"] == "70"
    assert response.status_code == 302
    kpi.refresh_from_db()
    assert kpi.confidence == Decimal("0.975")
    assert form_data(manager.get(url("kpi_change", kpi.pk)))["confidence"] == "97.5"
    # The list says it in percent too.
    assert "interval bound (97.5\u00a0%)" in text(manager.get(url("kpi_changelist")))


def test_a_share_target_under_one_asks_did_you_mean_and_is_kept_only_when_confirmed(
    manager, reference_study
):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    records = kpi.history.count()  # type: ignore[attr-defined]
    response, data = edit(manager, kpi, threshold="0.7")
    assert response.status_code == 200
    [error] = field_errors(response, "threshold")
    assert error.startswith("Did you mean 70 %?")
    assert 'name="threshold_confirmed"' in response.content.decode()
    kpi.refresh_from_db()
    assert kpi.threshold == Decimal("70")
    assert kpi.history.count() == records  # type: ignore[attr-defined]
    # Ticked: kept as typed (0.7 %).
    response = manager.post(url("kpi_change", kpi.pk), {**data, "threshold_confirmed": "on"})
    assert response.status_code == 302
    kpi.refresh_from_db()
    assert kpi.threshold == Decimal("0.7")


def test_a_confidence_level_typed_as_a_fraction_asks_did_you_mean(manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    response, _data = edit(manager, kpi, confidence="0.95")
    assert field_errors(response, "confidence") == [
        "Did you mean 95 %? The confidence level is typed in percent."
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threshold", "abc"),
        ("threshold", "1e309"),
        ("threshold", "NaN"),
        ("threshold", "-inf"),
        ("threshold", "150"),
        ("confidence", "100"),
        ("confidence", "0"),
        ("confidence", "150"),
        ("confidence", "NaN"),
        ("confidence", "1e309"),
        ("confidence", "97.55"),
        ("min_n", "-1"),
    ],
)
def test_bad_input_is_refused_at_its_field_and_nothing_is_saved(
    manager, reference_study, field, value
):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    records = kpi.history.count()  # type: ignore[attr-defined]
    response, _data = edit(manager, kpi, **{field: value})
    assert response.status_code == 200
    assert field_errors(response, field)
    assert kpi.history.count() == records  # type: ignore[attr-defined]


def test_errors_are_in_japanese_for_a_japanese_admin(manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    manager.defaults["HTTP_ACCEPT_LANGUAGE"] = "ja"
    response, _data = edit(manager, kpi, threshold="abc")
    assert field_errors(response, "threshold") == ["数値を入力してください。"]


# --- Success as ticked answers -------------------------------------------------------------


def test_a_kpi_shows_its_one_question_segment_as_ticked_answers(manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    data = form_data(manager.get(url("kpi_change", kpi.pk)))
    assert data["success_question"] == str(question(reference_study, "reassured").pk)
    assert sorted(data["success_choices"]) == sorted(
        str(c.pk) for c in choices(reference_study, "reassured", "agree", "somewhat_agree")
    )
    assert data["numerator"] == ""
    # Saved unchanged, it keeps its segment: no new one.
    segments = Segment.objects.count()
    assert manager.post(url("kpi_change", kpi.pk), data).status_code == 302
    kpi.refresh_from_db()
    assert kpi.numerator is not None and kpi.numerator.code == "reassured_top2"
    assert Segment.objects.count() == segments


def test_ticked_answers_give_the_verdict_of_an_explicit_segment_of_them(manager, reference_study):
    study = reference_study
    agree = choices(study, "reassured", "agree")
    data = form_data(manager.get(url("kpi_add") + f"?study={study.pk}"))
    data.update(
        code="reassured_agree",
        name_ja="強く安心",
        kind="share",
        base="respondents",
        success_question=str(question(study, "reassured").pk),
        success_choices=[str(c.pk) for c in agree],
        comparator=">=",
        threshold="60",
        min_n="30",
    )
    assert manager.post(url("kpi_add"), data).status_code == 302
    ticked = KPI.objects.get(study=study, code="reassured_agree")
    assert ticked.numerator is not None
    assert [c.code for c in ticked.numerator.clauses.get().choices.all()] == ["agree"]
    # The same by hand: a segment of that answer, then a KPI on it.
    explicit = services.segment_save(
        fields={"study": study, "code": "by_hand", "name_ja": "手作業"},
        clauses=[services.ClauseData(question=question(study, "reassured"), choices=agree)],
        user=None,
    )
    services.kpi_save(
        fields={
            "study": study,
            "code": "by_hand",
            "name_ja": "手作業",
            "kind": "share",
            "base": "respondents",
            "numerator": explicit,
            "comparator": ">=",
            "threshold": Decimal("60"),
        },
        user=None,
    )
    run = run_now(study)
    a = KPIResult.objects.get(run=run, kpi_code="reassured_agree", site=None)
    b = KPIResult.objects.get(run=run, kpi_code="by_hand", site=None)
    successes, n = share_from_rows(study, "reassured", {"agree"})
    assert (a.numerator, a.denominator) == (b.numerator, b.denominator) == (successes, n)
    assert (
        a.verdict
        == b.verdict
        == ("met" if Fraction(successes, n) >= Fraction(6, 10) else "not_met")
    )


def test_ticked_answers_reuse_the_studys_equivalent_segment(manager, reference_study):
    study = reference_study
    data = form_data(manager.get(url("kpi_add") + f"?study={study.pk}"))
    top2 = choices(study, "continue", "somewhat_agree", "agree")
    data.update(
        code="continue_again",
        name_ja="継続",
        kind="share",
        base="respondents",
        success_question=str(question(study, "continue").pk),
        success_choices=[str(c.pk) for c in top2],
    )
    segments = Segment.objects.count()
    assert manager.post(url("kpi_add"), data).status_code == 302
    assert Segment.objects.count() == segments
    assert KPI.objects.get(code="continue_again").numerator.code == "continue_top2"  # type: ignore[union-attr]


def test_a_choice_of_another_question_or_study_is_refused(manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    other_question = choices(reference_study, "continue", "agree")
    response, _data = edit(manager, kpi, success_choices=[str(other_question[0].pk)])
    assert field_errors(response, "success_choices")
    other = StudyFactory()
    reference_instrument(other)
    foreign = Question.objects.get(instrument__study=other, code="reassured")
    response, _data = edit(manager, kpi, success_question=str(foreign.pk))
    assert field_errors(response, "success_question")
    # Both ticked answers and a saved segment: which one is meant?
    segment = Segment.objects.get(study=reference_study, code="line")
    response, _data = edit(manager, kpi, numerator=str(segment.pk))
    assert field_errors(response, "numerator")
    kpi.refresh_from_db()
    assert kpi.numerator.code == "reassured_top2"  # type: ignore[union-attr]


# --- Preview -----------------------------------------------------------------------------


def test_the_preview_shows_what_a_run_then_stores_and_saves_nothing(manager, reference_study):
    study = reference_study
    kpi = KPI.objects.get(study=study, code="reassured")
    agree = choices(study, "reassured", "agree")
    changes = {
        "success_choices": [str(c.pk) for c in agree],
        "threshold": "80",
        "rule": "bound",
        "confidence": "90",
    }
    records, segments = kpi.history.count(), Segment.objects.count()  # type: ignore[attr-defined]
    response, data = edit(manager, kpi, **changes, _preview="1")
    assert response.status_code == 200
    preview = response.context["preview"]
    assert "Preview on the latest data" in text(response)
    kpi.refresh_from_db()
    assert (kpi.threshold, kpi.history.count()) == (Decimal("70"), records)  # type: ignore[attr-defined]
    assert Segment.objects.count() == segments
    # Independently: the share of "agree" among the respondents, from the rows.
    successes, n = share_from_rows(study, "reassured", {"agree"})
    shown = preview["overall"].result
    assert (shown.numerator, shown.denominator) == (successes, n)
    assert preview["whole_study"]
    # Saved as previewed, a scoring run stores the same figures.
    data.pop("_preview")
    assert manager.post(url("kpi_change", kpi.pk), data).status_code == 302
    stored = KPIResult.objects.get(run=run_now(study), kpi_code="reassured", site=None)
    for name in ("numerator", "denominator", "value", "ci_low", "ci_high", "verdict"):
        assert getattr(shown, name) == getattr(stored, name), name
    by_site = {site.code: row.result for site, row in preview["by_site"]}
    for result in KPIResult.objects.filter(run__study=study, kpi_code="reassured").exclude(
        site=None
    ):
        assert by_site[result.site.code].numerator == result.numerator  # type: ignore[union-attr]


def test_a_bad_form_previews_nothing(manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="reassured")
    response, _data = edit(manager, kpi, threshold="abc", _preview="1")
    assert field_errors(response, "threshold")
    assert "preview" not in response.context


@pytest.fixture
def setagaya_manager(reference_study) -> Client:
    user = User.objects.create_user("setagaya-mgr", password="pw-setagaya-1234", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="kpi", codename__in=["view_kpi", "change_kpi", "add_kpi"]
        )
    )
    site = Site.objects.get(study=reference_study, code="setagaya")
    Membership.objects.create(user=user, site=site, role=Membership.Role.MANAGER)
    client = Client()
    client.force_login(user)
    return english(client)


def test_the_preview_counts_only_the_callers_sites(setagaya_manager, reference_study):
    study = reference_study
    kpi = KPI.objects.get(study=study, code="reassured")
    response, _data = edit(setagaya_manager, kpi, _preview="1")
    assert response.status_code == 200
    preview = response.context["preview"]
    setagaya = Site.objects.filter(study=study, code="setagaya")
    successes, n = share_from_rows(study, "reassured", {"agree", "somewhat_agree"}, setagaya)
    shown = preview["overall"].result
    assert (shown.numerator, shown.denominator) == (successes, n)
    assert not preview["whole_study"]
    assert [site.code for site, _row in preview["by_site"]] == ["setagaya"]
    page = text(response)
    assert "Your sites" in page
    for other in Site.objects.filter(study=study).exclude(code="setagaya"):
        assert f'data-scope="{other.code}"' not in page


def test_the_whole_study_preview_withholds_the_small_cells_of_a_site(manager, reference_study):
    """One resident at each site did not want to continue: a complement of 1 (under the
    default k = 5), so each site's figures are withheld; the study's are exact."""
    study = reference_study
    assert study.small_cell_threshold == 5
    kpi = KPI.objects.get(study=study, code="continue")
    response, _data = edit(manager, kpi, _preview="1")
    preview = response.context["preview"]
    successes, n = share_from_rows(study, "continue", {"agree", "somewhat_agree"})
    assert (preview["overall"].result.numerator, preview["overall"].result.denominator) == (
        successes,
        n,
    )
    assert 1 <= n - successes < 5  # the study as the demo has it: the premise of the test
    page = text(response)
    for site, row in preview["by_site"]:
        mine = Site.objects.filter(pk=site.pk)
        s, b = share_from_rows(study, "continue", {"agree", "somewhat_agree"}, mine)
        if 1 <= b - s < 5:  # a small complement: the numerator goes, and the value with it
            assert row.withheld and not row.value and str(s) not in row.counts
    assert any(row.withheld for _site, row in preview["by_site"])
    assert preview["small_cells_legend"] and preview["small_cells_legend"] in page


def test_a_preview_over_the_callers_own_site_withholds_nothing(setagaya_manager, reference_study):
    kpi = KPI.objects.get(study=reference_study, code="continue")
    response, _data = edit(setagaya_manager, kpi, _preview="1")
    preview = response.context["preview"]
    assert not any(row.withheld for _site, row in preview["by_site"])
    assert not preview["small_cells_legend"]
