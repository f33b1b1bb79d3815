"""The fieldwork watch: per site and per Japanese day, the figures a manager reads; the
cumulative response rate as SVG; what another reminder could still change; the delivery
log as CSV. Expected figures are computed here from the rows the test made."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from fieldwork import watch
from fieldwork.models import Delivery
from kpi.models import KPI, EvaluationRun
from kpi.scoring import execution
from surveys import scoping
from surveys.models import LinkOpening, Membership, Participant, Response, Site
from tests.factories import ParticipantFactory, SiteFactory

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

JST = ZoneInfo("Asia/Tokyo")
UTC = dt.UTC
PASSWORD = "pw-watch-1234"
SVG = "{http://www.w3.org/2000/svg}"
PLANNER = re.compile(r"^(SAVEPOINT|RELEASE SAVEPOINT)|current_setting\(|set_config\(")


def jst(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=JST)


def at(queryset, moment: dt.datetime, **fields):  # type: ignore[no-untyped-def]
    """Set auto_now_add fields after the fact."""
    queryset.update(**{name: moment for name in fields.get("names", ())})


class World:
    """Two sites of a study (Setagaya and Nerima) with messages, openings and responses
    around midnight in Japan (where the UTC day differs), and the events as the test
    recorded them: (site code, figure, moment)."""

    def __init__(self, study) -> None:  # type: ignore[no-untyped-def]
        self.study = study
        self.instrument = study.instruments.get()
        self.setagaya = SiteFactory(study=study, code="setagaya", name_ja="世田谷区")
        self.nerima = SiteFactory(study=study, code="nerima", name_ja="練馬区")
        self.events: list[tuple[str, str, dt.datetime]] = []
        self.base: Counter[str] = Counter()

    def participant(self, site: Site, created: dt.datetime, *, withdrawn: bool = False):  # type: ignore[no-untyped-def]
        p = ParticipantFactory(site=site)
        status = Participant.Status.WITHDRAWN if withdrawn else Participant.Status.ACTIVE
        Participant.objects.filter(pk=p.pk).update(created_at=created, status=status)
        if not withdrawn:
            self.base[site.code] += 1
            self.events.append((site.code, "registered", created))
        return p

    def delivery(self, p, *, kind: str, status: str, moment: dt.datetime, error: str = ""):  # type: ignore[no-untyped-def]
        d = Delivery.objects.create(
            participant=p,
            channel=Delivery.Channel.EMAIL,
            kind=kind,
            status=status,
            attempts=1,
            last_error=error,
            due_at=moment - dt.timedelta(minutes=5),
            sent_at=moment if status == Delivery.Status.SENT else None,
            finished_at=moment if status != Delivery.Status.QUEUED else None,
        )
        Delivery.objects.filter(pk=d.pk).update(created_at=moment - dt.timedelta(minutes=10))
        code = p.site.code
        if status == Delivery.Status.SENT:
            self.events.append((code, "delivered", moment))
            if kind == Delivery.Kind.INVITATION:
                self.events.append((code, "invitation", moment))
        elif status == Delivery.Status.FAILED:
            self.events.append((code, "failed", moment))
        return d

    def opened(self, p, moment: dt.datetime) -> None:  # type: ignore[no-untyped-def]
        LinkOpening.objects.create(participant=p, opened_at=moment)
        self.events.append((p.site.code, "opened", moment))

    def response(self, p, started: dt.datetime, submitted: dt.datetime | None = None) -> None:  # type: ignore[no-untyped-def]
        Response.objects.create(
            participant=p,
            instrument=self.instrument,
            site=p.site,
            source=Response.Source.WEB,
            status=Response.Status.SUBMITTED if submitted else Response.Status.DRAFT,
            started_at=started,
            submitted_at=submitted,
        )
        self.events.append((p.site.code, "started", started))
        if submitted:
            self.events.append((p.site.code, "submitted", submitted))

    def expected(self, code: str) -> dict[dt.date, dict[str, int]]:
        """Per Japanese day, the figures of one site, from the recorded events. Setagaya
        invites by e-mail (invitations count); Nerima has no deliveries (registrations
        count)."""
        by_delivery = any(c == code and f == "invitation" for c, f, _ in self.events)
        days: dict[dt.date, Counter[str]] = {}
        for c, figure, moment in self.events:
            if c != code:
                continue
            name = {"invitation": "invited", "registered": "invited"}.get(figure, figure)
            if figure == "invitation" and not by_delivery:
                continue
            if figure == "registered" and by_delivery:
                continue
            days.setdefault(moment.astimezone(JST).date(), Counter())[name] += 1
        return {d: {f: n[f] for f in watch.FIGURES} for d, n in days.items()}


def build(world: World, *, scale: int = 1) -> None:
    s, n = world.setagaya, world.nerima
    for k in range(scale):
        # Setagaya: registered on the 1st, invited by e-mail late on the 1st (JST 23:50,
        # still the 1st in UTC too) and just after midnight (the 2nd in Japan, the 1st in
        # UTC).
        a = world.participant(s, jst(1, 9, k % 50))
        b = world.participant(s, jst(1, 9, 30))
        c = world.participant(s, jst(1, 10))
        world.participant(s, jst(1, 11), withdrawn=True)
        world.delivery(a, kind="invitation", status="sent", moment=jst(1, 23, 50))
        world.delivery(b, kind="invitation", status="sent", moment=jst(2, 0, 10))
        world.delivery(c, kind="invitation", status="failed", moment=jst(2, 0, 20), error="550")
        world.delivery(b, kind="reminder", status="sent", moment=jst(4, 8))
        world.delivery(c, kind="reminder", status="queued", moment=jst(5, 8))
        world.opened(a, jst(2, 7))
        world.opened(b, jst(3, 8, 59))
        world.response(a, jst(2, 7, 1), jst(2, 7, 20))
        world.response(b, jst(3, 9), None)
        # Nerima: no deliveries (links sent some other way); a submission at 00:30 JST.
        d = world.participant(n, jst(1, 8, 59))
        e = world.participant(n, jst(3, 0, 30))
        world.opened(d, jst(3, 0, 25))
        world.response(d, jst(3, 0, 26), jst(3, 0, 30))
        world.response(e, jst(4, 23, 59))


@pytest.fixture
def world(study) -> World:  # type: ignore[no-untyped-def]
    w = World(study)
    build(w)
    return w


def client_for(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def staff(username: str, *perms: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return user


WATCH_PERMS = (
    "fieldwork.view_studyfieldwork",
    "fieldwork.view_delivery",
    "kpi.view_evaluationrun",
    "kpi.view_studyresults",
    "surveys.view_study",
)


def member(username: str, *sites: Site, role: str = Membership.Role.MANAGER) -> User:
    user = staff(username, *WATCH_PERMS)
    for site in sites:
        Membership.objects.create(user=user, site=site, role=role)
    return user


def chart_of(html: str) -> ET.Element:
    """The page's chart, parsed as XML (markup the server made, not outside input)."""
    found = re.search(r"<svg[^>]*hyoka-rate-chart.*?</svg>", html, re.S)
    assert found is not None, "no chart on the page"
    return ET.fromstring(found.group(0))  # noqa: S314


