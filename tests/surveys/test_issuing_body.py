"""The body that publishes a study's evaluation report: loaded with the reference study,
set in the study's admin page (the studies API: tests/api/test_study_issuing_body.py)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

# surveys/reference/tokyo-dx-2021/study.toml: the Tokyo Metropolitan Government paid for
# the pilot (shared/seed/README.md).
REFERENCE = ("東京都", "Tokyo Metropolitan Government")


def test_the_reference_study_is_issued_by_the_tokyo_metropolitan_government(reference_study):
    assert (reference_study.issuing_body_ja, reference_study.issuing_body_en) == REFERENCE


def test_the_study_admin_page_edits_the_issuing_body_in_both_languages(study):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-issuer-1234"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    url = reverse("admin:surveys_study_change", args=[study.pk])
    page = client.get(url).content.decode()
    assert "Issuing body (Japanese)" in page and "Issuing body (English)" in page
    response = client.post(
        url,
        {
            "code": study.code,
            "name_ja": study.name_ja,
            "status": study.status,
            "default_language": "ja",
            "period_start": study.period_start.isoformat(),
            "period_end": study.period_end.isoformat(),
            "retention_months": "12",
            "small_cell_threshold": "5",
            "issuing_body_ja": "世田谷区子ども・若者部",
            "issuing_body_en": "Setagaya City, Children and Youth Department",
            "sites-TOTAL_FORMS": "0",
            "sites-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    study.refresh_from_db()
    assert study.issuing_body_ja == "世田谷区子ども・若者部"
    assert study.issuing_body_en == "Setagaya City, Children and Youth Department"
