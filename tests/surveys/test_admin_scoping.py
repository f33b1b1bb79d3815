"""The admin keeps every manager to their sites: a matrix of roles (viewer, manager,
signer of Setagaya) × their own site or another (Itabashi) × the survey admin's pages,
plus a staff user with no membership and a superuser; and a crawl of every page a
Setagaya member can reach, searched for Itabashi's participants.

The reference study (three sites, 229 demo responses, scored once) is built once for the
module and rolled back at its end; each test runs in its own savepoint inside it."""

from __future__ import annotations

import io
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.test import Client
from django.urls import reverse

from kpi.definitions.loading import kpis_path, load_kpis
from kpi.evaluations.services import evaluation_create
from kpi.models import KPI, Evaluation, EvaluationRun, Segment
from kpi.scoring import execution
from surveys.admin.common import ScopedAdminMixin
from surveys.demo import generate_demo_responses
from surveys.loading import load_study
from surveys.models import (
    Instrument,
    Membership,
    Participant,
    Question,
    Response,
    Site,
    Study,
)
from surveys.selectors import participant_for_token
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory, reference_instrument

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

PASSWORD = "pw-scoping-1234"
ROLES = ("viewer", "manager", "signer")
TARGETS = ("own", "other")
ITABASHI_REF = re.compile(r"ITA-\d{4}")  # the demo's Itabashi references: ITA-0001 …

# What a programme manager's group holds. The role on a site decides which of these a
# member may use there: the same group serves viewers, managers and signers.
PROGRAMME_MANAGER_PERMISSIONS = {
    "surveys": [
        "view_study",
        "change_study",
        "view_site",
        "change_site",
        "view_participant",
        "add_participant",
        "change_participant",
        "delete_participant",
        "view_response",
        "view_instrument",
        "add_instrument",
        "change_instrument",
        "view_question",
        "add_question",
        "change_question",
        "delete_question",
        "view_choice",
        "add_choice",
        "change_choice",
        "delete_choice",
        "view_membership",
    ],
    "kpi": [
        "view_segment",
        "add_segment",
        "change_segment",
        "delete_segment",
        "view_clause",
        "add_clause",
        "change_clause",
        "delete_clause",
        "view_kpi",
        "add_kpi",
        "change_kpi",
        "view_evaluationrun",
        "view_studyresults",
        "score_study",
        "view_evaluation",
        "add_evaluation",
        "sign_off_evaluation",
        "withdraw_evaluation",
    ],
}


def programme_managers() -> Group:
    group = Group.objects.create(name="Programme managers")
    for app_label, codenames in PROGRAMME_MANAGER_PERMISSIONS.items():
        permissions = Permission.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
        assert permissions.count() == len(codenames), app_label
        group.permissions.add(*permissions)
    return group


@dataclass
class World:
    study: Study
    other_study: Study
    sites: dict[str, Site]  # own: Setagaya, other: Itabashi
    participants: dict[str, Participant]  # each with a submitted response
    responses: dict[str, Response]
    memberships: dict[str, Membership]
    instruments: dict[str, Instrument]  # own: the reference study's, other: the other's
    questions: dict[str, Question]
    kpis: dict[str, KPI]
    segments: dict[str, Segment]
    runs: dict[str, EvaluationRun]
    evaluations: dict[str, Evaluation]
    users: dict[str, User] = field(default_factory=dict)


