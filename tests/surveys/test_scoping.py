"""Managers see only their sites' rows; superusers see all."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from surveys import scoping
from surveys.models import Membership, Participant, Site, Study
from tests.factories import ParticipantFactory, SiteFactory


@pytest.fixture
def two_wards(study):  # type: ignore[no-untyped-def]
    setagaya = SiteFactory(study=study, code="setagaya")
    itabashi = SiteFactory(study=study, code="itabashi")
    ParticipantFactory.create_batch(3, site=setagaya)
    ParticipantFactory.create_batch(2, site=itabashi)
    return setagaya, itabashi


def member(site: Site, role: str, name: str = "sato") -> User:
    user = User.objects.create_user(name, is_staff=True)
    Membership.objects.create(user=user, site=site, role=role)
    return user


def test_a_manager_sees_only_their_sites_participants(two_wards):
    setagaya, _itabashi = two_wards
    user = member(setagaya, "manager")
    assert set(scoping.participants(user).values_list("site__code", flat=True)) == {"setagaya"}
    assert scoping.participants(user).count() == 3
    assert list(scoping.sites(user)) == [setagaya]


def test_a_member_of_one_site_is_a_member_of_the_study(two_wards, study):
    setagaya, _ = two_wards
    user = member(setagaya, "viewer")
    assert list(scoping.studies(user)) == [study]
    other = Study.objects.exclude(pk=study.pk)
    assert not scoping.studies(user, other).exists()


def test_roles_rank_viewer_below_manager_below_signer(two_wards):
    setagaya, itabashi = two_wards
    user = member(setagaya, "manager")
    Membership.objects.create(user=user, site=itabashi, role="viewer")
    assert scoping.has_role(user, setagaya, "manager")
    assert not scoping.has_role(user, setagaya, "signer")
    assert scoping.has_role(user, itabashi, "viewer")
    assert not scoping.has_role(user, itabashi, "manager")
    assert set(
        scoping.participants(user, at_least="manager").values_list("site__code", flat=True)
    ) == {"setagaya"}


def test_a_user_without_membership_sees_nothing_and_a_superuser_everything(two_wards):
    nobody = User.objects.create_user("nobody", is_staff=True)
    assert not scoping.participants(nobody).exists()
    assert not scoping.studies(nobody).exists()
    root = User.objects.create_superuser("root")
    assert scoping.participants(root).count() == Participant.objects.count() == 5


def test_an_inactive_member_sees_nothing(two_wards):
    setagaya, _ = two_wards
    user = member(setagaya, "signer")
    user.is_active = False
    user.save()
    assert not scoping.participants(user).exists()
