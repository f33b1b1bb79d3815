from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from kpi.definitions.loading import kpis_path, load_kpis
from surveys.models import Membership, Study
from tests.factories import SiteFactory, StudyFactory, reference_instrument

PASSWORD = "correct horse battery staple"
SIGNER_PERMISSIONS = (
    "add_registration",
    "view_registration",
    "add_deviation",
    "view_deviation",
    "view_kpi",
    "change_kpi",
    "view_segment",
    "change_segment",
)


def account(username: str, *, role: str | None, sites=(), permissions=SIGNER_PERMISSIONS) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    for site in sites:
        Membership.objects.create(user=user, site=site, role=role)
    return User.objects.get(pk=user.pk)


@pytest.fixture(autouse=True)
def _signing(signing_settings, settings):  # type: ignore[no-untyped-def]
    for name, value in signing_settings.items():
        setattr(settings, name, value)


@pytest.fixture
def planned(db) -> Study:  # type: ignore[no-untyped-def]
    """A study with the reference questionnaire and KPIs, its two sites opening next week."""
    study = StudyFactory()
    reference_instrument(study)
    load_kpis(study=study, path=kpis_path())
    opens = timezone.now() + dt.timedelta(days=7)
    SiteFactory(study=study, survey_opens_at=opens)
    SiteFactory(study=study, survey_opens_at=opens + dt.timedelta(days=1))
    return study


@pytest.fixture
def signer(planned) -> User:  # type: ignore[no-untyped-def]
    return account("signer", role="signer", sites=planned.sites.all())


@pytest.fixture(autouse=True)
def _english():  # type: ignore[no-untyped-def]
    """The messages are asserted in English (the Japanese are in locale/ja/pending)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def registered(planned, signer, tsa):  # type: ignore[no-untyped-def]
    from kpi.registration.services import register

    return register(study=planned, user=signer, password=PASSWORD, statement="Fixed.")