def build_world() -> World:
    study = load_study()
    path = kpis_path()
    assert path is not None
    load_kpis(study=study, path=path)
    generate_demo_responses(study)
    run = execution.run_execute(
        run_id=EvaluationRun.objects.create(study=study, trigger="command").pk
    )
    assert run.status == EvaluationRun.Status.SUCCEEDED

    # A second study nobody of the matrix is a member of.
    other_study = StudyFactory(code="other-study")
    reference_instrument(other_study)
    ParticipantFactory(site=SiteFactory(study=other_study, code="nerima"), reference="NER-0001")
    other_run = execution.run_execute(
        run_id=EvaluationRun.objects.create(study=other_study, trigger="command").pk
    )
    other_segment = Segment.objects.create(study=other_study, code="line", name_ja="LINE")
    other_kpi = KPI.objects.create(study=other_study, code="rate", name_ja="回収率", base="invited")

    group = programme_managers()
    setagaya, itabashi = study.sites.get(code="setagaya"), study.sites.get(code="itabashi")
    users: dict[str, User] = {"root": User.objects.create_superuser("root", password=PASSWORD)}

    def staff(name: str, *memberships: tuple[Site, str]) -> User:
        user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
        user.groups.add(group)
        for site, role in memberships:
            Membership.objects.create(user=user, site=site, role=role)
        users[name] = user
        return user

    for role in ROLES:
        staff(role, (setagaya, role))
    staff("nobody")
    staff("itabashi-manager", (itabashi, "manager"))
    staff("mixed", (setagaya, "manager"), (itabashi, "viewer"))
    staff("everywhere", *((site, "signer") for site in study.sites.all()))

    def answered(site: Site) -> Participant:
        return Participant.objects.filter(site=site, response__status="submitted").order_by(
            "reference"
        )[0]

    participants = {"own": answered(setagaya), "other": answered(itabashi)}
    return World(
        study=study,
        other_study=other_study,
        sites={"own": setagaya, "other": itabashi},
        participants=participants,
        responses={k: p.response for k, p in participants.items()},
        instruments={
            "own": study.instruments.get(),
            "other": other_study.instruments.get(),
        },
        questions={
            "own": Question.objects.filter(instrument__study=study).order_by("order")[0],
            "other": Question.objects.filter(instrument__study=other_study).order_by("order")[0],
        },
        kpis={"own": study.kpis.order_by("order", "code")[0], "other": other_kpi},
        segments={"own": study.segments.order_by("code")[0], "other": other_segment},
        memberships={
            "own": Membership.objects.get(user=users["manager"]),
            "other": Membership.objects.get(user=users["itabashi-manager"]),
        },
        runs={"own": run, "other": other_run},
        evaluations={
            "own": evaluation_create(run=run, user=users["root"]),
            "other": evaluation_create(run=other_run, user=users["root"]),
        },
        users=users,
    )