def page_url(study) -> str:  # type: ignore[no-untyped-def]
    return reverse("admin:fieldwork_studyfieldwork_change", args=[study.pk])


def csv_url(study) -> str:  # type: ignore[no-untyped-def]
    return reverse("admin:fieldwork_studyfieldwork_deliveries", args=[study.pk])


# --- The figures ---------------------------------------------------------------------------


def test_the_figures_per_site_and_japanese_day_match_the_rows(world: World) -> None:
    result = watch.study_watch(world.study, Site.objects.all())
    assert [s.site.code for s in result.sites] == ["nerima", "setagaya"]
    for s in result.sites:
        got = {day: dict(zip(watch.FIGURES, f.values(), strict=True)) for day, f in s.days.items()}
        assert got == world.expected(s.site.code), s.site.code
        assert s.base == world.base[s.site.code]
    by_code = {s.site.code: s for s in result.sites}
    assert by_code["setagaya"].invited_by_delivery is True
    assert by_code["nerima"].invited_by_delivery is False
    # Midnight in Japan, not in UTC: the 00:10 invitation is on the 2nd.
    assert by_code["setagaya"].days[dt.date(2026, 11, 2)].invited == 1
    assert by_code["nerima"].days[dt.date(2026, 11, 3)].submitted == 1
    # Totals: the sum of every day of every site.
    for i, name in enumerate(watch.FIGURES):
        expected = sum(
            day[name] for code in ("nerima", "setagaya") for day in world.expected(code).values()
        )
        assert result.total.values()[i] == expected, name
    assert result.whole_study


