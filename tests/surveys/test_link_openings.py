"""The first opening of a participant's link is noted once (the fieldwork watch counts
openings per day); later openings, a HEAD and an invalid link note nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from surveys.links import participant_link
from surveys.models import LinkOpening
from surveys.services import participant_create

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_the_first_opening_is_noted_once(reference_study):
    site = reference_study.sites.get(code="setagaya")
    participant = participant_create(site=site, reference="OPEN-1").participant
    client = Client()
    url = path_of(participant_link(participant))

    assert client.head(url).status_code == 200
    assert not LinkOpening.objects.filter(participant=participant).exists()

    assert client.get(url).status_code == 200
    first = LinkOpening.objects.get(participant=participant).opened_at
    assert client.get(url).status_code == 200
    assert LinkOpening.objects.get(participant=participant).opened_at == first
    assert LinkOpening.objects.count() == 1


def test_an_invalid_link_notes_nothing(client):
    assert client.get("/q/" + "A" * 43 + "/").status_code == 404
    assert not LinkOpening.objects.exists()