def world_of_the_module(django_db_blocker: Any) -> Iterator[World]:
    """The world, built inside a transaction that is rolled back when the module is done;
    each test's own transaction is a savepoint within it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:  # type: ignore[no-untyped-def]
    yield from world_of_the_module(django_db_blocker)


def client_for(world: World, who: str) -> Client:
    client = Client()
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.users[who])
    return client


@pytest.fixture
def as_user(world: World, db) -> Callable[[str], Client]:  # type: ignore[no-untyped-def]
    return lambda who: client_for(world, who)


def admin_url(name: str, *args: object) -> str:
    return reverse(f"admin:{name}", args=args)


class FormValues(HTMLParser):
    """The values a browser would send with the page's change form (``<form id="…_form">``):
    inputs, checked boxes, selected options and text areas; no buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form or (not a.get("name") and tag != "option"):
            return
        if tag == "input" and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.data.append((a["name"], a.get("value", "on" if "checked" in a else "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.data.append((self._textarea, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, value = self.data[-1]
            self.data[-1] = (name, value + data)


def form_values(html: str) -> dict[str, list[str]]:
    parser = FormValues()
    parser.feed(html)
    values: dict[str, list[str]] = {}
    for name, value in parser.data:
        values.setdefault(name, []).append(unescape(value).lstrip("\n"))
    return values


def resubmit(client: Client, url: str) -> int:
    """GET the change page and POST back what it shows (the status of the POST). Without
    a page to read (404, 403), POST a token field so the request is still a POST."""
    page = client.get(url)
    data = form_values(page.content.decode()) if page.status_code == 200 else {"x": ["1"]}
    return client.post(url, data).status_code


# --- The matrix ------------------------------------------------------------------------

Status = dict[str, int]  # role → expected status on an object of the caller's own site
ALL_READ: Status = {"viewer": 200, "manager": 200, "signer": 200}
WRITE: Status = {"viewer": 403, "manager": 200, "signer": 200}
NOBODY: Status = {"viewer": 403, "manager": 403, "signer": 403}
FOUND: Status = {"viewer": 302, "manager": 302, "signer": 302}


@dataclass(frozen=True)
class Page:
    name: str
    url: Callable[[World, str], str]  # (world, target) → URL
    own: Status
    method: str = "get"  # or "post" (nothing), or "resubmit" (the change form as shown)
    root: int | None = 200  # None: not in the superuser's matrix

    def __str__(self) -> str:
        return self.name


def _obj(kind: str, action: str) -> Callable[[World, str], str]:
    def url(world: World, target: str) -> str:
        obj = getattr(world, kind)[target]
        return admin_url(f"{obj._meta.app_label}_{obj._meta.model_name}_{action}", obj.pk)

    return url


SURVEY_PAGES = [
    Page("participant change", _obj("participants", "change"), ALL_READ),
    Page("participant history", _obj("participants", "history"), ALL_READ),
    Page("participant delete", _obj("participants", "delete"), WRITE),
    Page(
        "participant save",
        _obj("participants", "change"),
        {"viewer": 403, "manager": 302, "signer": 302},
        method="resubmit",
        root=302,
    ),
    Page("response change", _obj("responses", "change"), ALL_READ),
    Page("response history", _obj("responses", "history"), ALL_READ),
    Page("response delete", _obj("responses", "delete"), NOBODY, root=403),
    Page("site change", _obj("sites", "change"), ALL_READ),
    Page("site history", _obj("sites", "history"), ALL_READ),
    Page("site delete", _obj("sites", "delete"), NOBODY),
    Page(
        "site save",
        _obj("sites", "change"),
        {"viewer": 403, "manager": 302, "signer": 302},
        method="resubmit",
        root=302,
    ),
    Page("instrument change", _obj("instruments", "change"), ALL_READ),
    Page("instrument history", _obj("instruments", "history"), ALL_READ),
    Page("instrument new version", _obj("instruments", "new_version"), WRITE),
    # Published already: the page says so and goes back to the instrument.
    Page("instrument publish", _obj("instruments", "publish"), FOUND, root=302),
    Page("question change", _obj("questions", "change"), ALL_READ),
    Page("question history", _obj("questions", "history"), ALL_READ),
    Page("membership change", _obj("memberships", "change"), ALL_READ),
    # The group has no change_membership: the signer role alone is not enough.
    Page("membership save", _obj("memberships", "change"), NOBODY, method="resubmit", root=302),
]


def expected(page: Page, who: str, target: str) -> int:
    if who == "root":
        return page.root
    if target == "other" or who == "nobody":
        return 404
    return page.own[who]


def check(client: Client, world: World, page: Page, who: str, target: str) -> None:
    url = page.url(world, target)
    if page.method == "resubmit":
        status = resubmit(client, url)
    else:
        status = getattr(client, page.method)(url).status_code
    assert status == expected(page, who, target), (page.name, who, target, url)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("page", SURVEY_PAGES, ids=str)
@pytest.mark.parametrize("role", ROLES)
def test_a_setagaya_member_reaches_their_sites_rows_by_role_and_never_itabashis(
    world, as_user, role, page, target
):
    check(as_user(role), world, page, role, target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("page", SURVEY_PAGES, ids=str)
@pytest.mark.parametrize("who", ["nobody", "root"])
def test_a_staff_user_without_membership_finds_nothing_and_a_superuser_everything(
    world, as_user, who, page, target
):
    check(as_user(who), world, page, who, target)


# --- Lists and the study page ----------------------------------------------------------


CHANGELISTS = [
    "surveys_participant_changelist",
    "surveys_response_changelist",
    "surveys_site_changelist",
    "surveys_study_changelist",
    "surveys_instrument_changelist",
    "surveys_question_changelist",
    "surveys_membership_changelist",
]


@pytest.mark.parametrize("role", ROLES)
def test_every_list_shows_only_the_callers_sites_and_studies(world, as_user, role):
    client = as_user(role)
    for name in CHANGELISTS:
        response = client.get(admin_url(name))
        assert response.status_code == 200, name
        html = response.content.decode()
        assert not ITABASHI_REF.search(html), name
        assert "other-study" not in html, name
    participants = client.get(admin_url("surveys_participant_changelist"))
    shown = participants.context["cl"].result_count
    assert shown == Participant.objects.filter(site=world.sites["own"]).count()
    sites = client.get(admin_url("surveys_site_changelist")).context["cl"].result_list
    assert list(sites) == [world.sites["own"]]


def test_a_search_or_a_filter_for_itabashi_finds_nothing_of_it(world, as_user):
    client = as_user("manager")
    itabashi = world.sites["other"]
    changelist = admin_url("surveys_participant_changelist")
    found = client.get(changelist + f"?q={world.participants['other'].reference}")
    assert found.context["cl"].result_count == 0
    for query in (f"?site={itabashi.pk}", f"?site__study__id__exact={world.other_study.pk}"):
        # A filter value outside the scope narrows nothing the caller could not see.
        response = client.get(changelist + query)
        assert response.status_code == 200
        rows = response.context["cl"].queryset
        assert not rows.exclude(site=world.sites["own"]).exists(), query
        assert not ITABASHI_REF.search(response.content.decode()), query
    response = client.get(admin_url("surveys_response_changelist") + f"?site={itabashi.pk}")
    assert not response.context["cl"].queryset.exclude(site=world.sites["own"]).exists()


def test_a_staff_user_without_membership_sees_empty_lists(world, as_user):
    client = as_user("nobody")
    for name in CHANGELISTS:
        response = client.get(admin_url(name))
        assert response.status_code == 200, name
        assert response.context["cl"].result_count == 0, name


def rate_rows(html: str) -> dict[str, str]:
    """``data-site`` → the row's submitted count (the total row as "total")."""
    rows = re.findall(
        r'<tr data-site="([^"]*)">.*?data-count="submitted">(?:<a [^>]*>)?(\d+)', html, re.S
    )
    return {site or "total": count for site, count in rows}


@pytest.mark.parametrize("role", ROLES)
def test_the_study_page_shows_the_response_rate_of_the_callers_sites_only(world, as_user, role):
    response = as_user(role).get(admin_url("surveys_study_change", world.study.pk))
    assert response.status_code == 200
    html = response.content.decode()
    own = Response.objects.filter(site=world.sites["own"], status="submitted").count()
    assert rate_rows(html) == {"setagaya": str(own), "total": str(own)}
    assert "Total of your sites" in html
    assert "Study total" not in html
    # The sites below the study: only Setagaya, read-only for a non-superuser.
    inline = response.context["inline_admin_formsets"][0]
    assert [f.instance.code for f in inline.formset.forms] == ["setagaya"]
    assert not inline.has_change_permission


def test_a_member_of_every_site_and_a_superuser_see_the_study_total(world, as_user):
    for who in ("everywhere", "root"):
        html = as_user(who).get(admin_url("surveys_study_change", world.study.pk)).content
        rows = rate_rows(html.decode())
        assert set(rows) == {"setagaya", "itabashi", "fuchu", "total"}, who
        assert rows["total"] == "229"
        assert "Study total" in html.decode()


def test_the_study_list_counts_the_callers_sites_only(world, as_user):
    listing = as_user("viewer").get(admin_url("surveys_study_changelist"))
    study = listing.context["cl"].result_list[0]
    own = world.sites["own"]
    assert study.sites_total == 1
    assert study.submitted == Response.objects.filter(site=own, status="submitted").count()
    assert study.participants_total == Participant.objects.filter(site=own).count()
    assert "counted over your sites" in listing.content.decode()


def test_a_study_level_edit_needs_the_manager_role(world, as_user):
    url = admin_url("surveys_study_change", world.study.pk)
    assert resubmit(as_user("viewer"), url) == 403
    assert resubmit(as_user("manager"), url) == 302
    assert (
        resubmit(as_user("manager"), admin_url("surveys_study_change", world.other_study.pk)) == 404
    )
    assert as_user("manager").get(admin_url("surveys_study_add")).status_code == 403
    assert as_user("manager").get(admin_url("surveys_site_add")).status_code == 403


# --- Import, export, withdraw ----------------------------------------------------------


def import_csv(client: Client, study: Study, content: bytes) -> Any:
    upload = io.BytesIO(content)
    upload.name = "participants.csv"
    url = admin_url("surveys_participant_import")
    return client.post(url, {"study": study.pk, "file": upload})


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("manager", 200), ("signer", 200)])
def test_importing_needs_the_manager_role(world, as_user, role, status):
    client = as_user(role)
    assert client.get(admin_url("surveys_participant_import")).status_code == status
    before = Participant.objects.count()
    response = import_csv(client, world.study, b"reference,site\nSET-9001,setagaya\n")
    assert response.status_code == status
    assert Participant.objects.count() == before + (status == 200)


def test_the_import_offers_only_the_callers_studies_and_sites(world, as_user):
    page = as_user("manager").get(admin_url("surveys_participant_import"))
    assert list(page.context["form"].fields["study"].queryset) == [world.study]
    assert page.context["form"]["study"].value() == world.study.pk  # the one study, chosen
    assert [s.code for s in page.context["sites"]] == ["setagaya"]


def test_an_import_into_itabashi_is_refused_without_saying_what_itabashi_holds(world, as_user):
    taken = world.participants["other"].reference  # exists at Itabashi
    before = Participant.objects.count()
    content = f"reference,site\nSET-9002,setagaya\n{taken},itabashi\n".encode()
    response = import_csv(as_user("manager"), world.study, content)
    html = response.content.decode()
    assert response.status_code == 200
    assert "is not one of the sites you manage" in html
    assert "already" not in html  # nothing about Itabashi's references
    assert Participant.objects.count() == before
    other = import_csv(as_user("manager"), world.other_study, b"reference,site\nX-1,nerima\n")
    assert other.context["form"].errors["study"]
    assert Participant.objects.count() == before


CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def page_bytes(response: Any) -> bytes:
    """A page as sent, but for its per-request CSRF token."""
    return CSRF.sub(b"", response.content)


def test_an_import_row_for_another_sites_reference_answers_as_one_that_exists_nowhere(
    world, as_user
):
    """Byte for byte, a reference taken at Itabashi and one that exists nowhere; a site
    out of scope and a site that does not exist; whatever the other rows hold."""
    client = as_user("manager")
    taken = world.participants["other"].reference
    before = sorted(Participant.objects.values_list("site_id", "reference"))
    hidden = import_csv(
        client, world.study, f"reference,site\nX-1,setagaya\n{taken},itabashi\n".encode()
    )
    free = import_csv(client, world.study, b"reference,site\nX-1,setagaya\nITA-7777,itabashi\n")
    assert hidden.status_code == free.status_code == 200
    assert page_bytes(hidden).replace(taken.encode(), b"ITA-7777") == page_bytes(free)
    nowhere = import_csv(
        client, world.study, f"reference,site\nX-1,setagaya\n{taken},xtabashi\n".encode()
    )
    assert page_bytes(hidden).replace(b"itabashi", b"xtabashi") == page_bytes(nowhere)
    # An empty site lists the caller's sites only; and the caller's own rows with
    # problems are reported beside the other site's.
    page = import_csv(
        client, world.study, f"reference,site\nX-1,\n{taken},itabashi\n,setagaya\n".encode()
    )
    assert dict(page.context["row_errors"]).keys() == {2, 3, 4}
    html = page.content.decode()
    assert "(setagaya)" in html and html.count("itabashi") == 1
    assert sorted(Participant.objects.values_list("site_id", "reference")) == before


def test_renaming_a_participant_to_a_taken_reference_is_refused_at_the_field(world, as_user):
    """The site is read-only once created, so Django's own uniqueness check would skip
    (site, reference): without ours the database would refuse it with a 500. A reference
    taken only at another site is free (references are unique per site)."""
    client = as_user("manager")
    own = world.participants["own"]
    url = admin_url("surveys_participant_change", own.pk)
    data = form_values(client.get(url).content.decode())
    neighbour = Participant.objects.filter(site=own.site).exclude(pk=own.pk).first()
    refused = client.post(url, {**data, "reference": [neighbour.reference]})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["reference"]
    own.refresh_from_db()
    assert own.reference != neighbour.reference
    taken_elsewhere = world.participants["other"].reference
    assert client.post(url, {**data, "reference": [taken_elsewhere]}).status_code == 302
    own.refresh_from_db()
    assert own.reference == taken_elsewhere


def act(client: Client, action: str, participants: list[Participant], **extra: str) -> Any:
    data = {"action": action, "_selected_action": [str(p.pk) for p in participants], **extra}
    return client.post(admin_url("surveys_participant_changelist"), data)


@pytest.mark.parametrize("action", ["export_links", "replace_links", "withdraw"])
def test_export_and_withdraw_need_the_manager_role_on_every_selected_participant(
    world, as_user, action
):
    own = ParticipantFactory(site=world.sites["own"])
    other = ParticipantFactory(site=world.sites["other"])
    # A viewer is not offered the action; nothing happens.
    response = act(as_user("viewer"), action, [own], confirmed="yes")
    assert not response.get("Content-Type", "").startswith("text/csv")
    # Itabashi's participant is out of the manager's scope: not selected at all.
    response = act(as_user("manager"), action, [other], confirmed="yes")
    assert not response.get("Content-Type", "").startswith("text/csv")
    # A manager of Setagaya who only views Itabashi: refused for the selection as a whole.
    response = act(as_user("mixed"), action, [own, other], confirmed="yes")
    assert response.status_code == 403
    for p in (own, other):
        p.refresh_from_db()
        assert p.status == Participant.Status.ACTIVE
        assert participant_for_token(p.token) == p  # the link still works
    # The manager on their own participant: done.
    response = act(as_user("manager"), action, [own], confirmed="yes")
    own.refresh_from_db()
    if action == "export_links":
        assert response["Content-Type"].startswith("text/csv")
        assert participant_for_token(own.token) == own  # the same link
    elif action == "replace_links":
        assert response["Content-Type"].startswith("text/csv")
        assert participant_for_token(own.token) is None  # a new link was issued
    else:
        assert own.status == Participant.Status.WITHDRAWN


# --- Memberships -----------------------------------------------------------------------


def test_a_sites_page_lists_its_members_and_the_users_page_their_memberships(world, as_user):
    root = as_user("root")
    page = root.get(admin_url("surveys_site_change", world.sites["own"].pk))
    members = next(
        i for i in page.context["inline_admin_formsets"] if i.formset.model is Membership
    )
    assert {f.instance.user.username: f.instance.role for f in members.formset.forms} == {
        "viewer": "viewer",
        "manager": "manager",
        "signer": "signer",
        "mixed": "manager",
        "everywhere": "signer",
    }
    assert members.has_change_permission
    user = world.users["mixed"]
    page = root.get(admin_url("auth_user_change", user.pk))
    inline = next(i for i in page.context["inline_admin_formsets"] if i.formset.model is Membership)
    assert {f.instance.site.code for f in inline.formset.forms} == {"setagaya", "itabashi"}
    listing = root.get(admin_url("surveys_membership_changelist") + "?role__exact=signer")
    assert {m.user.username for m in listing.context["cl"].result_list} == {
        "signer",
        "everywhere",
    }


def test_a_manager_sees_only_their_sites_members_and_cannot_grant_roles(world, as_user):
    client = as_user("manager")
    listing = client.get(admin_url("surveys_membership_changelist"))
    sites = {m.site.code for m in listing.context["cl"].result_list}
    assert sites == {"setagaya"}
    assert client.get(admin_url("surveys_membership_add")).status_code == 403
    page = client.get(admin_url("surveys_site_change", world.sites["own"].pk))
    members = next(
        i for i in page.context["inline_admin_formsets"] if i.formset.model is Membership
    )
    assert not members.has_add_permission
    assert not members.has_change_permission


# --- Every page a Setagaya member can reach --------------------------------------------

LINK = re.compile(r'href="(/admin/[^"#]*)"')
# Not followed: leaving, scripts, PDFs, and the same pages again as pop-ups or with the
# list's filters remembered.
NOT_FOLLOWED = (
    "/admin/logout/",
    "/admin/jsi18n/",
    "/download/",
    "_popup=",
    "_changelist_filters=",
    "_to_field=",
)


def crawl(client: Client, per_shape: int = 1, limit: int = 400) -> dict[str, str]:
    """Every admin page reachable by links from the index (at most ``per_shape`` URLs of
    one shape, such as one participant's page and one list per set of filters), as
    HTML."""
    pages: dict[str, str] = {}
    seen: set[str] = set()
    shapes: Counter[str] = Counter()
    queue = deque(["/admin/"])
    while queue and len(seen) < limit:
        url = queue.popleft()
        if url in seen or any(part in url for part in NOT_FOLLOWED):
            continue
        seen.add(url)
        parts = urlsplit(url)
        shape = re.sub(r"\d+", "N", parts.path) + str(sorted(k for k, _ in parse_qsl(parts.query)))
        shapes[shape] += 1
        if shapes[shape] > per_shape:
            continue
        response = client.get(url)
        assert response.status_code in (200, 302, 403), (url, response.status_code)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            html = response.content.decode()
            pages[url] = html
            queue.extend(unescape(link) for link in LINK.findall(html))
    return pages


@pytest.mark.parametrize("role", ROLES)
def test_no_page_a_setagaya_member_can_reach_shows_itabashis_participants_or_results(
    world, as_user, role
):
    pages = crawl(as_user(role))
    assert len(pages) > 40  # the crawl went through the whole admin
    for url, html in pages.items():
        assert not ITABASHI_REF.search(html), url
        assert 'data-site="itabashi"' not in html, url
        assert 'data-scope="itabashi"' not in html, url
        assert "other-study" not in html, url


def test_what_the_crawl_looks_for_is_there_for_a_superuser(world, as_user):
    # The patterns the crawl searches for do show where Itabashi's rows are shown.
    root = as_user("root")
    listing = root.get(admin_url("surveys_participant_changelist") + "?q=ITA-")
    assert ITABASHI_REF.search(listing.content.decode())
    run = root.get(admin_url("kpi_evaluationrun_change", world.runs["own"].pk))
    assert 'data-scope="itabashi"' in run.content.decode()
    study = root.get(admin_url("surveys_study_change", world.study.pk))
    assert 'data-site="itabashi"' in study.content.decode()


# --- Every model admin is scoped -------------------------------------------------------


def test_every_model_admin_of_the_project_is_scoped_in_one_place():
    for model, model_admin in django_admin.site._registry.items():
        if model._meta.app_label not in ("surveys", "kpi"):
            continue  # django.contrib.auth's users and groups, knox's tokens: superusers'
        assert isinstance(model_admin, ScopedAdminMixin), model
        # Scoping happens in the mixin's get_queryset; admins shape base_queryset only.
        assert type(model_admin).get_queryset is ScopedAdminMixin.get_queryset, model
        for inline in model_admin.inlines:
            assert issubclass(inline, ScopedAdminMixin), inline
            assert inline.get_queryset is ScopedAdminMixin.get_queryset, inline