def test_the_cumulative_rate_is_submitted_to_date_over_the_base(world: World) -> None:
    result = watch.study_watch(world.study, Site.objects.all())
    days = result.days()
    assert days[0] == dt.date(2026, 11, 1) and days[-1] == dt.date(2026, 11, 4)
    submitted = sorted(m.astimezone(JST).date() for c, f, m in world.events if f == "submitted")
    total = sum(world.base.values())
    assert result.cumulative_rate(days) == [
        Fraction(sum(1 for d in submitted if d <= day), total) for day in days
    ]


def test_the_number_of_queries_does_not_grow_with_the_data(study) -> None:  # type: ignore[no-untyped-def]
    small = World(study)
    build(small, scale=1)
    with CaptureQueriesContext(connection) as few:
        watch.study_watch(study, Site.objects.all())
    build(small, scale=4)
    with CaptureQueriesContext(connection) as many:
        result = watch.study_watch(study, Site.objects.all())
    assert len(many) == len(few)
    # INVITED counted as two groupings (watch.py); on PostgreSQL also the statements
    # setting the planner for the per-day counts (surveys/planner.py) and their savepoint.
    reading = [q for q in many.captured_queries if not PLANNER.search(q["sql"])]
    assert len(reading) <= 10
    assert result.total.submitted == 5 * 2


def test_the_page_makes_as_many_queries_for_more_data(study) -> None:  # type: ignore[no-untyped-def]
    small = World(study)
    build(small, scale=1)
    client = client_for(member("counter", small.setagaya, small.nerima))
    client.get(page_url(study))  # sessions, permissions and caches warmed
    with CaptureQueriesContext(connection) as few:
        assert client.get(page_url(study)).status_code == 200
    build(small, scale=5)
    with CaptureQueriesContext(connection) as many:
        assert client.get(page_url(study)).status_code == 200
    assert len(many) == len(few)


# --- The page and its scope ---------------------------------------------------------------


def test_a_setagaya_manager_sees_only_setagaya(world: World) -> None:
    user = member("setagaya-manager", world.setagaya)
    response = client_for(user).get(page_url(world.study))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-site="setagaya"' in html
    assert "nerima" not in html and "練馬" not in html
    assert "Your sites" in html and "Whole study" not in html.split('id="rate-chart"')[1]
    assert "Only your sites are shown" in html
    # Setagaya's own totals, not the study's.
    expected = world.expected("setagaya")
    total = [sum(day[f] for day in expected.values()) for f in watch.FIGURES]
    footer = re.search(r"<tfoot>(.*?)</tfoot>", html, re.S)
    assert footer is not None
    assert [int(n) for n in re.findall(r'hyoka-num">(\d+)<', footer.group(1))] == total
    # The chart: one line, Setagaya's (with one site, it is the total too).
    svg = chart_of(html)
    lines = svg.findall(f".//{SVG}polyline")
    assert [p.get("data-site") for p in lines] == ["setagaya"]
    assert world.nerima.name_en not in ET.tostring(svg, encoding="unicode")


def test_a_manager_of_both_sites_sees_both_lines_and_the_whole_study(world: World) -> None:
    user = member("both", world.setagaya, world.nerima, role=Membership.Role.VIEWER)
    html = client_for(user).get(page_url(world.study)).content.decode()
    svg = chart_of(html)
    assert svg.find(f"{SVG}title") is not None and svg.find(f"{SVG}desc") is not None
    assert svg.get("role") == "img"
    site_lines = [p for p in svg.findall(f".//{SVG}polyline") if p.get("data-site")]
    assert sorted(p.get("data-site") for p in site_lines) == ["nerima", "setagaya"]
    assert len(svg.findall(f".//{SVG}polyline")) == len(site_lines) + 1
    assert "Whole study" in html


def test_the_list_of_studies_shows_the_members_studies_only(world: World) -> None:
    user = member("lister", world.setagaya)
    other = SiteFactory()
    html = (
        client_for(user).get(reverse("admin:fieldwork_studyfieldwork_changelist")).content.decode()
    )
    assert page_url(world.study) in html
    assert page_url(other.study) not in html


def test_strangers_get_nothing(world: World) -> None:
    other = SiteFactory()  # a site of another study
    stranger = member("stranger", other)
    assert client_for(stranger).get(page_url(world.study)).status_code == 404
    assert client_for(stranger).get(csv_url(world.study)).status_code == 404
    unpermitted = User.objects.create_user("no-perm", password=PASSWORD, is_staff=True)
    Membership.objects.create(user=unpermitted, site=world.setagaya, role=Membership.Role.MANAGER)
    assert client_for(unpermitted).get(page_url(world.study)).status_code == 403
    assert client_for(unpermitted).get(csv_url(world.study)).status_code == 403
    assert (
        client_for(stranger)
        .get(page_url(world.study).replace(str(world.study.pk), "abc"))
        .status_code
        == 404
    )
    anonymous = Client().get(page_url(world.study))
    assert anonymous.status_code == 302  # to the login page


