"""The studies API returns the body that publishes the study's evaluation report."""

from __future__ import annotations

from surveys.models import Study
from tests.api.conftest import World


def test_the_studies_api_returns_the_issuing_body(world: World, as_user):  # type: ignore[no-untyped-def]
    Study.objects.filter(pk=world.study.pk).update(
        issuing_body_ja="東京都", issuing_body_en="Tokyo Metropolitan Government"
    )
    client = as_user(world.users["manager@setagaya"])
    body = client.get(f"/api/v1/studies/{world.study.pk}/").json()
    assert (body["issuing_body_ja"], body["issuing_body_en"]) == (
        "東京都",
        "Tokyo Metropolitan Government",
    )
