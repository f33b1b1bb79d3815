"""The KPI admin through the test client: pages render, "Score now" scores and its run
page shows the reference figures, the rules' messages land at their fields and nothing
is saved, edits are in the history and leave earlier results alone, runs and results are
read-only, and scoring needs its permission."""

from __future__ import annotations

from decimal import Decimal
from html import unescape
from typing import Any, cast

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kpi.models import KPI, Clause, EvaluationRun, KPIResult, Segment
from kpi.scoring import execution
from surveys.models import Choice, Membership, Question, Study
from tests.factories import StudyFactory, reference_instrument

# WhiteNoise warns that STATIC_ROOT has not been collected; the admin does not need it here.
pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")


def url(name: str, *args: object) -> str:
    return reverse(f"admin:kpi_{name}", args=args)


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def manager(db) -> Client:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser("manager", "manager@example.org", "pw-manager-1234")
    client = Client()
    client.force_login(user)
    return english(client)


@pytest.fixture
def viewer(db) -> Client:  # type: ignore[no-untyped-def]
    """A staff user who may look at everything of the KPI app but not start a scoring."""
    user = User.objects.create_user("viewer", password="pw-viewer-1234", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="kpi",
            codename__in=[
                "view_segment",
                "view_kpi",
                "view_evaluationrun",
                "view_studyresults",
            ],
        )
    )
    client = Client()
    client.force_login(user)
    return english(client)


@pytest.fixture
def study_with_kpis(db) -> Study:  # type: ignore[no-untyped-def]
    """The reference study and its KPIs, without responses (quicker than
    ``reference_study``, for the tests that do not read the figures)."""
    from kpi.definitions.loading import kpis_path, load_kpis
    from surveys.loading import load_study

    study = load_study()
    path = kpis_path()
    assert path is not None
    load_kpis(study=study, path=path)
    return study


def score(study: Study) -> EvaluationRun:
    run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    return execution.run_execute(run_id=run.pk)


def form_data(response: Any) -> dict[str, Any]:
    """The POST data of an admin change page as rendered: the form and its inlines."""
    forms = [response.context["adminform"].form]
    data: dict[str, Any] = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for bound in form:
            value = bound.value()
            if isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = "" if value is None else str(value)
    return data


def text(response: Any) -> str:
    """The page's HTML with entities unescaped (``>=`` is sent as ``&gt;=``)."""
    return unescape(response.content.decode())


def field_errors(response: Any, field: str) -> list[str]:
    return list(response.context["adminform"].form.errors.get(field, []))


# --- Every page renders -------------------------------------------------------------------


def test_every_changelist_change_add_and_history_page_renders(manager, study_with_kpis):
    run = score(study_with_kpis)
    segment = Segment.objects.get(code="online")
    kpi = KPI.objects.get(code="understood")
    pages = [
        reverse("admin:app_list", args=["kpi"]),
        url("segment_changelist"),
        url("segment_change", segment.pk),
        url("segment_add"),
        url("segment_add") + f"?study={study_with_kpis.pk}",
        url("segment_history", segment.pk),
        url("kpi_changelist"),
        url("kpi_changelist") + f"?study__id__exact={study_with_kpis.pk}&kind__exact=share",
        url("kpi_change", kpi.pk),
        url("kpi_add"),
        url("kpi_history", kpi.pk),
        url("evaluationrun_changelist"),
        url("evaluationrun_changelist") + f"?study__id__in={study_with_kpis.pk}",
        url("evaluationrun_change", run.pk),
        url("studyresults_changelist"),
        url("studyresults_change", study_with_kpis.pk),
    ]
    for page in pages:
        response = manager.get(page)
        assert response.status_code == 200, page
        assert "errornote" not in response.content.decode(), page