def test_the_study_page_links_to_the_watch(world: World) -> None:
    user = member("linker", world.setagaya)
    html = (
        client_for(user)
        .get(reverse("admin:surveys_study_change", args=[world.study.pk]))
        .content.decode()
    )
    assert page_url(world.study) in html
    html = (
        client_for(user)
        .get(reverse("admin:kpi_studyresults_change", args=[world.study.pk]))
        .content.decode()
    )
    assert page_url(world.study) in html


# --- The outlook ---------------------------------------------------------------------------


def test_without_a_scoring_the_page_says_so_with_a_link_to_score(world: World) -> None:
    user = member("unscored", world.setagaya)
    html = client_for(user).get(page_url(world.study)).content.decode()
    assert "has not been scored yet" in html
    assert reverse("admin:kpi_studyresults_change", args=[world.study.pk]) in html


def test_the_outlook_says_how_many_more_responses_settle_each_verdict(reference_study) -> None:  # type: ignore[no-untyped-def]
    from kpi.scoring.selectors import fieldwork_outlook

    run = EvaluationRun.objects.create(study=reference_study, trigger=EvaluationRun.Trigger.COMMAND)
    execution.run_execute(run_id=run.pk)
    setagaya = reference_study.sites.get(code="setagaya")
    user = member("outlook", setagaya, role=Membership.Role.VIEWER)
    outlooks = fieldwork_outlook(user, reference_study)
    assert outlooks
    html = unescape(client_for(user).get(page_url(reference_study)).content.decode())
    section = html.split('id="outlook"')[1].split('id="rate-chart"')[0]
    rows = re.findall(r'<tr class="hyoka-outlook.*?</tr>', section, re.S)
    assert len(rows) == len(outlooks)
    for outlook, row in zip(outlooks, rows, strict=True):
        assert outlook.result.name in row
        if outlook.to_settle == 0:
            assert "Settled: non-response can no longer change this verdict." in row
        else:
            n = f"{outlook.to_settle:,}"
            word = "response" if outlook.to_settle == 1 else "responses"
            assert f"{n} more {word} would settle it" in row
    # No response-rate target in the reference study: no reference line.
    assert 'class="hyoka-target"' not in html
    assert "Nerima" not in html and "nerima" not in html.split('id="per-day"')[1]
    # In Japanese too.
    client = client_for(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ja"
    assert client.get(page_url(reference_study)).status_code == 200


def test_the_response_rate_target_is_a_reference_line(reference_study) -> None:  # type: ignore[no-untyped-def]
    KPI.objects.filter(study=reference_study, code="response_rate").update(
        comparator=">=", threshold=Decimal("70")
    )
    user = member("target", *reference_study.sites.all())
    html = client_for(user).get(page_url(reference_study)).content.decode()
    svg = chart_of(html)
    target = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "hyoka-target"]
    assert len(target) == 1
    # 70 % of the plot's 300 px height from its bottom (the plot starts 14 px down).
    assert float(target[0].get("y1")) == pytest.approx(14 + 300 * 0.3)
    assert "at least 70" in "".join(svg.itertext())
    # A line per site with someone invited (a site with nobody has no rate), and the total.
    with_participants = (
        Participant.objects.filter(site__study=reference_study).values("site").distinct().count()
    )
    assert len(svg.findall(f".//{SVG}polyline")) == with_participants + 1


# --- The delivery log ----------------------------------------------------------------------


def test_the_delivery_log_is_scoped_and_safe_for_spreadsheets(world: World) -> None:
    formula = world.participant(world.setagaya, jst(1, 12))
    Participant.objects.filter(pk=formula.pk).update(reference='=HYPERLINK("http://x")')
    formula.refresh_from_db()
    world.delivery(
        formula, kind="invitation", status="failed", moment=jst(2, 1), error="+cmd|'/c calc'!A1"
    )
    nerima_one = Participant.objects.filter(site=world.nerima).first()
    assert nerima_one is not None
    world.delivery(nerima_one, kind="reminder", status="sent", moment=jst(4, 9))

    user = member("exporter", world.setagaya)
    response = client_for(user).get(csv_url(world.study))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "participant",
        "site",
        "channel",
        "kind",
        "status",
        "attempts",
        "last_error",
        "queued_at",
        "due_at",
        "sent_at",
        "finished_at",
    ]
    body = rows[1:]
    setagaya_deliveries = Delivery.objects.filter(participant__site=world.setagaya)
    assert len(body) == setagaya_deliveries.count() == 6
    assert {r[1] for r in body} == {"setagaya"}
    assert "nerima" not in text
    formula_rows = [r for r in body if "HYPERLINK" in r[0]]
    assert formula_rows[0][0] == '\'=HYPERLINK("http://x")'
    assert formula_rows[0][6] == "'+cmd|'/c calc'!A1"
    # Never contact details (the e-mail address lives in Contact, not in this file).
    assert "@" not in text.replace("'=HYPERLINK", "")
    # Times in Japan time.
    assert any(r[9].endswith("+09:00") for r in body)


