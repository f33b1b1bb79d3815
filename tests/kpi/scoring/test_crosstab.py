"""Frequencies and cross-tabs: the counts equal a count over the answer rows, the intervals
statsmodels' Wilson intervals, in every breakdown, over versions with different bits, and
over the caller's sites only; bad parameters get a message in the user's language."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook
from statsmodels.stats.proportion import proportion_confint

from kpi.definitions.models import Segment
from kpi.scoring import crosstab as xt
from kpi.scoring.counting import study_forms
from surveys import services as survey_services
from surveys.models import Answer, Choice, Membership, Question, Response, Site, Study
from tests.factories import SiteFactory, StudyFactory, complete_answers, reference_instrument

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

CLOSED = ("channels", "reassured", "continue", "reuse", "understood", "tool")


# --- An independent count: Python over the submitted responses' answer rows --------------


def chosen_by_response(study: Study) -> dict[int, tuple[int, dict[str, set[str]]]]:
    """Each submitted response: its site and, per question code, the codes it chose."""
    out: dict[int, tuple[int, dict[str, set[str]]]] = {}
    for r in Response.objects.filter(site__study=study, status="submitted"):
        out[r.pk] = (r.site_id, defaultdict(set))
    rows = Answer.objects.filter(response_id__in=out, choice__isnull=False).values_list(
        "response_id", "question__code", "choice__code"
    )
    for response_id, question, choice in rows:
        out[response_id][1][question].add(choice)
    return out


def expected_column(responses, members, question: str) -> tuple[int, dict[str, int]]:
    """Base (answered ``question``) and per-choice counts among ``members`` (response ids)."""
    base, chosen = 0, defaultdict(int)
    for pk in members:
        picked = responses[pk][1].get(question, set())
        if picked:
            base += 1
        for code in picked:
            chosen[code] += 1
    return base, chosen


def check_column(column: xt.Column, rows: list[xt.Row], index: int, base: int, chosen, level=0.95):
    assert column.counts.answered == base, column.key
    for row in rows:
        cell = row.cells[index]
        assert cell.n == chosen.get(row.item.code, 0), (column.key, row.item.code)
        assert cell.base == base
        if base:
            low, high = proportion_confint(cell.n, base, alpha=1 - level, method="wilson")
            assert cell.low == pytest.approx(low, abs=1e-9)
            assert cell.high == pytest.approx(high, abs=1e-9)
            assert float(cell.share) == pytest.approx(cell.n / base)
        else:
            assert cell.share is None and cell.low is None


def table(study: Study, sites=None, **kwargs) -> xt.Table:
    sites = sites if sites is not None else list(Site.objects.filter(study=study).order_by("code"))
    return xt.crosstab(study=study, sites=sites, whole=True, forms=study_forms(study.pk), **kwargs)


def test_every_closed_question_by_site_equals_a_count_over_the_answers(reference_study):
    responses = chosen_by_response(reference_study)
    sites = list(Site.objects.filter(study=reference_study).order_by("code"))
    for question in CLOSED:
        t = table(reference_study, question=question, by=xt.By.SITE, confidence=Decimal("0.9"))
        assert [c.key for c in t.columns] == [*(s.code for s in sites), "_total"]
        for i, site in enumerate(sites):
            members = [pk for pk, (s, _) in responses.items() if s == site.pk]
            check_column(
                t.columns[i], t.rows, i, *expected_column(responses, members, question), level=0.9
            )
        base, chosen = expected_column(responses, list(responses), question)
        check_column(t.total, t.rows, len(sites), base, chosen, level=0.9)
        assert t.total.counts.respondents == len(responses) == 229


def test_multiple_choice_shares_are_of_respondents_and_the_base_is_who_answered(reference_study):
    responses = chosen_by_response(reference_study)
    t = table(reference_study, question="channels")
    mentions = sum(row.cells[0].n for row in t.rows)
    assert t.question.multiple
    # Every respondent answered channels; several chose more than one.
    assert t.total.counts.answered == 229
    assert mentions == sum(len(c["channels"]) for _, c in responses.values()) > 229
    assert sum(row.cells[0].share for row in t.rows) > 1
    assert "100" in xt.caption(t)


def test_a_conditional_question_counts_those_shown_it_and_those_who_answered(reference_study):
    responses = chosen_by_response(reference_study)
    online = {"anytime", "night", "midwife_chat"}
    shown = sum(1 for _, c in responses.values() if c["channels"] & online)
    answered = sum(1 for _, c in responses.values() if c["understood"])
    t = table(reference_study, question="understood")
    assert (t.total.counts.shown, t.total.counts.answered) == (shown, answered) == (156, 156)
    assert t.question.conditional


def test_by_another_question_and_by_a_segment(reference_study):
    responses = chosen_by_response(reference_study)
    t = table(reference_study, question="tool", by=xt.By.QUESTION, by_question="channels")
    channels = [c.key for c in t.columns[:-2]]
    for i, code in enumerate(channels):
        members = [pk for pk, (_, c) in responses.items() if code in c["channels"]]
        check_column(t.columns[i], t.rows, i, *expected_column(responses, members, "tool"))
    assert t.columns[-2].key == "_none" and t.columns[-2].counts.respondents == 0

    segment = Segment.objects.get(study=reference_study, code="online")
    tagged = {
        c.code
        for c in Choice.objects.filter(
            question__instrument__study=reference_study, question__code="channels"
        )
        if "online" in c.tags
    }
    t = table(reference_study, question="reassured", by=xt.By.SEGMENT, segment=segment)
    inside = [pk for pk, (_, c) in responses.items() if c["channels"] & tagged]
    outside = [pk for pk in responses if pk not in inside]
    check_column(t.columns[0], t.rows, 0, *expected_column(responses, inside, "reassured"))
    check_column(t.columns[1], t.rows, 1, *expected_column(responses, outside, "reassured"))
    assert [c.key for c in t.columns] == ["in", "out", "_total"]


# --- Versions whose bits differ ----------------------------------------------------------------


@pytest.fixture
def two_versions(db) -> Study:
    """Version 1 answered by some; version 2 drops ``night``, adds ``chatbot`` (so every
    later bit moves) and a free-text question; the rest answer version 2."""
    study = StudyFactory()
    v1 = reference_instrument(study)
    sites = [SiteFactory(study=study, code=c) for c in ("aaa", "bbb")]
    people = [
        survey_services.participant_create(site=sites[i % 2], reference=f"R{i}").participant
        for i in range(12)
    ]
    picks = [
        ["anytime", "night"],
        ["night"],
        ["ward_desk"],
        ["none"],
        ["live", "anytime"],
        ["articles"],
    ]
    for i, p in enumerate(people[:6]):
        survey_services.response_submit(
            participant=p,
            answers=complete_answers(channels=picks[i], tool=["line", "phone"][i % 2]),
            language="ja",
        )
    v2 = survey_services.instrument_new_version(instrument=v1)
    channels = v2.questions.get(code="channels")
    channels.choices.get(code="night").delete()
    Choice.objects.create(
        question=channels, code="chatbot", order=99, label_ja="チャットボット", tags=["online"]
    )
    Question.objects.create(
        instrument=v2, code="comments", order=99, type="text", required=False, text_ja="ご意見"
    )
    survey_services.instrument_publish(instrument=v2)
    picks2 = [
        ["chatbot"],
        ["chatbot", "ward_desk"],
        ["anytime"],
        ["none"],
        ["ward_phone"],
        ["checkup"],
    ]
    for i, p in enumerate(people[6:]):
        survey_services.response_submit(
            participant=p,
            answers=complete_answers(channels=picks2[i], tool=["email", "line"][i % 2]),
            language="ja",
        )
    return study


def test_each_version_is_counted_by_its_own_bits(two_versions):
    forms = study_forms(two_versions.pk)
    bits = {tuple(sorted(f.bit_of.values()))[-1] for f in forms.values()}
    assert len(forms) == 2 and len(bits) >= 1
    responses = chosen_by_response(two_versions)
    for question in ("channels", "tool", "understood"):
        t = table(
            two_versions,
            question=question,
            by=xt.By.QUESTION,
            by_question="reassured" if question != "reassured" else "tool",
        )
        base, chosen = expected_column(responses, list(responses), question)
        check_column(t.total, t.rows, len(t.columns) - 1, base, chosen)
    t = table(two_versions, question="channels")
    codes = [r.item.code for r in t.rows]
    assert "night" in codes and "chatbot" in codes  # every version's choices
    assert {r.item.code: r.cells[0].n for r in t.rows}["night"] == 2
    assert {r.item.code: r.cells[0].n for r in t.rows}["chatbot"] == 2


# --- Scope, pages, files and the API ------------------------------------------------------------


def member(study: Study, *sites: Site, name: str = "alice") -> Client:
    user = User.objects.create_user(name, password="pw-member-1234", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="kpi", codename="view_studyresults")
    )
    for site in sites:
        Membership.objects.create(user=user, site=site, role=Membership.Role.MANAGER)
    client = Client()
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def page_url(study: Study, **params) -> str:
    from urllib.parse import urlencode

    return reverse("admin:kpi_studyresults_crosstab", args=[study.pk]) + "?" + urlencode(params)


def api(client: Client, **params):
    return client.get(reverse("api:crosstab"), params)


def test_a_manager_counts_only_their_own_sites_in_every_breakdown(reference_study):
    responses = chosen_by_response(reference_study)
    site = Site.objects.get(study=reference_study, code="fuchu")
    mine = [pk for pk, (s, _) in responses.items() if s == site.pk]
    client = member(reference_study, site)
    segment = Segment.objects.get(study=reference_study, code="online")
    for params in (
        {"by": "site"},
        {"by": "none"},
        {"by": "segment", "segment": segment.pk},
        {"by": "question", "by_question": "tool"},
    ):
        page = client.get(page_url(reference_study, question="reassured", **params))
        assert page.status_code == 200
        t = page.context["table"]
        base, chosen = expected_column(responses, mine, "reassured")
        check_column(t.total, t.rows, len(t.columns) - 1, base, chosen)
        assert t.total.counts.respondents == len(mine)
        assert "setagaya" not in [c.key for c in t.columns]
        body = api(client, study=reference_study.pk, question="reassured", **params).json()
        assert body["columns"][-1]["answered"] == base
        assert all(c["key"] not in ("setagaya", "itabashi") for c in body["columns"])
    assert "Setagaya" not in page.content.decode() and "世田谷" not in page.content.decode()


def test_a_stranger_sees_no_study(reference_study):
    other = StudyFactory()
    client = member(other, SiteFactory(study=other), name="bob")
    assert client.get(page_url(reference_study, question="tool")).status_code == 404
    assert api(client, study=reference_study.pk, question="tool").status_code == 404


# Django's own messages are in the Japanese catalogue already; this branch's own ones
# (locale/ja/pending/h15-xtab.po) once the lead merges it: until then they are checked to
# be the messages of the active language, whatever it holds.
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"question": "nope"}, "question"),
        ({"question": "comments"}, "question"),  # free text
        ({"question": "tool", "confidence": "abc"}, "confidence"),
        ({"question": "tool", "confidence": "0.95"}, "confidence"),
        ({"question": "tool", "by": "everything"}, "by"),
        ({"question": "tool", "by": "segment"}, "segment"),
        ({"question": "tool", "by": "segment", "segment": "999999"}, "segment"),
        ({"question": "tool", "by": "question", "by_question": "tool"}, "by_question"),
        ({"question": "tool", "by": "question", "by_question": "comments"}, "by_question"),
    ],
)
def test_bad_parameters_get_a_message_in_the_users_language(two_versions, params, field):
    from django.utils import translation

    admin = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ja"
    page = client.get(page_url(two_versions, **params))
    assert page.status_code == 200
    assert field in page.context["form"].errors and page.context["table"] is None
    on_page = page.context["form"].errors[field][0]
    body = api(client, study=two_versions.pk, **params)
    assert body.status_code == 400
    message = body.json()["error"]["fields"][field][0]
    assert message == on_page
    with translation.override("ja"):
        mine = {
            "segment": translation.gettext("Choose the segment to break down by."),
            "by_question": translation.gettext("Choose a question other than the one counted."),
        }
    if (field, params.get(field)) in (("segment", None), ("by_question", "tool")):
        assert message == mine[field]
    else:
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in message), (
            message
        )


def test_another_studys_question_is_refused(two_versions):
    other = StudyFactory()
    v = reference_instrument(other)
    admin = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(admin)
    draft = survey_services.instrument_new_version(instrument=v)
    q = Question.objects.create(
        instrument=draft, code="elsewhere", order=98, type="single", text_ja="x"
    )
    Choice.objects.create(question=q, code="a", order=1, label_ja="a")
    survey_services.instrument_publish(instrument=draft)
    assert api(client, study=other.pk, question="elsewhere").status_code == 200
    assert api(client, study=two_versions.pk, question="elsewhere").status_code == 400
    assert api(client, study="abc", question="tool").status_code == 404


def test_the_files_hold_the_table_and_no_formula(two_versions):
    from surveys import answers

    answers._FROZEN_FORMS.clear()  # labels changed behind the kept forms' back
    # Every count as the table has it: small-cell protection off (its marks in the files:
    # tests/kpi/scoring/test_small_cells.py).
    Study.objects.filter(pk=two_versions.pk).update(small_cell_threshold=1)
    Choice.objects.filter(question__instrument__study=two_versions, code="line").update(
        label_ja='=HYPERLINK("http://x")', label_en='=HYPERLINK("http://x")'
    )
    admin = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    t = client.get(page_url(two_versions, question="tool", by="site")).context["table"]
    got = client.get(page_url(two_versions, question="tool", by="site", download="csv"))
    assert got["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    by_code = {line[0]: line for line in lines[1:]}
    assert by_code["line"][1].startswith("'=")
    for row in t.rows:
        for i, cell in enumerate(row.cells):
            assert int(by_code[row.item.code][2 + 4 * i]) == cell.n
    assert int(by_code["_base"][2 + 4 * (len(t.columns) - 1)]) == t.total.counts.answered
    got = client.get(page_url(two_versions, question="tool", by="site", download="xlsx"))
    sheet = load_workbook(io.BytesIO(got.content)).active
    values = list(sheet.iter_rows(values_only=True))
    xlsx_rows = {r[0]: r for r in values[3:]}
    assert xlsx_rows["line"][1].startswith("'=")
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    for row in t.rows:
        assert xlsx_rows[row.item.code][2] == row.cells[0].n


def test_the_number_of_queries_does_not_grow_with_the_responses(two_versions):
    admin = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(admin)
    params = {"question": "channels", "by": "question", "by_question": "tool"}

    def count() -> tuple[int, int]:
        client.get(page_url(two_versions, **params))  # warm the kept forms
        with CaptureQueriesContext(connection) as page:
            assert client.get(page_url(two_versions, **params)).status_code == 200
        with CaptureQueriesContext(connection) as through_api:
            assert api(client, study=two_versions.pk, **params).status_code == 200
        return len(page), len(through_api)

    before = count()
    site = Site.objects.filter(study=two_versions).first()
    for i in range(20):
        p = survey_services.participant_create(site=site, reference=f"X{i}").participant
        survey_services.response_submit(participant=p, answers=complete_answers(), language="ja")
    assert count() == before


def test_the_results_page_links_to_the_cross_tabs(reference_study):
    admin = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("admin:kpi_studyresults_change", args=[reference_study.pk]))
    assert (
        reverse("admin:kpi_studyresults_crosstab", args=[reference_study.pk])
        in page.content.decode()
    )