def test_the_pages_do_not_query_per_row(manager, study_with_kpis):
    run = score(study_with_kpis)
    segment = Segment.objects.get(code="online")
    # 11 KPIs x (study + 3 sites) results, 11 segments, 11 KPIs: a query per row would
    # show as dozens.
    for page, limit in [
        (url("evaluationrun_change", run.pk), 15),
        (url("kpi_changelist"), 12),
        (url("segment_changelist"), 12),
        (url("segment_change", segment.pk), 20),
        (url("studyresults_changelist"), 12),
        (url("studyresults_change", study_with_kpis.pk), 12),
        (url("evaluationrun_changelist"), 12),
    ]:
        with CaptureQueriesContext(connection) as queries:
            assert manager.get(page).status_code == 200
        assert len(queries) <= limit, (page, len(queries))


def test_the_lists_say_what_a_target_is_judged_on_and_who_asked_for_a_run(manager, study_with_kpis):
    """One column fewer each (they fit 1280 px): the rule under the target, the
    requester under the trigger."""
    kpis = manager.get(url("kpi_changelist")).content.decode()
    reassured = kpis[kpis.index(">reassured<") :]
    target = reassured[: reassured.index("</td>", reassured.index('class="field-target_rule'))]
    assert "at least 70" in target and "point estimate" in target
    assert "judged on" not in kpis.lower()

    user = User.objects.get(username="manager")
    run = EvaluationRun.objects.create(
        study=study_with_kpis, trigger=EvaluationRun.Trigger.MANUAL, requested_by=user
    )
    runs = manager.get(url("evaluationrun_changelist")).content.decode()
    row = runs[runs.index(f">#{run.pk}<") :]
    assert '<span class="hyoka-second-line">manager</span>' in row[: row.index("</tr>")]


def test_a_segments_page_runs_the_same_queries_for_one_condition_as_for_four(
    manager, study_with_kpis
):
    segment = Segment.objects.get(code="online")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager.get(url("segment_change", segment.pk)).status_code == 200
        return len(captured)

    one = queries()
    tool = Question.objects.get(instrument__study=study_with_kpis, code="tool")
    for code in ("line", "phone", "email"):
        clause = Clause.objects.create(segment=segment, question=tool)
        clause.choices.set(tool.choices.filter(code=code))
    assert queries() == one


def test_every_page_renders_in_japanese(manager, study_with_kpis):
    manager.defaults["HTTP_ACCEPT_LANGUAGE"] = "ja"
    run = score(study_with_kpis)
    kpi = KPI.objects.get(code="reassured")
    for page in (
        url("evaluationrun_change", run.pk),
        url("kpi_change", kpi.pk),
        url("kpi_changelist"),
        url("studyresults_changelist"),
    ):
        response = manager.get(page)
        assert response.status_code == 200, page
    assert "産後の安心を感じることができたか" in text(
        manager.get(url("evaluationrun_change", run.pk))
    )


# --- Score now and the run's page ---------------------------------------------------------


