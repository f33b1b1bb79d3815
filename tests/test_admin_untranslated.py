"""No English left in the Japanese admin: every admin page a superuser reaches (each
model's list, add and change pages, and the custom pages), rendered in Japanese, shows no
message of the project's catalogue untranslated; every verbose name, field label and help
text of the project's models has a Japanese translation.

The catalogue used is the project's ``django.po`` with the pending ones
(``locale/ja/pending/*.po``, merged by the lead) compiled on top, so the test also holds
in a branch whose strings are still pending.
"""

from __future__ import annotations

import contextlib
import html as markup
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from tests.test_translations import PO, parse_po

PENDING = PO.parent.parent / "pending"
PROJECT_APPS = ("surveys", "kpi", "fieldwork")
# Words that read the same in both languages.
SAME_IN_BOTH = {"KPI", "KPIs", "LINE", "ID", "SHA-256", "PDF", "URL", "API", "CSV"}


@pytest.fixture(scope="module")
def catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (shutil.which("msgcat") and shutil.which("msgfmt")):
        pytest.skip("gettext's msgcat and msgfmt are missing (apt-get install gettext)")
    root = tmp_path_factory.mktemp("locale")
    target = root / "ja" / "LC_MESSAGES"
    target.mkdir(parents=True)
    merged = root / "merged.po"
    sources = [str(PO), *sorted(str(p) for p in PENDING.glob("*.po"))]
    subprocess.run(["msgcat", "--use-first", "-o", str(merged), *sources], check=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(merged)], check=True)
    return root


@pytest.fixture
def japanese(catalogue_dir: Path, settings):  # type: ignore[no-untyped-def]
    settings.LOCALE_PATHS = [str(catalogue_dir)]  # resets Django's translation caches
    with translation.override("ja"):
        yield


@pytest.fixture(scope="module")
def sentences(catalogue_dir: Path) -> set[str]:
    """Translated messages that would be noticed as English: two or more words, no
    placeholder (a page shows them filled in)."""
    entries = parse_po((catalogue_dir / "merged.po").read_text(encoding="utf-8"))
    return {
        e.msgid
        for e in entries
        if e.msgid
        and e.msgstr.get(0)
        and e.msgstr[0] != e.msgid
        and not re.search(r"%|\{", e.msgid)
        and len(re.findall(r"[A-Za-z]{3,}", e.msgid)) >= 2
    }


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    # TODO: the permission pickers of the user and group pages list Django's Permission
    # rows, whose names Django stores in English at migrate time ("Can add KPI", "Can
    # sign off an evaluation") and never translates; left out here until they get a
    # translated label (a GroupAdmin/UserAdmin widget of our own).
    page = re.sub(
        r'<select[^>]*name="(user_)?permissions".*?</select>', " ", page, flags=re.S | re.I
    )
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", markup.unescape(page))


def admin_pages() -> list[str]:
    """Each registered model's list, add page and the change page of its first row."""
    urls = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        row = model._default_manager.order_by("pk").first()
        if row is not None:
            with contextlib.suppress(NoReverseMatch):
                urls.append(reverse("admin:{}_{}_change".format(*info), args=[row.pk]))
    return urls


def test_no_admin_page_shows_a_message_of_the_catalogue_in_english(
    reference_study, client, japanese, sentences
):
    from kpi.evaluations import services as evaluations
    from kpi.models import EvaluationRun
    from kpi.scoring import execution

    run = execution.run_execute(
        run_id=EvaluationRun.objects.create(study=reference_study, trigger="command").pk
    )
    root = User.objects.create_superuser("root", password="pw")
    evaluation = evaluations.evaluation_create(run=run, user=root, language="ja")
    client.force_login(root)
    pages = [
        reverse("admin:index"),
        *admin_pages(),
        reverse("admin:kpi_evaluation_sign_off", args=[evaluation.pk]),
        reverse("admin:surveys_study_copy", args=[reference_study.pk]),
    ]
    left: dict[str, list[str]] = {}
    for url in pages:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="ja")
        if response.status_code != 200:
            continue  # a page the admin does not offer (adding a run, say)
        text = visible_text(response.content.decode())
        english = sorted(m for m in sentences if m in text)
        if english:
            left[url] = english
    assert left == {}, "\n".join(f"{u}: {m}" for u, m in left.items())


def test_every_model_label_and_help_text_of_the_project_is_translated(japanese):
    untranslated = []
    for app in PROJECT_APPS:
        for model in apps.get_app_config(app).get_models():
            if model.__name__.startswith("Historical"):
                continue
            texts = [model._meta.verbose_name, model._meta.verbose_name_plural]
            for field in model._meta.get_fields():
                if not getattr(field, "editable", False):
                    continue  # bookkeeping columns no form shows (a claim, a debounce slot)
                texts += [getattr(field, "verbose_name", ""), getattr(field, "help_text", "")]
            for text in texts:
                if not text:
                    continue
                with translation.override("en"):
                    english = str(text)
                if (
                    re.search(r"[A-Za-z]", english)
                    and str(text) == english
                    and english not in SAME_IN_BOTH
                ):
                    untranslated.append(f"{model._meta.label}: {english}")
    assert sorted(set(untranslated)) == [], "\n".join(sorted(set(untranslated)))