def test_the_scoping_helper_agrees_with_the_page(world: World) -> None:
    """The page reads the sites through surveys.scoping, as every admin page does."""
    user = member("scoped", world.setagaya)
    result = watch.study_watch(world.study, scoping.sites(user))
    assert [s.site.code for s in result.sites] == ["setagaya"]
    assert not result.whole_study


# --- The chart's edge cases ----------------------------------------------------------------


def test_a_site_with_nobody_invited_has_no_line_but_is_named_in_the_description() -> None:
    from fieldwork.chart import rate_chart

    days = [dt.date(2026, 11, 1)]
    with translation.override("en"):  # the description's words, in English
        chart = rate_chart(
            days=days,
            series=[("A", "a", [Fraction(1, 2)]), ("B", "b", [None])],
            total=("All", [Fraction(1, 4)]),
            target=None,
            target_label="",
            title="t",
        )
    assert chart is not None
    assert [line.code for line in chart.lines] == ["a", ""]
    assert "B: nobody invited" in chart.description
    assert chart.target_y is None
    # A single day still draws a visible stroke.
    assert len(chart.lines[0].points.split()) == 2
    assert (
        rate_chart(days=[], series=[], total=None, target=None, target_label="", title="t") is None
    )


def _span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def test_the_chart_spans_a_round_inside_the_study_period_from_the_day_before_it() -> None:
    from fieldwork.watch import chart_span

    events = [dt.date(2021, 10, 1), dt.date(2021, 10, 9), dt.date(2021, 10, 29)]
    # The site opened two days before the first invitation: the chart starts before it.
    days = chart_span(
        events, opening=dt.date(2021, 9, 29), today=dt.date(2022, 3, 1), ongoing=False
    )
    assert days == _span(dt.date(2021, 9, 28), dt.date(2021, 10, 29))
    # Still under way: up to today.
    days = chart_span(events, opening=None, today=dt.date(2021, 11, 3), ongoing=True)
    assert days == _span(dt.date(2021, 9, 30), dt.date(2021, 11, 3))
    assert chart_span([], opening=None, today=dt.date(2021, 11, 3), ongoing=True) == []


def test_answers_from_years_ago_do_not_stretch_the_chart_of_todays_invitations() -> None:
    """The demo: the reference study answered in 2021, invited again today."""
    from fieldwork.watch import chart_span

    answered = _span(dt.date(2021, 9, 27), dt.date(2021, 10, 29))
    today = dt.date(2026, 12, 5)
    days = chart_span([*answered, today], opening=dt.date(2021, 9, 24), today=today, ongoing=True)
    assert days == [dt.date(2026, 12, 4), today]


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        # 6 days: each day.
        (dt.date(2026, 6, 1), dt.date(2026, 6, 6), ["6/1", "6/2", "6/3", "6/4", "6/5", "6/6"]),
        # 33 days: each week from the first day.
        (
            dt.date(2021, 9, 27),
            dt.date(2021, 10, 29),
            ["9/27", "10/4", "10/11", "10/18", "10/25"],
        ),
        # Over a new year: the first of every 2nd month (8 ticks), the year where it changes.
        (
            dt.date(2021, 9, 24),
            dt.date(2023, 1, 10),
            ["2021/11/1", "2022/1/1", "3/1", "5/1", "7/1", "9/1", "11/1", "2023/1/1"],
        ),
    ],
)
def test_the_date_ticks_fall_on_steps_a_reader_counts_in(first, last, expected) -> None:  # type: ignore[no-untyped-def]
    from fieldwork.chart import date_ticks

    days = _span(first, last)
    ticks = date_ticks(days)
    assert [label for _, label in ticks] == expected
    assert all(days[i].strftime("%-m/%-d") in label for i, label in ticks)
