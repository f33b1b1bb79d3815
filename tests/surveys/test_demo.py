"""The demo data must reproduce the published figures of the reference case
(shared/seed/README.md). The counts here use the test's own queries over stable codes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from django.db.models import Count, Q

from surveys.demo import generate_demo_responses
from surveys.loading import load_study
from surveys.models import Answer, Participant, Response

ONLINE = {"anytime", "night", "midwife_chat"}
MUNICIPAL = {"ward_phone", "ward_desk"}


def percent(part: int, whole: int) -> int:
    return int((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal(1), ROUND_HALF_UP))


@pytest.fixture
def demo_study(reference_study):  # type: ignore[no-untyped-def]
    """The demo's study and answers, as ``load_study`` and ``generate_demo_responses``
    make them: the suite's reference study (built once per module), which adds only the
    KPIs, which these counts do not read."""
    return reference_study


def submitted(study):  # type: ignore[no-untyped-def]
    return Response.objects.filter(participant__site__study=study, status="submitted")


def test_it_has_352_participants_in_the_two_wards_and_none_in_fuchu(demo_study):
    per_site = dict(
        Participant.objects.filter(site__study=demo_study)
        .values_list("site__code")
        .annotate(n=Count("id"))
    )
    assert per_site.get("setagaya", 0) + per_site.get("itabashi", 0) == 352
    assert "fuchu" not in per_site
    assert demo_study.sites.filter(code="fuchu").exists()


def test_229_respondents_give_the_65_percent_response_rate(demo_study):
    n = submitted(demo_study).count()
    assert n == 229
    assert percent(n, 352) == 65


def test_channel_groups_reproduce_117_39_11_62(demo_study):
    per_response = submitted(demo_study).annotate(
        online=Count(
            "answers",
            filter=Q(answers__question__code="channels", answers__choice__code__in=ONLINE),
        ),
        municipal=Count(
            "answers",
            filter=Q(answers__question__code="channels", answers__choice__code__in=MUNICIPAL),
        ),
    )
    cells = {"online_only": 0, "both": 0, "municipal_only": 0, "neither": 0}
    for online, municipal in per_response.values_list("online", "municipal"):
        key = {(True, False): "online_only", (True, True): "both"}.get(
            (online > 0, municipal > 0),
            "municipal_only" if municipal else "neither",
        )
        cells[key] += 1
    assert cells == {"online_only": 117, "both": 39, "municipal_only": 11, "neither": 62}
    # The reach ratio of the announcement: 156 online users over 50 municipal-desk users.
    assert (117 + 39, 39 + 11) == (156, 50)


def test_the_demo_uses_the_channels_that_do_not_count(demo_study):
    """Articles, live streams, home visits and check-ups appear, so counting rules matter."""
    used = set(
        Answer.objects.filter(response__in=submitted(demo_study), question__code="channels")
        .values_list("choice__code", flat=True)
        .distinct()
    )
    assert {"articles", "live", "home_visit", "checkup", "none"} <= used


def top_two(study, question: str, codes: set[str]) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    answers = Answer.objects.filter(response__in=submitted(study), question__code=question)
    return answers.filter(choice__code__in=codes).count(), answers.count()


@pytest.mark.parametrize(
    ("question", "codes", "base", "expected_percent"),
    [
        ("reassured", {"agree", "somewhat_agree"}, 229, 100),
        ("continue", {"agree", "somewhat_agree"}, 229, 99),
        ("reuse", {"agree", "somewhat_agree"}, 229, 100),
        # Asked only of the 156 respondents who used an online channel.
        ("understood", {"fully", "fairly"}, 156, 99),
    ],
)
def test_top_two_shares_reproduce_the_kpi_table(
    demo_study, question, codes, base, expected_percent
):
    successes, n = top_two(demo_study, question, codes)
    assert n == base
    assert percent(successes, n) == expected_percent


def test_understood_is_answered_exactly_by_the_online_users(demo_study):
    online_users = set(
        Answer.objects.filter(
            response__in=submitted(demo_study),
            question__code="channels",
            choice__code__in=ONLINE,
        ).values_list("response_id", flat=True)
    )
    answered = set(
        Answer.objects.filter(
            response__in=submitted(demo_study), question__code="understood"
        ).values_list("response_id", flat=True)
    )
    assert answered == online_users


def test_line_is_the_most_used_tool_for_87_percent(demo_study):
    tools = dict(
        Answer.objects.filter(response__in=submitted(demo_study), question__code="tool")
        .values_list("choice__code")
        .annotate(n=Count("id"))
    )
    assert sum(tools.values()) == 229
    assert percent(tools["line"], 229) == 87
    # "face-to-face or phone only about 10 %"
    assert percent(tools["phone"] + tools["face_to_face"], 229) == 10


class _Rollback(Exception):
    pass


def test_generation_is_deterministic(db):
    def snapshot() -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        try:
            with transaction.atomic():
                study = load_study()
                generate_demo_responses(study)
                rows = sorted(
                    Answer.objects.filter(response__participant__site__study=study).values_list(
                        "response__participant__reference", "question__code", "choice__code"
                    )
                )
                raise _Rollback
        except _Rollback:
            pass
        return rows

    first = snapshot()
    assert len(first) > 229
    assert snapshot() == first
