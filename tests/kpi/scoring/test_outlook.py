"""The fieldwork watch's outlook: for each KPI of the latest scoring that non-response
could flip, how many more respondents (at the fewest) settle it; a manager reads only
what their memberships allow."""

from __future__ import annotations

from fractions import Fraction

import pytest
from django.contrib.auth import get_user_model

from kpi.models import EvaluationRun
from kpi.scoring import execution
from kpi.scoring.selectors import fieldwork_outlook
from surveys.models import Membership

pytestmark = pytest.mark.django_db


def flips(successes: int, respondents: int, invited: int, comparator: str, target: Fraction):
    """Could the answers of the remaining non-respondents change the point verdict?
    Every split of them is tried (independent of the code under test)."""

    def holds(share: Fraction) -> bool:
        return {
            ">=": share >= target,
            ">": share > target,
            "<=": share <= target,
            "<": share < target,
        }[comparator]

    met = holds(Fraction(successes, respondents))
    rest = invited - respondents
    return any(
        holds(Fraction(successes + yes, respondents + k)) != met
        for k in range(rest + 1)
        for yes in (0, k)  # the extremes decide: all of them no, or all of them yes
    )


def score(study) -> EvaluationRun:
    run = EvaluationRun.objects.create(study=study, trigger=EvaluationRun.Trigger.COMMAND)
    execution.run_execute(run_id=run.pk)
    return run


def test_each_kpi_settles_after_exactly_that_many_more_favourable_respondents(
    reference_study,
):
    score(reference_study)
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "x" * 20)
    outlooks = fieldwork_outlook(admin, reference_study)
    assert outlooks, "the reference study has shares over respondents with targets"
    assert outlooks[0].result.site_id is None  # the whole study first
    # Some verdict is still open in the reference study (else this test would check nothing).
    assert any(o.to_settle > 0 for o in outlooks)
    for outlook in outlooks:
        r = outlook.result
        target = Fraction(r.threshold) / 100  # a share's target is stored in percent
        met = r.met_point
        favourable_yes = met == (r.comparator in (">=", ">"))

        def after(more: int, r=r, favourable_yes=favourable_yes) -> tuple[int, int]:
            return r.numerator + (more if favourable_yes else 0), r.denominator + more

        m = outlook.to_settle
        assert not flips(*after(m), r.invited, r.comparator, target), r.kpi_code
        if m > 0:
            assert flips(*after(m - 1), r.invited, r.comparator, target), r.kpi_code


def test_a_site_manager_reads_only_their_sites_outlook(reference_study):
    score(reference_study)
    setagaya = reference_study.sites.get(code="setagaya")
    user = get_user_model().objects.create_user("setagaya-viewer", password="x" * 20)
    Membership.objects.create(user=user, site=setagaya, role=Membership.Role.VIEWER)
    outlooks = fieldwork_outlook(user, reference_study)
    assert outlooks
    # The whole study's rows are the study members'; no other site's ever.
    assert {o.result.site_id for o in outlooks} <= {None, setagaya.pk}
    assert any(o.result.site_id == setagaya.pk for o in outlooks)

    stranger = get_user_model().objects.create_user("nobody", password="x" * 20)
    assert fieldwork_outlook(stranger, reference_study) == []


def test_no_outlook_before_the_first_scoring(reference_study):
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "x" * 20)
    assert fieldwork_outlook(admin, reference_study) == []