def test_score_now_creates_a_run_whose_page_shows_the_reference_figures(
    manager, reference_study, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(
            url("studyresults_changelist"),
            {"action": "score_now", "_selected_action": [reference_study.pk]},
        )
    run = EvaluationRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("evaluationrun_change", run.pk)
    assert run.trigger == EvaluationRun.Trigger.MANUAL
    assert run.requested_by is not None and run.requested_by.username == "manager"
    assert run.status == EvaluationRun.Status.SUCCEEDED

    page = manager.get(response["Location"])
    html = text(page)
    assert 'http-equiv="refresh"' not in html  # finished: nothing to wait for
    # Worded as the report words them (kpi.scoring.wording): "65 %" kept on one line.
    figures = ("65 %", "100 %", "99 %", "87 %", "3.1", "(both: 39)", "229 / 352", "155 / 156")
    for figure in figures:
        assert figure.replace(" %", "\u00a0%") in html, figure
    for words in (
        "met with 97.5 % confidence (one-sided)",
        "no target",
        "inconclusive",
        "at least 70 %",
    ):
        assert words.replace(" %", "\u00a0%") in html, words
    assert "Felt reassured after giving birth" in html  # the KPI's name, in English here
    assert "Respondents who used the online service" in html  # the base, in words
    # The whole study first, then each site by code.
    scopes = [s["code"] for s in [{"code": sec.code} for sec in page.context["sections"]]]
    assert scopes == ["", "fuchu", "itabashi", "setagaya"]
    first = page.context["sections"][0].rows
    assert [r.result.kpi_code for r in first][:3] == ["response_rate", "reassured", "continue"]


def test_the_results_list_shows_each_studys_latest_scoring(manager, reference_study):
    run = score(reference_study)
    response = manager.get(url("studyresults_changelist"))
    html = response.content.decode()
    assert url("evaluationrun_change", run.pk) in html
    row = response.context["cl"].result_list[0]
    assert row.latest_run_id == run.pk
    assert row.latest_run_responses == 229
    assert (row.kpis_met, row.kpis_not_met, row.kpis_inconclusive) == (4, 0, 0)


def test_score_now_on_several_studies_opens_the_runs_of_those_studies(
    manager, study_with_kpis, django_capture_on_commit_callbacks
):
    other = cast(Study, StudyFactory())
    reference_instrument(other)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(
            url("studyresults_changelist"),
            {"action": "score_now", "_selected_action": [study_with_kpis.pk, other.pk]},
        )
    assert EvaluationRun.objects.count() == 2
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(url("evaluationrun_changelist") + "?study__id__in=")
    listed = manager.get(location)
    assert listed.status_code == 200
    assert {run.study_id for run in listed.context["cl"].result_list} == {
        study_with_kpis.pk,
        other.pk,
    }


def test_the_score_button_on_a_study_page_scores_it(
    manager, study_with_kpis, django_capture_on_commit_callbacks
):
    page = manager.get(url("studyresults_change", study_with_kpis.pk)).content.decode()
    assert url("studyresults_score", study_with_kpis.pk) in page
    assert manager.get(url("studyresults_score", study_with_kpis.pk)).status_code == 405
    assert not EvaluationRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(url("studyresults_score", study_with_kpis.pk))
    run = EvaluationRun.objects.get()
    assert response["Location"] == url("evaluationrun_change", run.pk)
    assert run.trigger == EvaluationRun.Trigger.MANUAL


def test_a_run_page_refreshes_itself_until_the_run_is_finished(manager, study_with_kpis):
    run = EvaluationRun.objects.create(study=study_with_kpis, trigger=EvaluationRun.Trigger.MANUAL)
    html = manager.get(url("evaluationrun_change", run.pk)).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "Queued since" in html
    assert "<script>" not in html  # no inline script: the coming CSP forbids it

    EvaluationRun.objects.filter(pk=run.pk).update(
        status=EvaluationRun.Status.RUNNING,
        started_at=run.created_at,
        cutoff=run.created_at,
        attempts=1,
    )
    html = manager.get(url("evaluationrun_change", run.pk)).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "Running since" in html

    execution.run_execute(run_id=run.pk)
    html = manager.get(url("evaluationrun_change", run.pk)).content.decode()
    assert 'http-equiv="refresh"' not in html
    assert "Results for the whole study" in html


def test_a_failed_run_shows_its_error(manager, study_with_kpis):
    run = EvaluationRun.objects.create(study=study_with_kpis, trigger=EvaluationRun.Trigger.API)
    execution.run_fail(run_id=run.pk, error="ZeroDivisionError: the base was empty")
    html = manager.get(url("evaluationrun_change", run.pk)).content.decode()
    assert "This scoring failed" in html
    assert "ZeroDivisionError: the base was empty" in html
    assert 'http-equiv="refresh"' not in html


# --- The rules' messages at their fields --------------------------------------------------


def test_a_share_target_of_150_is_refused_at_the_field_and_nothing_is_saved(
    manager, study_with_kpis
):
    kpi = KPI.objects.get(code="reassured")
    data = form_data(manager.get(url("kpi_change", kpi.pk)))
    assert data["threshold"] == "70"  # shown in %, not as 70.0000
    assert data["confidence"] == "95"  # in % too
    data["threshold"] = "150"
    response = manager.post(url("kpi_change", kpi.pk), data)
    assert response.status_code == 200
    assert field_errors(response, "threshold") == [
        "A share's target is a percentage between 0 and 100."
    ]
    kpi.refresh_from_db()
    assert kpi.threshold == Decimal("70")
    assert kpi.history.count() == 1  # type: ignore[attr-defined]


def test_a_kpi_whose_segment_belongs_to_another_study_is_refused_at_the_field(
    manager, study_with_kpis
):
    other = cast(Study, StudyFactory())
    foreign = Segment.objects.create(study=other, code="foreign", name_ja="他")
    kpi = KPI.objects.get(code="reassured")
    data = form_data(manager.get(url("kpi_change", kpi.pk)))
    data["numerator"] = str(foreign.pk)
    response = manager.post(url("kpi_change", kpi.pk), data)
    assert response.status_code == 200
    # Not even offered: the KPI's study's segments only.
    assert field_errors(response, "numerator")
    kpi.refresh_from_db()
    assert kpi.numerator is not None and kpi.numerator.code == "reassured_top2"


def test_a_new_kpi_offers_every_studys_segments_labelled_with_their_study(manager, study_with_kpis):
    other = cast(Study, StudyFactory())
    Segment.objects.create(study=other, code="foreign", name_ja="他", name_en="Foreign")
    response = manager.get(url("kpi_add"))
    labels = [
        label for _value, label in response.context["adminform"].form.fields["numerator"].choices
    ]
    assert f"{other.code} · Foreign (foreign)" in labels
    assert f"{study_with_kpis.code} · Online-service users (online)" in labels
    # Opened from a study, only that study's segments.
    response = manager.get(url("kpi_add") + f"?study={study_with_kpis.pk}")
    labels = [
        label for _value, label in response.context["adminform"].form.fields["numerator"].choices
    ]
    assert "Online-service users (online)" in labels
    assert not any("Foreign" in label for label in labels)


def test_a_new_kpi_with_a_bad_definition_is_refused_at_its_fields(manager, study_with_kpis):
    data = form_data(manager.get(url("kpi_add") + f"?study={study_with_kpis.pk}"))
    data.update(
        code="new_ratio",
        name_ja="新しい比",
        kind=KPI.Kind.RATIO,
        base=KPI.Base.RESPONDENTS,
        numerator=str(Segment.objects.get(code="online").pk),
        comparator=">=",
        threshold="0",
    )
    response = manager.post(url("kpi_add"), data)
    assert response.status_code == 200
    assert field_errors(response, "base") == [
        "A ratio divides two segments: choose the base “a segment”."
    ]
    assert field_errors(response, "threshold") == ["A ratio's target must be greater than 0."]
    assert not KPI.objects.filter(code="new_ratio").exists()


def test_the_condition_form_offers_only_the_studys_choice_questions(manager, study_with_kpis):
    other = cast(Study, StudyFactory())
    reference_instrument(other)
    segment = Segment.objects.get(code="online")
    response = manager.get(url("segment_change", segment.pk))
    formset = response.context["inline_admin_formsets"][0].formset
    offered = set(formset.forms[0].fields["question"].queryset)
    expected = set(
        Question.objects.filter(instrument__study=study_with_kpis, type__in=Question.CHOICE_TYPES)
    )
    assert offered == expected
    assert {q.code for q in offered} == {
        "channels",
        "reassured",
        "continue",
        "reuse",
        "understood",
        "tool",
    }
    # The condition's own question's choices are listed open; the others are folded.
    html = response.content.decode()
    assert "<details open>" in html
    assert "(midwife_chat) #online" in html
    # The tag box suggests the study's tags.
    assert 'list="hyoka-clause-tags"' in html
    assert '<datalist id="hyoka-clause-tags"><option value="municipal"></option>' in html


def test_a_condition_with_a_choice_of_another_question_is_refused_at_the_field(
    manager, study_with_kpis
):
    segment = Segment.objects.get(code="line")
    clause = segment.clauses.get()
    before = list(clause.choices.values_list("pk", flat=True))
    data = form_data(manager.get(url("segment_change", segment.pk)))
    agree = Choice.objects.get(
        question__instrument__study=study_with_kpis, question__code="reassured", code="agree"
    )
    data["clauses-0-choices"] = [*data["clauses-0-choices"], str(agree.pk)]
    response = manager.post(url("segment_change", segment.pk), data)
    assert response.status_code == 200
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.errors["choices"] == [f"“{agree.label}”: not a choice of the question “tool”."]
    assert list(clause.choices.values_list("pk", flat=True)) == before
    assert segment.clauses.count() == 1


def test_a_condition_needs_choices_or_a_tag_and_a_real_tag(manager, study_with_kpis):
    segment = Segment.objects.get(code="online")
    data = form_data(manager.get(url("segment_change", segment.pk)))
    data["clauses-0-tag"] = "offline"
    response = manager.post(url("segment_change", segment.pk), data)
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.errors["tag"] == ["No choice of the question “channels” has the tag “offline”."]
    assert Clause.objects.get(segment=segment).tag == "online"


def test_a_new_condition_is_saved_and_shown_in_the_segments_history(manager, study_with_kpis):
    segment = Segment.objects.get(code="line")
    data = form_data(manager.get(url("segment_change", segment.pk)))
    tool = Question.objects.get(instrument__study=study_with_kpis, code="tool")
    phone = tool.choices.get(code="phone")
    data.update({"clauses-1-question": str(tool.pk), "clauses-1-choices": [str(phone.pk)]})
    data["clauses-1-negate"] = "on"
    response = manager.post(url("segment_change", segment.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    added = segment.clauses.order_by("pk").last()
    assert added is not None and added.negate and list(added.choices.all()) == [phone]
    html = manager.get(url("segment_history", segment.pk)).content.decode()
    assert "tool: did not choose phone" in html
    assert "manager" in html


# --- History, and results that keep the target they were judged on ----------------------


def test_a_threshold_edit_keeps_earlier_results_and_shows_in_the_history(manager, study_with_kpis):
    run = score(study_with_kpis)
    kpi = KPI.objects.get(code="reassured")
    data = form_data(manager.get(url("kpi_change", kpi.pk)))
    data["threshold"] = "75"
    response = manager.post(url("kpi_change", kpi.pk), data)
    assert response.status_code == 302
    kpi.refresh_from_db()
    assert kpi.threshold == Decimal("75")

    result = KPIResult.objects.get(run=run, kpi_code="reassured", site=None)
    assert result.threshold == Decimal("70")
    assert "at least 70\u00a0%" in text(manager.get(url("evaluationrun_change", run.pk)))

    history = manager.get(url("kpi_history", kpi.pk))
    html = text(history)
    assert "manager" in html
    latest = history.context["page_obj"].object_list[0]
    assert latest.history_user.username == "manager"
    changes = {c["field"]: (c["old"], c["new"]) for c in latest.history_delta_changes}
    assert changes == {"Target": ("70", "75")}
    assert "<strong>Target:</strong> <bdi>70</bdi> → <bdi>75</bdi>" in html
    assert "at least 75\u00a0%" in html  # the target column of each version


def test_a_version_from_the_history_can_be_opened(manager, study_with_kpis):
    kpi = KPI.objects.get(code="reassured")
    version = kpi.history.earliest()  # type: ignore[attr-defined]
    response = manager.get(
        reverse("admin:kpi_kpi_simple_history", args=[kpi.pk, version.history_id])
    )
    assert response.status_code == 200
    segment = Segment.objects.get(code="online")
    version = segment.history.earliest()  # type: ignore[attr-defined]
    response = manager.get(
        reverse("admin:kpi_segment_simple_history", args=[segment.pk, version.history_id])
    )
    assert response.status_code == 200


def test_the_list_saves_a_new_display_order(manager, study_with_kpis):
    kpi = KPI.objects.get(code="line_share")
    response = manager.get(url("kpi_changelist"))
    formset = response.context["cl"].formset
    data: dict[str, Any] = {"_save": "Save"}
    for form in [formset.management_form, *formset.forms]:
        for bound in form:
            value = bound.value()
            data[bound.html_name] = "" if value is None else str(value)
    row = next(i for i, f in enumerate(formset.forms) if f.instance.pk == kpi.pk)
    data[f"form-{row}-order"] = "5"
    response = manager.post(url("kpi_changelist"), data)
    assert response.status_code == 302
    kpi.refresh_from_db()
    assert kpi.order == 5


def test_the_list_names_a_broken_definition_instead_of_failing(manager, study_with_kpis):
    """Its segment lost its conditions: saving the order says so in the row (the list
    has no "counts as success" column for the message to go to)."""
    kpi = KPI.objects.get(code="line_share")
    Clause.objects.filter(segment__code="line").delete()
    response = manager.get(url("kpi_changelist"))
    formset = response.context["cl"].formset
    data: dict[str, Any] = {"_save": "Save"}
    for form in [formset.management_form, *formset.forms]:
        for bound in form:
            value = bound.value()
            data[bound.html_name] = "" if value is None else str(value)
    row = next(i for i, f in enumerate(formset.forms) if f.instance.pk == kpi.pk)
    data[f"form-{row}-order"] = "5"
    response = manager.post(url("kpi_changelist"), data)
    assert response.status_code == 200
    errors = response.context["cl"].formset.forms[row].non_field_errors()
    assert errors == [
        "Counts as success: The segment “Uses LINE most” has no conditions yet: add at least one."
    ]
    kpi.refresh_from_db()
    assert kpi.order == 60


# --- Runs and results are read-only; scoring needs its permission -------------------------


def test_runs_and_results_cannot_be_added_changed_or_deleted(manager, study_with_kpis):
    run = score(study_with_kpis)
    results = run.results.count()
    assert not django_admin.site.is_registered(KPIResult)
    assert manager.get(url("evaluationrun_add")).status_code == 403
    assert manager.get(url("evaluationrun_delete", run.pk)).status_code == 403
    assert manager.post(url("evaluationrun_delete", run.pk), {"post": "yes"}).status_code == 403
    response = manager.post(url("evaluationrun_change", run.pk), {"status": "failed"})
    assert response.status_code == 403
    changelist = manager.get(url("evaluationrun_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    response = manager.post(
        url("evaluationrun_changelist"),
        {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"},
    )
    run.refresh_from_db()
    assert run.status == EvaluationRun.Status.SUCCEEDED
    assert run.results.count() == results


def member(username: str, study: Study, role: str) -> None:
    """A role on one site of ``study``: the study is in the user's scope."""
    user = User.objects.get(username=username)
    Membership.objects.create(user=user, site=study.sites.order_by("code").first(), role=role)


def test_a_staff_user_without_the_permission_cannot_score(
    viewer, study_with_kpis, django_capture_on_commit_callbacks
):
    member("viewer", study_with_kpis, "manager")
    listing = viewer.get(url("studyresults_changelist"))
    assert listing.status_code == 200
    assert "score_now" not in listing.content.decode()
    page = viewer.get(url("studyresults_change", study_with_kpis.pk)).content.decode()
    assert url("studyresults_score", study_with_kpis.pk) not in page
    with django_capture_on_commit_callbacks(execute=True):
        viewer.post(
            url("studyresults_changelist"),
            {"action": "score_now", "_selected_action": [study_with_kpis.pk]},
        )
        refused = viewer.post(url("studyresults_score", study_with_kpis.pk))
    assert refused.status_code == 403
    assert not EvaluationRun.objects.exists()


def test_the_permission_and_the_manager_role_are_enough_to_score(viewer, study_with_kpis):
    member("viewer", study_with_kpis, "manager")
    user = User.objects.get(username="viewer")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="kpi", codename="score_study")
    )
    response = viewer.post(url("studyresults_score", study_with_kpis.pk))
    assert response.status_code == 302
    assert EvaluationRun.objects.get().requested_by == user
