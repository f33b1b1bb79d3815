"""The KPI admin keeps every manager to their studies and their sites' results: a matrix of
roles (viewer, manager, signer of Setagaya) × their own study or another × the pages of
runs, results, "Score now", KPIs, segments and evaluations; plus the per-site results a
run page shows, the choices the forms offer, and the report only members of every site
may read.

The world (the scored reference study, a second study, the users) is the one of
``tests/surveys/test_admin_scoping.py``, built once for this module too and rolled back
at its end."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from kpi.models import KPI, EvaluationRun, KPIResult
from surveys.models import Membership, Study
from tests.surveys.test_admin_scoping import (
    ALL_READ,
    NOBODY,
    ROLES,
    TARGETS,
    WRITE,
    Page,
    Status,
    World,
    _obj,
    admin_url,
    check,
    client_for,
    world_of_the_module,
)

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

MANAGES: Status = {"viewer": 403, "manager": 302, "signer": 302}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:  # type: ignore[no-untyped-def]
    yield from world_of_the_module(django_db_blocker)


@pytest.fixture
def as_user(world: World, db) -> Callable[[str], Client]:  # type: ignore[no-untyped-def]
    return lambda who: client_for(world, who)


def _study(action: str) -> Callable[[World, str], str]:
    def url(world: World, target: str) -> str:
        study = world.study if target == "own" else world.other_study
        return admin_url(f"kpi_studyresults_{action}", study.pk)

    return url


def _version(kind: str) -> Callable[[World, str], str]:
    """A simple-history version page of the KPI or segment."""

    def url(world: World, target: str) -> str:
        obj = getattr(world, kind)[target]
        version = obj.history.order_by("-history_id")[0].history_id
        return admin_url(f"kpi_{obj._meta.model_name}_simple_history", obj.pk, version)

    return url


KPI_PAGES = [
    Page("run results", _obj("runs", "change"), ALL_READ),
    Page("run history", _obj("runs", "history"), ALL_READ),
    Page("run delete", _obj("runs", "delete"), NOBODY, root=403),
    Page("study results", _study("change"), ALL_READ),
    Page("score now", _study("score"), MANAGES, method="post", root=302),
    Page("kpi change", _obj("kpis", "change"), ALL_READ),
    Page("kpi history", _obj("kpis", "history"), ALL_READ),
    Page("kpi version", _version("kpis"), ALL_READ),
    Page("kpi save", _obj("kpis", "change"), MANAGES, method="resubmit", root=302),
    Page("segment change", _obj("segments", "change"), ALL_READ),
    Page("segment history", _obj("segments", "history"), ALL_READ),
    Page("segment version", _version("segments"), ALL_READ),
    Page("segment delete", _obj("segments", "delete"), WRITE),
    Page("segment save", _obj("segments", "change"), MANAGES, method="resubmit", root=302),
    Page("evaluation change", _obj("evaluations", "change"), ALL_READ),
    Page("evaluation history", _obj("evaluations", "history"), ALL_READ),
    # The report shows every site's results: a member of Setagaya alone may not read it.
    # (A superuser's download renders a PDF: tested once below, not in the matrix.)
    Page("evaluation download", _obj("evaluations", "download"), NOBODY, root=None),
    Page("evaluation sign-off", _obj("evaluations", "sign_off"), NOBODY),
    # Withdrawing takes what signing off takes (kpi.evaluations.services.may_sign).
    Page("evaluation withdraw", _obj("evaluations", "withdraw"), NOBODY),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("page", KPI_PAGES, ids=str)
@pytest.mark.parametrize("role", ROLES)
def test_a_setagaya_member_reaches_their_studys_kpi_pages_by_role_and_no_other(
    world, as_user, role, page, target
):
    check(as_user(role), world, page, role, target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("page", [p for p in KPI_PAGES if p.root is not None], ids=str)
@pytest.mark.parametrize("who", ["nobody", "root"])
def test_a_staff_user_without_membership_finds_no_kpi_page_and_a_superuser_every_one(
    world, as_user, who, page, target
):
    check(as_user(who), world, page, who, target)


# --- Results: the whole study's for its members, a site's for that site's members -------


def scopes(html: str) -> list[str]:
    return re.findall(r'data-scope="([^"]*)"', html)


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("viewer", ["all", "setagaya"]),
        ("manager", ["all", "setagaya"]),
        ("signer", ["all", "setagaya"]),
        ("mixed", ["all", "itabashi", "setagaya"]),
        ("everywhere", ["all", "fuchu", "itabashi", "setagaya"]),
        ("root", ["all", "fuchu", "itabashi", "setagaya"]),
    ],
)
def test_a_runs_page_shows_the_whole_study_and_the_callers_sites_only(world, as_user, who, shown):
    run = world.runs["own"]
    assert set(KPIResult.objects.filter(run=run).values_list("site__code", flat=True)) == {
        None,
        "setagaya",
        "itabashi",
        "fuchu",
    }
    html = as_user(who).get(admin_url("kpi_evaluationrun_change", run.pk)).content.decode()
    assert scopes(html) == shown


def test_the_results_by_study_list_shows_the_callers_studies_only(world, as_user):
    for who, studies in [
        ("manager", [world.study]),
        ("nobody", []),
        ("itabashi-manager", [world.study]),
    ]:
        listing = as_user(who).get(admin_url("kpi_studyresults_changelist"))
        assert listing.status_code == 200
        assert list(listing.context["cl"].result_list) == studies, who
    root = as_user("root").get(admin_url("kpi_studyresults_changelist"))
    assert set(root.context["cl"].result_list) == {world.study, world.other_study}


@pytest.mark.parametrize("name", ["kpi", "segment", "evaluationrun", "evaluation"])
def test_the_kpi_lists_show_the_callers_studies_only(world, as_user, name):
    listing = as_user("viewer").get(admin_url(f"kpi_{name}_changelist"))
    assert listing.status_code == 200
    assert {row.study_id for row in listing.context["cl"].result_list} == {world.study.pk}
    assert "other-study" not in listing.content.decode()


def test_score_now_from_the_list_needs_the_manager_role_in_every_chosen_study(
    world, as_user, django_capture_on_commit_callbacks
):
    before = EvaluationRun.objects.count()
    data = {"action": "score_now", "_selected_action": [world.study.pk]}
    as_user("viewer").post(admin_url("kpi_studyresults_changelist"), data)
    assert EvaluationRun.objects.count() == before  # not offered to a viewer
    other = {"action": "score_now", "_selected_action": [world.other_study.pk]}
    as_user("manager").post(admin_url("kpi_studyresults_changelist"), other)
    assert EvaluationRun.objects.count() == before  # out of scope: nothing selected
    response = as_user("manager").post(admin_url("kpi_studyresults_changelist"), data)
    assert response.status_code == 302
    assert EvaluationRun.objects.count() == before + 1


# --- The forms offer the caller's studies only -----------------------------------------


def test_a_new_kpi_offers_only_the_studies_and_segments_the_caller_manages(world, as_user):
    assert as_user("viewer").get(admin_url("kpi_kpi_add")).status_code == 403
    page = as_user("manager").get(admin_url("kpi_kpi_add"))
    form = page.context["adminform"].form
    assert list(form.fields["study"].queryset) == [world.study]
    assert {s.study_id for s in form.fields["numerator"].queryset} == {world.study.pk}
    assert {q.instrument.study_id for q in form.fields["mean_question"].queryset} == {
        world.study.pk
    }
    assert "other-study" not in page.content.decode()
    # A KPI for the other study, or with its segment, is refused at the field.
    response = as_user("manager").post(
        admin_url("kpi_kpi_add"),
        {
            "study": world.other_study.pk,
            "code": "x",
            "name_ja": "x",
            "kind": "share",
            "base": "respondents",
            "numerator": world.segments["other"].pk,
            "rule": "point",
            "confidence": "0.95",
            "min_n": "30",
            "order": "0",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "study" in errors and "numerator" in errors
    assert not KPI.objects.filter(code="x").exists()
    # ... in the very words it uses for ids that exist nowhere.
    absent = response.wsgi_request.POST.copy()
    absent["study"] = str(Study.objects.order_by("-pk")[0].pk + 1000)
    absent["numerator"] = str(world.segments["other"].pk + 100000)
    nowhere = as_user("manager").post(admin_url("kpi_kpi_add"), absent)
    assert nowhere.context["adminform"].form.errors == errors


def test_a_new_segment_offers_only_the_questions_of_the_callers_studies(world, as_user):
    for query in ("", f"?study={world.other_study.pk}"):
        page = as_user("manager").get(admin_url("kpi_segment_add") + query)
        assert page.status_code == 200
        form = page.context["adminform"].form
        assert list(form.fields["study"].queryset) == [world.study]
        clauses = page.context["inline_admin_formsets"][0].formset
        assert clauses.instance.study_id is None, query  # not the other study's
        question = clauses.forms[0].fields["question"]
        assert {q.instrument.study_id for q in question.queryset} == {world.study.pk}
        offered = [value for value, _label in question.choices if value]
        assert offered and set(offered) <= set(question.queryset.values_list("pk", flat=True))


def test_a_new_evaluation_offers_only_runs_of_studies_the_caller_manages(world, as_user):
    assert as_user("viewer").get(admin_url("kpi_evaluation_add")).status_code == 403
    page = as_user("manager").get(admin_url("kpi_evaluation_add"))
    runs = page.context["form"].fields["run"].queryset
    assert {run.study_id for run in runs} == {world.study.pk}
    answers = [
        as_user("manager").post(admin_url("kpi_evaluation_add"), {"run": run, "language": "ja"})
        for run in (world.runs["other"].pk, EvaluationRun.objects.order_by("-pk")[0].pk + 1000)
    ]
    assert answers[0].status_code == answers[1].status_code == 200
    assert "run" in answers[0].context["form"].errors
    assert answers[0].context["form"].errors == answers[1].context["form"].errors


# --- The report: members of every site of the study ------------------------------------


def test_the_report_is_linked_only_for_those_who_may_read_it(world, as_user):
    evaluation = world.evaluations["own"]
    download = admin_url("kpi_evaluation_download", evaluation.pk)
    for who, linked in [("signer", False), ("everywhere", True), ("root", True)]:
        listing = as_user(who).get(admin_url("kpi_evaluation_changelist")).content.decode()
        page = as_user(who).get(admin_url("kpi_evaluation_change", evaluation.pk))
        assert (download in listing) is linked, who
        assert (download in page.content.decode()) is linked, who
        assert page.context["can_sign_off"] is linked, who


def test_a_signer_of_every_site_downloads_and_signs_off_the_report(world, as_user):
    client = as_user("everywhere")
    evaluation = world.evaluations["own"]
    response = client.get(admin_url("kpi_evaluation_download", evaluation.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert client.get(admin_url("kpi_evaluation_sign_off", evaluation.pk)).status_code == 200
    other = world.evaluations["other"]
    assert client.get(admin_url("kpi_evaluation_download", other.pk)).status_code == 404


def test_a_study_without_members_is_no_ones_but_a_superusers(world, as_user):
    study = Study.objects.get(pk=world.other_study.pk)
    assert not study.sites.filter(memberships__isnull=False).exists()
    for who in ("viewer", "manager", "signer", "everywhere", "nobody"):
        page = as_user(who).get(admin_url("kpi_studyresults_change", study.pk))
        assert page.status_code == 404, who


def test_the_kpi_lists_order_column_saves_only_kpis_the_caller_may_change(world, as_user):
    # The manager of Setagaya also views the other study: its KPIs are listed, not theirs.
    nerima = world.other_study.sites.get()
    Membership.objects.create(user=world.users["manager"], site=nerima, role="viewer")
    own, other = world.kpis["own"], world.kpis["other"]
    for kpi in (other, own):
        data = {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
            "form-0-id": str(kpi.pk),
            "form-0-order": "77",
            "_save": "Save",
        }
        as_user("manager").post(admin_url("kpi_kpi_changelist"), data)
    other.refresh_from_db()
    own.refresh_from_db()
    assert (other.order, own.order) == (0, 77)
