"""Copying a study: its set-up is copied (sites, a draft of its questionnaire, segments and
KPIs), nothing personal is, and only a manager of every site of it may copy it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.urls import reverse

from kpi.models import KPI, Segment
from surveys import copying
from surveys.models import Instrument, Membership, Participant, Response, Site, Study
from tests.surveys.test_admin_scoping import programme_managers

NEW = {
    "code": "tokyo-dx-2022",
    "name_ja": "東京都DX推進実証実験 2022",
    "name_en": "Tokyo DX pilot 2022",
    "period_start": dt.date(2022, 4, 1),
    "period_end": dt.date(2022, 12, 31),
}


@pytest.fixture
def client(client):  # type: ignore[no-untyped-def]
    """A manager who reads the admin in English (the messages checked are the English
    ones; the site's default language is Japanese)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.cookies["django_language"] = "en"
    return client


def member(reference_study: Study, username: str, roles: dict[str, str]) -> User:
    """A staff user of the programme managers' group with ``roles`` by site code."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(programme_managers())
    for code, role in roles.items():
        Membership.objects.create(user=user, site=reference_study.sites.get(code=code), role=role)
    return User.objects.get(pk=user.pk)


def every_site(reference_study: Study, role: str) -> dict[str, str]:
    return {site.code: role for site in reference_study.sites.all()}


def post_copy(client, study: Study, **overrides):  # type: ignore[no-untyped-def]
    data = {**NEW, **overrides}
    data = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data.items()}
    return client.post(reverse("admin:surveys_study_copy", args=[study.pk]), data)


def questionnaire(instrument: Instrument) -> list[tuple]:
    """The instrument as plain values: codes, texts, choices, conditions."""
    return [
        (
            q.code,
            q.order,
            q.type,
            q.required,
            q.text_ja,
            q.text_en,
            q.condition_question.code if q.condition_question else None,
            sorted(c.code for c in q.condition_choices.all()),
            [
                (c.code, c.order, c.label_ja, c.label_en, c.score, c.tags, c.exclusive)
                for c in q.choices.all()
            ],
        )
        for q in instrument.questions.order_by("order")
    ]


def segments(study: Study) -> list[tuple]:
    return [
        (
            s.code,
            s.name_ja,
            sorted(
                (
                    c.question.code,
                    tuple(sorted((ch.question.code, ch.code) for ch in c.choices.all())),
                    c.tag,
                    c.negate,
                )
                for c in s.clauses.all()
            ),
        )
        for s in Segment.objects.filter(study=study).order_by("code")
    ]


def kpis(study: Study) -> list[dict]:
    rows = []
    for k in KPI.objects.filter(study=study).order_by("code"):
        rows.append(
            {
                "code": k.code,
                "name_ja": k.name_ja,
                "kind": k.kind,
                "base": k.base,
                "comparator": k.comparator,
                "threshold": k.threshold,
                "rule": k.rule,
                "confidence": k.confidence,
                "min_n": k.min_n,
                "by_site": k.by_site,
                "numerator": k.numerator.code if k.numerator else None,
                "base_segment": k.base_segment.code if k.base_segment else None,
                "mean_question": k.mean_question.code if k.mean_question else None,
            }
        )
    return rows


def test_a_manager_of_every_site_copies_the_set_up_and_nothing_personal(reference_study, client):
    user = member(reference_study, "hanako", every_site(reference_study, "manager"))
    client.force_login(user)
    response = post_copy(client, reference_study)
    copy = Study.objects.get(code=NEW["code"])
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:surveys_study_change", args=[copy.pk])

    assert (copy.name_ja, copy.name_en, copy.period_start, copy.period_end) == (
        NEW["name_ja"],
        NEW["name_en"],
        NEW["period_start"],
        NEW["period_end"],
    )
    assert copy.status == Study.Status.SETUP
    assert copy.description_ja == reference_study.description_ja
    # The body that publishes the report (the reference study's, from its study.toml).
    assert (copy.issuing_body_ja, copy.issuing_body_en) == (
        "東京都",
        "Tokyo Metropolitan Government",
    )
    # Every site, by code and name, with the new period and no questionnaire window yet.
    assert list(copy.sites.order_by("code").values_list("code", "name_ja", "name_en")) == list(
        reference_study.sites.order_by("code").values_list("code", "name_ja", "name_en")
    )
    assert set(copy.sites.values_list("period_start", "period_end", "survey_opens_at")) == {
        (NEW["period_start"], NEW["period_end"], None)
    }
    # The published questionnaire, as a draft first version of the new study.
    published = reference_study.instruments.get(status=Instrument.Status.PUBLISHED)
    (draft,) = copy.instruments.all()
    assert (draft.version, draft.status) == (1, Instrument.Status.DRAFT)
    assert questionnaire(draft) == questionnaire(published)
    # Segments and KPIs, referring to the copy's own questions and choices.
    assert segments(copy) == segments(reference_study)
    assert kpis(copy) == kpis(reference_study)
    assert not Segment.objects.filter(study=copy, clauses__question__instrument=published).exists()
    assert not KPI.objects.filter(study=copy, mean_question__instrument=published).exists()
    # Nothing personal.
    assert not Participant.objects.filter(site__study=copy).exists()
    assert not Response.objects.filter(site__study=copy).exists()
    assert not copy.evaluations.exists()
    # The copying user has the same role on the new sites; the copy is in the history.
    assert set(
        Membership.objects.filter(site__study=copy).values_list("user__username", "role")
    ) == {("hanako", "manager")}
    assert Membership.objects.filter(site__study=copy).count() == copy.sites.count()
    assert all(
        m.history.first().history_change_reason == "study copied"
        for m in Membership.objects.filter(site__study=copy)
    )
    assert LogEntry.objects.filter(object_id=str(copy.pk), user=user).exists()
    # The source is untouched.
    assert reference_study.instruments.count() == 1
    assert Site.objects.filter(study=reference_study).count() == len(
        every_site(reference_study, "")
    )


def test_contact_details_are_not_copied(reference_study):
    from fieldwork.models import Contact

    participant = Participant.objects.filter(site__study=reference_study).first()
    Contact.objects.create(participant=participant, email="a@example.com")
    admin = User.objects.create_superuser("root", password="pw")
    copy = copying.study_copy(source=reference_study, user=admin, **NEW)
    assert not Contact.objects.filter(participant__site__study=copy).exists()
    # A superuser needs no role on the new sites, and gets none.
    assert not Membership.objects.filter(site__study=copy).exists()


@pytest.mark.parametrize(
    "roles",
    [
        pytest.param({"setagaya": "manager"}, id="manager-of-some-sites"),
        pytest.param({"setagaya": "viewer", "itabashi": "viewer", "fuchu": "viewer"}, id="viewer"),
        pytest.param(
            {"setagaya": "signer", "itabashi": "signer", "fuchu": "viewer"}, id="viewer-on-one"
        ),
    ],
)
def test_anyone_but_a_manager_of_every_site_is_refused_with_a_clear_message(
    reference_study, client, roles
):
    user = member(reference_study, "taro", roles)
    client.force_login(user)
    page = client.get(reverse("admin:surveys_study_change", args=[reference_study.pk]))
    assert reverse("admin:surveys_study_copy", args=[reference_study.pk]) not in page.text
    response = post_copy(client, reference_study)
    assert response.status_code == 403
    assert "Only a manager of every site of this study can copy it" in response.text
    assert not Study.objects.filter(code=NEW["code"]).exists()
    with pytest.raises(copying.CopyRefused):
        copying.study_copy(source=reference_study, user=user, **NEW)


def test_a_signer_of_every_site_may_copy_and_keeps_that_role(reference_study):
    user = member(reference_study, "yuki", every_site(reference_study, "signer"))
    copy = copying.study_copy(source=reference_study, user=user, **NEW)
    assert set(Membership.objects.filter(site__study=copy).values_list("role", flat=True)) == {
        "signer"
    }


def test_a_taken_code_or_a_backwards_period_is_a_form_error_and_copies_nothing(
    reference_study, client
):
    user = member(reference_study, "hanako", every_site(reference_study, "manager"))
    client.force_login(user)
    studies = Study.objects.count()
    taken = post_copy(client, reference_study, code=reference_study.code)
    assert taken.status_code == 200
    assert "A study with this code exists already." in taken.text
    backwards = post_copy(client, reference_study, period_end=dt.date(2022, 1, 1))
    assert backwards.status_code == 200
    assert "The period cannot end before it starts." in backwards.text
    assert Study.objects.count() == studies


def test_a_study_outside_the_callers_scope_is_not_found(reference_study, client):
    other = Study.objects.create(
        code="elsewhere",
        name_ja="別の調査",
        period_start=dt.date(2021, 1, 1),
        period_end=dt.date(2021, 2, 1),
    )
    Site.objects.create(
        study=other,
        code="x",
        name_ja="X",
        period_start=other.period_start,
        period_end=other.period_end,
    )
    user = member(reference_study, "hanako", every_site(reference_study, "manager"))
    client.force_login(user)
    assert post_copy(client, other).status_code == 404
