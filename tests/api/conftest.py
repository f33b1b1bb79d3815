"""A small world for the API tests: one study with the reference questionnaire and KPIs,
two wards (Setagaya, Itabashi) with participants and responses, a scored run, a draft and
a signed-off evaluation; users for every role at each ward; groups giving each role the
model permissions it is meant to have."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.test import APIClient

from kpi.definitions.loading import kpis_path, load_kpis
from kpi.evaluations.services import evaluation_create
from kpi.models import KPI, Evaluation, EvaluationRun, Segment
from kpi.scoring.execution import run_execute
from kpi.scoring.services import run_request
from surveys import services
from surveys.models import Membership, Participant, Response, Site, Study
from tests.committed import committed
from tests.factories import (
    ParticipantFactory,
    SiteFactory,
    StudyFactory,
    complete_answers,
    reference_instrument,
)

PASSWORD = "correct horse battery staple"

VIEW = [
    "surveys.view_study",
    "surveys.view_site",
    "surveys.view_instrument",
    "surveys.view_participant",
    "surveys.view_response",
    "kpi.view_segment",
    "kpi.view_kpi",
    "kpi.view_evaluationrun",
    "kpi.view_evaluation",
]
MANAGE = [
    *VIEW,
    "surveys.add_participant",
    "kpi.add_segment",
    "kpi.change_segment",
    "kpi.delete_segment",
    "kpi.add_kpi",
    "kpi.change_kpi",
    "kpi.delete_kpi",
    "kpi.score_study",
    "kpi.add_evaluation",
    "kpi.change_evaluation",
]
SIGN = [*MANAGE, "kpi.sign_off_evaluation", "kpi.withdraw_evaluation"]
ROLE_PERMISSIONS = {"viewer": VIEW, "manager": MANAGE, "signer": SIGN}


def _permissions(names: list[str]) -> list[Permission]:
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


@dataclass
class World:
    study: Study
    setagaya: Site
    itabashi: Site
    other_study: Study
    osaka: Site
    participants: dict[str, Participant]
    responses: dict[str, Response]
    run: EvaluationRun
    draft: Evaluation
    signed: Evaluation
    segment_unused: Segment
    kpi: KPI
    users: dict[str, User] = field(default_factory=dict)

    def user(self, who: str) -> User | None:
        return self.users.get(who)


def _submit(participant: Participant, **answers: Any) -> Response:
    return services.response_submit(
        participant=participant, answers=complete_answers(**answers), language="ja"
    )


@pytest.fixture(autouse=True)
def _fresh_throttles():  # type: ignore[no-untyped-def]
    """Throttle counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def no_rendering(monkeypatch):  # type: ignore[no-untyped-def]
    """Sign-off without rendering the signed PDF (WeasyPrint takes seconds)."""
    monkeypatch.setattr("kpi.evaluations.services._enqueue_render", lambda evaluation_id: None)


@pytest.fixture(scope="module")
def _module_world(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """The world is built once per test module and committed (tests/committed.py); each
    test runs in a transaction rolled back after it, so tests change it freely and never
    see each other's changes."""
    with committed(django_db_blocker):
        yield _build_world()


@pytest.fixture
def world(_module_world, db, no_rendering) -> World:  # type: ignore[no-untyped-def]
    return _module_world


def _build_world() -> World:
    study = StudyFactory(code="tokyo")
    reference_instrument(study)
    setagaya = SiteFactory(study=study, code="setagaya", name_en="Setagaya")
    itabashi = SiteFactory(study=study, code="itabashi", name_en="Itabashi")
    other_study = StudyFactory(code="osaka-study")
    reference_instrument(other_study)
    osaka = SiteFactory(study=other_study, code="osaka")

    participants = {
        "setagaya": ParticipantFactory(site=setagaya, reference="SET-1"),
        "setagaya_waiting": ParticipantFactory(site=setagaya, reference="SET-2"),
        "itabashi": ParticipantFactory(site=itabashi, reference="ITA-1"),
        "itabashi_waiting": ParticipantFactory(site=itabashi, reference="ITA-2"),
        "osaka": ParticipantFactory(site=osaka, reference="OSA-1"),
    }
    responses = {
        "setagaya": _submit(participants["setagaya"]),
        "itabashi": _submit(participants["itabashi"], tool="phone"),
        "osaka": _submit(participants["osaka"]),
    }
    load_kpis(study=study, path=kpis_path())
    segment_unused = Segment.objects.create(study=study, code="unused", name_ja="未使用")
    kpi = KPI.objects.get(study=study, code="reassured")
    run = run_execute(run_id=run_request(study=study, trigger=EvaluationRun.Trigger.COMMAND).pk)
    assert run.status == EvaluationRun.Status.SUCCEEDED, run.error
    draft = evaluation_create(run=run, user=None, language="ja")
    signed = evaluation_create(run=run, user=None, language="en")
    signed.pdf.save("signed.pdf", ContentFile(b"%PDF-1.7\n% a stand-in\n"), save=False)
    root = User.objects.create_superuser("root", password=PASSWORD)
    Evaluation.objects.filter(pk=signed.pk).update(
        pdf=signed.pdf.name,
        status=Evaluation.Status.SIGNED_OFF,
        signed_off_by=root,
        signed_off_at=timezone.now() - dt.timedelta(hours=1),
        statement="Checked.",
        signer_name="Root",
        rendering=Evaluation.Rendering.DONE,
    )
    signed.refresh_from_db()

    world = World(
        study=study,
        setagaya=setagaya,
        itabashi=itabashi,
        other_study=other_study,
        osaka=osaka,
        participants=participants,
        responses=responses,
        run=run,
        draft=draft,
        signed=signed,
        segment_unused=segment_unused,
        kpi=kpi,
    )
    groups = {}
    for role, names in ROLE_PERMISSIONS.items():
        groups[role] = Group.objects.create(name=f"api-{role}")
        groups[role].permissions.set(_permissions(names))
    for site in (setagaya, itabashi):
        for role in ROLE_PERMISSIONS:
            user = User.objects.create_user(f"{role}-{site.code}", password=PASSWORD)
            user.groups.add(groups[role])
            Membership.objects.create(user=user, site=site, role=role)
            world.users[f"{role}@{site.code}"] = user
    both = User.objects.create_user("signer-both", password=PASSWORD)
    both.groups.add(groups["signer"])
    for site in (setagaya, itabashi):
        Membership.objects.create(user=both, site=site, role="signer")
    world.users["signer@both"] = both
    nobody = User.objects.create_user("nobody", password=PASSWORD)
    nobody.groups.add(groups["signer"])  # every permission, no site
    world.users["nobody"] = nobody
    world.users["superuser"] = root
    return world


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def as_user():  # type: ignore[no-untyped-def]
    return client_for
