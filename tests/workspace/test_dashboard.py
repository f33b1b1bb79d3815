"""The dashboard, the admin's first screen: per study, the user's sites' response rate
today and over time, drafts and submissions, the latest scoring's KPIs as cards with what
is not yet scored, and the next steps. Expected figures are computed here, in Python, from
the rows the test made (never from the page's own aggregates)."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from kpi.models import EvaluationRun, KPIResult
from kpi.scoring import execution
from surveys.models import Membership, Participant, Response, Site, Study
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, reference_instrument

JST = ZoneInfo("Asia/Tokyo")
SVG = "{http://www.w3.org/2000/svg}"
INDEX = "/admin/"
PERMS = (
    "surveys.view_study",
    "kpi.view_evaluationrun",
    "kpi.view_evaluation",
    "kpi.add_evaluation",
    "kpi.score_study",
    "fieldwork.view_studyfieldwork",
)


@pytest.fixture(autouse=True)
def _english():  # type: ignore[no-untyped-def]
    with translation.override("en"):
        yield


def staff(username: str, *sites: Site, role: str = Membership.Role.MANAGER) -> User:
    user = User.objects.create_user(username, password="pw-dash-1234", is_staff=True)
    for perm in PERMS:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    for site in sites:
        Membership.objects.create(user=user, site=site, role=role)
    return user


def client_for(user: User, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def populate(
    study: Study,
    site: Site,
    *,
    active: int,
    submitted_days: list[dt.datetime],
    drafts: int,
    withdrawn_respondents: int = 0,
    withdrawn_silent: int = 0,
) -> None:
    """Participants of ``site`` and their responses: one submission per moment of
    ``submitted_days``, ``drafts`` drafts, the rest without a response."""
    instrument = study.instruments.get()
    people = [ParticipantFactory(site=site) for _ in range(active)]
    gone = [ParticipantFactory(site=site) for _ in range(withdrawn_respondents + withdrawn_silent)]
    Participant.objects.filter(pk__in=[p.pk for p in gone]).update(
        status=Participant.Status.WITHDRAWN
    )
    respondents = (
        people[: len(submitted_days) - withdrawn_respondents] + gone[:withdrawn_respondents]
    )
    assert len(respondents) == len(submitted_days)
    for person, moment in zip(respondents, submitted_days, strict=True):
        Response.objects.create(
            participant=person,
            instrument=instrument,
            site=site,
            source=Response.Source.WEB,
            status=Response.Status.SUBMITTED,
            started_at=moment - dt.timedelta(minutes=5),
            submitted_at=moment,
        )
    for person in people[len(respondents) : len(respondents) + drafts]:
        Response.objects.create(
            participant=person, instrument=instrument, site=site, source=Response.Source.WEB
        )


def expected(site: Site, today: dt.date) -> dict[str, object]:
    """The figures of ``site`` from its rows, one participant at a time."""
    invited = drafts = submitted = submitted_today = 0
    by_day: dict[dt.date, int] = {}
    for p in Participant.objects.filter(site=site).select_related("response"):
        response = getattr(p, "response", None)
        done = response is not None and response.status == Response.Status.SUBMITTED
        if p.status == Participant.Status.ACTIVE or done:
            invited += 1
        if response is not None and not done:
            drafts += 1
        if done:
            submitted += 1
            day = response.submitted_at.astimezone(JST).date()
            by_day[day] = by_day.get(day, 0) + 1
            submitted_today += day == today
    return {
        "invited": invited,
        "drafts": drafts,
        "submitted": submitted,
        "today": submitted_today,
        "by_day": by_day,
    }


def pct1(value: Fraction) -> str:
    """Half up to one decimal, as published."""
    tenths = (value * 1000 * 2 + 1) // 2
    return f"{tenths // 10}.{tenths % 10}\u00a0%"


def section(html: str, study: Study) -> str:
    found = re.search(
        rf'<section class="hyoka-dash-study" id="study-{study.pk}".*?</section>', html, re.S
    )
    assert found is not None, f"no section for {study.code}"
    return found.group(0)


def cells(row_html: str) -> dict[str, str]:
    return {k: unescape(v) for k, v in re.findall(r'data-cell="(\w+)">(.*?)</td>', row_html)}


def site_row(html: str, code: str) -> dict[str, str]:
    found = re.search(rf'<tr data-site="{code}">(.*?)</tr>', html, re.S)
    assert found is not None, f"no row for {code!r}"
    return cells(found.group(1))


def chart_of(html: str) -> ET.Element:
    found = re.search(r"<svg[^>]*hyoka-rate-chart.*?</svg>", html, re.S)
    assert found is not None, "no chart"
    return ET.fromstring(found.group(0))  # noqa: S314 (markup the server made)


class World:
    """A study with two sites (Setagaya, Nerima) and a second study with one site."""

    def __init__(self) -> None:
        self.today = timezone.localdate(timezone=JST)
        now = timezone.now()
        self.study = StudyFactory(code="dash", period_end=self.today + dt.timedelta(days=30))
        reference_instrument(self.study)
        self.setagaya = SiteFactory(study=self.study, code="setagaya", name_en="Setagaya")
        self.nerima = SiteFactory(study=self.study, code="nerima", name_en="Nerima")
        days = [now - dt.timedelta(days=d) for d in (3, 3, 2, 0)]
        populate(
            self.study,
            self.setagaya,
            active=9,
            submitted_days=days,
            drafts=2,
            withdrawn_respondents=1,
            withdrawn_silent=1,
        )
        populate(
            self.study, self.nerima, active=5, submitted_days=[now - dt.timedelta(days=1)], drafts=3
        )
        self.other = StudyFactory(code="other", name_en="Other study")
        reference_instrument(self.other)
        self.other_site = SiteFactory(study=self.other, code="chofu", name_en="Chofu")
        populate(self.other, self.other_site, active=4, submitted_days=[now], drafts=0)


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return World()


# --- Figures and scope ------------------------------------------------------------------


def test_each_site_row_gives_its_invited_drafts_submissions_and_rate(world: World) -> None:
    user = staff("both", world.setagaya, world.nerima)
    html = client_for(user).get(INDEX).content.decode()
    mine = section(html, world.study)
    for site in (world.setagaya, world.nerima):
        want = expected(site, world.today)
        got = site_row(mine, site.code)
        assert got == {
            "invited": str(want["invited"]),
            "drafts": str(want["drafts"]),
            "submitted": str(want["submitted"]),
            "today": str(want["today"]),
            "rate": pct1(Fraction(want["submitted"], want["invited"])),  # type: ignore[arg-type]
        }, site.code
    # The whole study: the sum of both.
    both = [expected(s, world.today) for s in (world.setagaya, world.nerima)]
    total = site_row(mine, "")
    assert int(total["submitted"]) == sum(w["submitted"] for w in both)  # type: ignore[misc]
    assert int(total["invited"]) == sum(w["invited"] for w in both)  # type: ignore[misc]
    assert "Whole study" in mine
    # A study the user is not a member of is not on the page.
    assert f'id="study-{world.other.pk}"' not in html and "Chofu" not in html


def test_the_chart_gives_each_site_its_line_and_the_whole_study(world: World) -> None:
    user = staff("charted", world.setagaya, world.nerima)
    mine = section(client_for(user).get(INDEX).content.decode(), world.study)
    svg = chart_of(mine)
    lines = svg.findall(f".//{SVG}polyline")
    assert sorted(p.get("data-site") or "" for p in lines) == ["", "nerima", "setagaya"]
    assert (
        svg.get("aria-labelledby")
        == f"study-{world.study.pk}-chart-title study-{world.study.pk}-chart-desc"
    )
    # The last point of each line is its rate today, said in the chart's description.
    desc = "".join(svg.find(f"{SVG}desc").itertext())  # type: ignore[union-attr]
    for site in (world.setagaya, world.nerima):
        want = expected(site, world.today)
        assert f"{site.name}: {pct1(Fraction(want['submitted'], want['invited']))}" in desc  # type: ignore[arg-type]
    # Its text alternative: a table whose last column is today's cumulative rate.
    table = mine.split('class="hyoka-dash-chart-table"')[1]
    rows = dict(re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', table, re.S))
    last = re.findall(r'<td class="hyoka-num">(.*?)</td>', rows["Setagaya"])[-1]
    want = expected(world.setagaya, world.today)
    assert unescape(last) == pct1(Fraction(want["submitted"], want["invited"]))  # type: ignore[arg-type]


def test_a_manager_of_one_site_never_sees_the_other_sites_figures(world: World) -> None:
    user = staff("setagaya-only", world.setagaya)
    html = client_for(user).get(INDEX).content.decode()
    mine = section(html, world.study)
    assert "Nerima" not in html and 'data-site="nerima"' not in html
    want = expected(world.setagaya, world.today)
    assert site_row(mine, "setagaya")["submitted"] == str(want["submitted"])
    # The totals are Setagaya's own, called "your sites", never the study's.
    totals = dict(re.findall(r'data-figure="(\w+)">(.*?)</dd>', mine))
    assert totals["submitted"] == str(want["submitted"])
    assert totals["drafts"] == str(want["drafts"])
    assert "Whole study" not in mine and "Your sites" in mine
    svg = chart_of(mine)
    assert [p.get("data-site") for p in svg.findall(f".//{SVG}polyline")] == ["setagaya"]
    assert "Nerima" not in ET.tostring(svg, encoding="unicode")


def test_a_user_without_studies_or_permission_still_reaches_every_admin_page(world: World) -> None:
    stranger = staff("stranger")
    html = client_for(stranger).get(INDEX).content.decode()
    assert "You are not a member of any study yet." in html
    assert "All pages of the administration" in html and 'class="app-surveys' in html
    bare = User.objects.create_user("bare", password="pw-dash-1234", is_staff=True)
    html = client_for(bare).get(INDEX).content.decode()
    assert "hyoka-dash-study" not in html and "All pages of the administration" in html


def test_a_superuser_sees_every_study(world: World) -> None:
    root = User.objects.create_superuser("root", password="pw-dash-1234")
    html = client_for(root).get(INDEX).content.decode()
    assert f'id="study-{world.study.pk}"' in html and f'id="study-{world.other.pk}"' in html
    assert "Figures cover only the sites you belong to." not in html


# --- The latest scoring -----------------------------------------------------------------


def test_the_cards_show_the_latest_scoring_and_what_came_after_it(reference_study) -> None:  # type: ignore[no-untyped-def]
    run = EvaluationRun.objects.create(study=reference_study, trigger=EvaluationRun.Trigger.COMMAND)
    run = execution.run_execute(run_id=run.pk)
    # Five responses arrive after the cut-off: three at Setagaya, two at Itabashi.
    later = run.cutoff + dt.timedelta(hours=1)
    for code, n in (("setagaya", 3), ("itabashi", 2)):
        ids = list(
            Response.objects.filter(
                site__code=code, site__study=reference_study, status=Response.Status.SUBMITTED
            ).values_list("pk", flat=True)[:n]
        )
        Response.objects.filter(pk__in=ids).update(submitted_at=later)
    setagaya = reference_study.sites.get(code="setagaya")

    def unscored(sites: list[Site]) -> int:
        return sum(
            1
            for r in Response.objects.filter(site__in=sites, status=Response.Status.SUBMITTED)
            if r.submitted_at > run.cutoff
        )

    everyone = staff("all-sites", *reference_study.sites.all())
    html = unescape(client_for(everyone).get(INDEX).content.decode())
    mine = section(html, reference_study)
    assert f"{unscored(list(reference_study.sites.all()))} responses not yet scored" in mine
    assert reverse("admin:kpi_studyresults_score", args=[reference_study.pk]) in mine
    # A card per whole-study result, in order, with its base as numerator / denominator.
    results = list(
        KPIResult.objects.filter(run=run, site__isnull=True).order_by("order", "kpi_code")
    )
    cards = re.findall(r'<li class="hyoka-card[^"]*" data-kpi="([^"]+)">(.*?)</li>', mine, re.S)
    assert [code for code, _ in cards] == [r.kpi_code for r in results]
    for (_, card), result in zip(cards, results, strict=True):
        assert result.name in card
        base = re.search(r'data-cell="base">(.*?)</dd>', card, re.S)
        assert base is not None
        assert base.group(1).startswith(f"{result.numerator:,} / {result.denominator:,}")

    one = staff("setagaya-scorer", setagaya)
    html = unescape(client_for(one).get(INDEX).content.decode())
    mine = section(html, reference_study)
    assert f"{unscored([setagaya])} responses not yet scored (at your sites)" in mine
    assert "Itabashi" not in mine


def test_a_viewer_gets_no_score_button_and_an_unscored_study_says_so(world: World) -> None:
    viewer = staff("viewer", world.setagaya, role=Membership.Role.VIEWER)
    mine = section(client_for(viewer).get(INDEX).content.decode(), world.study)
    assert reverse("admin:kpi_studyresults_score", args=[world.study.pk]) not in mine
    assert "This study has not been scored yet." in mine
    assert reverse("admin:fieldwork_studyfieldwork_change", args=[world.study.pk]) in mine


def test_it_reads_in_japanese(world: World) -> None:
    user = staff("nihongo", world.setagaya, world.nerima)
    html = client_for(user, "ja").get(INDEX).content.decode()
    assert '<html lang="ja"' in html
    assert "回収率" in html and "今すぐ集計" in html


# --- Speed: a fixed number of queries --------------------------------------------------


def test_the_number_of_queries_does_not_grow_with_studies_sites_or_responses(db) -> None:  # type: ignore[no-untyped-def]
    root = User.objects.create_superuser("counter", password="pw-dash-1234")
    client = client_for(root)
    now = timezone.now()

    def add_study(sites: int, per_site: int) -> None:
        study = StudyFactory(period_end=timezone.localdate() + dt.timedelta(days=9))
        reference_instrument(study)
        for _ in range(sites):
            site = SiteFactory(study=study)
            populate(
                study,
                site,
                active=per_site + 2,
                submitted_days=[now - dt.timedelta(days=d % 5) for d in range(per_site)],
                drafts=1,
                withdrawn_respondents=1,
            )
        run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
        execution.run_execute(run_id=run.pk)

    add_study(1, 2)
    client.get(INDEX)  # caches warmed
    with CaptureQueriesContext(connection) as few:
        assert client.get(INDEX).status_code == 200
    for _ in range(3):
        add_study(3, 6)
    with CaptureQueriesContext(connection) as many:
        html = client.get(INDEX).content.decode()
    assert html.count('class="hyoka-dash-study"') == 4
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
