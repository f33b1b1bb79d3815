"""The manager's lists and pages at scale (issue 15, item 5): the number of queries a page
makes does not grow with the data, the counts the pages show stay right after they were
rewritten to read indexes, the site scope still holds, and paging covers every row once.
Timings are for bench/admin.py, never here."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from surveys.admin import pagination
from surveys.models import Instrument, Membership, Participant, Response, Site, Study
from tests.factories import SiteFactory, StudyFactory, reference_instrument

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

APPS = ("surveys", "kpi", "fieldwork")


@dataclass
class World:
    study: Study
    other_study: Study
    own: Site
    other: Site
    instrument: Instrument
    manager: User
    added: int = 0


def populate(world: World, n: int) -> None:
    """``n`` more participants at each site (own, other, the other study's): most
    submitted, some drafts, some never started, some withdrawn (with or without a
    submission). References tell the site apart: OWN-…, OTH-…, FAR-…."""
    now = timezone.now()
    sites = [(world.own, "OWN"), (world.other, "OTH")]
    far = world.other_study.sites.get()
    sites.append((far, "FAR"))
    for site, prefix in sites:
        instrument = site.study.instruments.get()
        participants = Participant.objects.bulk_create(
            Participant(
                site=site,
                reference=f"{prefix}-{world.added + k:04d}",
                token_hash=secrets.token_hex(32),
                status="withdrawn" if k % 7 == 3 else "active",
            )
            for k in range(n)
        )
        responses = []
        for k, participant in enumerate(participants):
            if k % 5 == 4:
                continue  # never started
            submitted = k % 5 != 1
            responses.append(
                Response(
                    participant=participant,
                    site=site,
                    instrument=instrument,
                    status="submitted" if submitted else "draft",
                    source="web",
                    submitted_at=now - dt.timedelta(minutes=k) if submitted else None,
                )
            )
        Response.objects.bulk_create(responses)
    world.added += n


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    study = StudyFactory(code="national")
    instrument = reference_instrument(study)
    own = SiteFactory(study=study, code="own")
    other = SiteFactory(study=study, code="other")
    other_study = StudyFactory(code="elsewhere")
    reference_instrument(other_study)
    SiteFactory(study=other_study, code="far")
    manager = User.objects.create_user("manager", password="pw-scale-1234", is_staff=True)
    manager.user_permissions.set(Permission.objects.filter(content_type__app_label__in=APPS))
    Membership.objects.create(user=manager, site=own, role="manager")
    return World(study, other_study, own, other, instrument, User.objects.get(pk=manager.pk))


@pytest.fixture
def client(world: World) -> Client:
    client = Client()
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.manager)
    return client


def admin(name: str, *args: object, query: str = "") -> str:
    return reverse(f"admin:{name}", args=args) + (f"?{query}" if query else "")


def api(name: str, *args: object, query: str = "") -> str:
    return reverse(f"api:{name}", args=args) + (f"?{query}" if query else "")


def own_participant(world: World) -> Participant:
    return Participant.objects.filter(site=world.own, response__isnull=False).order_by("pk")[0]


# Every page whose queries bench/admin.py found to grow, or which this work changed.
PAGES: dict[str, Callable[[World], str]] = {
    "study list": lambda w: admin("surveys_study_changelist"),
    "study change": lambda w: admin("surveys_study_change", w.study.pk),
    "site list": lambda w: admin("surveys_site_changelist"),
    "instrument list": lambda w: admin("surveys_instrument_changelist"),
    "participant list": lambda w: admin("surveys_participant_changelist"),
    "participant list, search": lambda w: admin(
        "surveys_participant_changelist", query="q=OWN-0001"
    ),
    "participant list, filters": lambda w: admin(
        "surveys_participant_changelist",
        query=f"site={w.own.pk}&status__exact=active&response=submitted",
    ),
    "participant change": lambda w: admin("surveys_participant_change", own_participant(w).pk),
    "response list": lambda w: admin("surveys_response_changelist"),
    "response list, search": lambda w: admin("surveys_response_changelist", query="q=OWN-0001"),
    "response list, filters": lambda w: admin(
        "surveys_response_changelist",
        query=f"participant__site__study__id__exact={w.study.pk}&status__exact=submitted",
    ),
    "response change": lambda w: admin("surveys_response_change", own_participant(w).response.pk),
    "API participants": lambda w: api("participant-list"),
    "API participants, site": lambda w: api("participant-list", query=f"site={w.own.pk}"),
    "API responses": lambda w: api("response-list"),
    "API responses, status": lambda w: api("response-list", query="status=submitted"),
}


def queries(client: Client, url: str) -> tuple[int, Any]:
    client.get(url)  # caches of the session, the permissions, the content types
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries), response


@pytest.mark.parametrize("page", list(PAGES))
def test_its_queries_do_not_grow_with_the_data(world: World, client: Client, page: str) -> None:
    populate(world, 4)
    small, _ = queries(client, PAGES[page](world))
    populate(world, 60)
    large, response = queries(client, PAGES[page](world))
    assert large == small, f"{page}: {small} queries with 4 per site, {large} with 64"
    # And it shows nothing of the other site or study.
    assert b"OTH-" not in response.content and b"FAR-" not in response.content


def expected_counts(site: Site) -> tuple[int, int, int]:
    """Invited (active, or withdrawn after submitting), drafts, submitted: from the rows."""
    invited = drafts = submitted = 0
    for p in Participant.objects.filter(site=site).select_related("response"):
        response = getattr(p, "response", None)
        status = response.status if response is not None else None
        invited += p.status == "active" or status == "submitted"
        drafts += status == "draft"
        submitted += status == "submitted"
    return invited, drafts, submitted


def test_the_study_page_counts_each_of_the_callers_sites(world: World, client: Client) -> None:
    populate(world, 23)
    response = client.get(admin("surveys_study_change", world.study.pk))
    rows = response.context["rate_rows"]
    assert [r.code for r in rows] == ["own"]  # not the other site
    (row,) = rows
    assert (row.participants, row.drafts, row.submitted) == expected_counts(world.own)


def test_the_study_list_counts_the_callers_sites_only(world: World, client: Client) -> None:
    populate(world, 23)
    response = client.get(admin("surveys_study_changelist"))
    (study,) = response.context["cl"].result_list
    invited, _, submitted = expected_counts(world.own)
    assert (study.pk, study.participants_total, study.submitted) == (
        world.study.pk,
        invited,
        submitted,
    )


def test_the_study_list_counts_every_site_for_a_superuser(world: World) -> None:
    populate(world, 23)
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-scale-1234"))
    response = client.get(admin("surveys_study_changelist"))
    by_code = {s.code: s for s in response.context["cl"].result_list}
    own, other = expected_counts(world.own), expected_counts(world.other)
    national = by_code["national"]
    assert (national.participants_total, national.submitted) == (
        own[0] + other[0],
        own[2] + other[2],
    )


def test_the_filters_offer_only_the_callers_studies(world: World, client: Client) -> None:
    populate(world, 3)
    for name in ("surveys_participant_changelist", "surveys_response_changelist"):
        page = client.get(admin(name)).content.decode()
        assert "national" in page
        assert "elsewhere" not in page, name


def test_a_filter_for_another_site_shows_nothing(world: World, client: Client) -> None:
    populate(world, 3)
    response = client.get(admin("surveys_participant_changelist", query=f"site={world.other.pk}"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_the_participant_pages_cover_every_participant_once(world: World, client: Client) -> None:
    populate(world, 130)  # 130 of the caller's: two pages of 100
    seen: list[str] = []
    for page in (1, 2, 3):
        response = client.get(admin("surveys_participant_changelist", query=f"p={page}"))
        if response.status_code != 200:
            break
        seen += [p.reference for p in response.context["cl"].result_list]
    assert sorted(seen) == sorted(
        Participant.objects.filter(site=world.own).values_list("reference", flat=True)
    )
    assert len(seen) == len(set(seen)) == 130


def test_a_short_list_is_counted_exactly(world: World, client: Client) -> None:
    populate(world, 12)
    response = client.get(admin("surveys_participant_changelist"))
    cl = response.context["cl"]
    assert cl.result_count == 12 and not cl.paginator.estimated
    paginator = response.content.decode().split('class="paginator"')[1].split("</p>")[0]
    assert "about" not in paginator


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_long_list_shows_the_planners_estimate_as_about(
    world: World, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(world, 12)
    monkeypatch.setattr(pagination, "EXACT_BELOW", 1)  # every list counts as long
    response = client.get(admin("surveys_participant_changelist"))
    cl = response.context["cl"]
    assert cl.paginator.estimated
    paginator = response.content.decode().split('class="paginator"')[1].split("</p>")[0]
    assert f"about {cl.result_count} participant" in re.sub(r"\s+", " ", paginator)


def test_the_estimate_is_the_exact_count_off_postgresql(world: World) -> None:
    populate(world, 5)
    queryset = Participant.objects.filter(site=world.own)
    expected = pagination.planner_rows(queryset)
    if connection.vendor == "postgresql":
        assert expected is not None and expected >= 0
    else:
        assert expected is None
        assert pagination.EstimatedCountPaginator(queryset.order_by("pk"), 100).count == 5


def test_the_api_pages_cover_every_response_once_newest_first(world: World, client: Client) -> None:
    populate(world, 30)  # 24 responses of the caller's: three pages of 10
    seen: list[dict[str, Any]] = []
    url: str | None = api("response-list", query="page_size=10")
    while url:
        body = client.get(url).json()
        seen += body["results"]
        url = body["next"]
    own = Response.objects.filter(site=world.own)
    assert sorted(r["id"] for r in seen) == sorted(own.values_list("pk", flat=True))
    assert len(seen) == len({r["id"] for r in seen})
    # Newest submissions first, then the drafts (which have no submission time).
    submitted = [r["submitted_at"] for r in seen if r["submitted_at"] is not None]
    assert submitted == sorted(submitted, reverse=True)
    assert [r["submitted_at"] is None for r in seen] == sorted(
        r["submitted_at"] is None for r in seen
    )


def test_the_api_participant_pages_cover_every_participant_once(
    world: World, client: Client
) -> None:
    populate(world, 25)
    seen: list[str] = []
    url: str | None = api("participant-list", query="page_size=10")
    while url:
        body = client.get(url).json()
        seen += [p["reference"] for p in body["results"]]
        url = body["next"]
    assert seen == sorted(
        Participant.objects.filter(site=world.own).values_list("reference", flat=True)
    )


def test_a_staff_user_of_no_site_gets_an_empty_list(world: World) -> None:
    populate(world, 3)
    nobody = User.objects.create_user("nobody", password="pw-scale-1234", is_staff=True)
    nobody.user_permissions.set(Permission.objects.filter(content_type__app_label__in=APPS))
    client = Client()
    client.force_login(nobody)
    for name in ("surveys_participant_changelist", "surveys_response_changelist"):
        response = client.get(admin(name))
        assert response.status_code == 200
        assert response.context["cl"].result_count == 0
