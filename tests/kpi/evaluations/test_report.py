"""The evaluation report PDF: the reference figures and verdicts in both languages, the
embedded font, the draft marking and the sign-off block, and a renderer that reads
nothing but the project's static files, whatever participants and managers typed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import translation
from pypdf import PdfReader

from kpi.definitions.loading import kpis_path, load_kpis
from kpi.evaluations import services as evaluations
from kpi.evaluations.report import fetcher, render
from kpi.evaluations.report.fetcher import ResourceRefused, StaticFilesFetcher
from kpi.evaluations.report.render import render_pdf as render_pdf_export
from kpi.models import Evaluation, EvaluationRun
from kpi.scoring import execution
from surveys.loading import load_study
from surveys.models import Choice, Site, Study
from tests.kpi.evaluations.conftest import REFERENCE_REPORTS, sign_off

HOSTILE = '<img src="file:///etc/passwd">'

# The reference figures, from shared/seed/README.md and the announcement (not computed here).
RESPONSE_RATE = "65 %"
TOP_TWO = ["100 %", "99 %"]  # reassured 100, continue 99, reuse 100, understood 99
LINE = "87 %"
REACH_RATIO = "3.1"
CHANNEL_CELLS = ["117", "39", "11", "62"]
BASES = ["229", "156", "352"]
TARGET = "70 %"

pytestmark = REFERENCE_REPORTS


# --- helpers ------------------------------------------------------------------------------


def pdf_pages(pdf: bytes) -> list[str]:
    """Each page's text, with no-break spaces as plain spaces."""
    reader = PdfReader(io.BytesIO(pdf))
    return [re.sub(r"[\u00a0\u202f]", " ", page.extract_text() or "") for page in reader.pages]


def number_in(text: str, number: str) -> bool:
    """``number`` stands alone in ``text`` (not as part of a longer number)."""
    return re.search(rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)", text) is not None


def embedded_fonts(pdf: bytes) -> list[tuple[str, bool]]:
    """(BaseFont, has an embedded font program) of every font the pages use."""
    fonts = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = page["/Resources"].get_object()
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            descriptor = described.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor else {}
            embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            fonts.append((str(font["/BaseFont"]), embedded))
    return fonts


def score(study: Study) -> EvaluationRun:
    run = EvaluationRun.objects.create(study=study, trigger="command")
    return execution.run_execute(run_id=run.pk)


@pytest.fixture
def evaluation(reference_study) -> Evaluation:  # type: ignore[no-untyped-def]
    return evaluations.evaluation_create(run=score(reference_study), user=None)


@pytest.fixture
def signed(evaluation: Evaluation) -> Evaluation:
    # The signed PDF is rendered by a task after commit; the test transaction never
    # commits, so only the sign-off itself is recorded here.
    return sign_off(evaluation)


# --- the reference figures ----------------------------------------------------------------


def test_render_pdf_is_what_the_evaluations_module_imports():
    assert render_pdf_export is render.render_pdf


def test_the_japanese_draft_carries_the_reference_figures_verdicts_and_font(reference_reports):
    rendering = reference_reports.draft["ja"]
    assert rendering.evaluation.language == "ja"  # the default language: rendered as "ja"
    pdf = rendering.pdf
    assert pdf.startswith(b"%PDF-")
    pages = pdf_pages(pdf)
    text = "\n".join(pages)

    for value in [RESPONSE_RATE, *TOP_TWO, LINE, TARGET]:
        assert value in text, value
    for number in [REACH_RATIO, *CHANNEL_CELLS, *BASES]:
        assert number_in(text, number), number
    assert "156 / 50 = 3.1" in text
    assert "227 / 229" in text and "155 / 156" in text  # every share names its base
    assert "n = 229" in text and "n = 156" in text
    assert "99.1 %" in text  # the more precise value beside the published 99 %
    # The verdicts in Japanese: "達成" is the announcement's word ("KPIを全て達成").
    assert "達成" in text
    with translation.override("ja"):
        confident = translation.gettext("met with %(level)s %% confidence (one-sided)") % {
            "level": "97.5"
        }
        draft_band = translation.gettext("DRAFT — not signed off")
    assert confident.replace(" %", "%") in text.replace(" %", "%")
    assert draft_band != "DRAFT — not signed off"  # translated, so this checks Japanese
    # Every page says it is a draft; the sign-off block has no signer.
    assert all(draft_band in page for page in pages)
    with translation.override("ja"):
        assert translation.gettext("Not signed off yet") in pages[-1]

    # The font is embedded, and only the @font-face family loaded from
    # static/fonts/ipaexg.ttf is used, never a system font fontconfig happened to find.
    fonts = embedded_fonts(pdf)
    assert fonts
    assert all("IPAex" in name and "Hyoka" in name and embedded for name, embedded in fonts)


def test_the_english_signed_report_has_the_figures_verdicts_and_sign_off_block(
    reference_reports,
):
    signed, pdf = reference_reports.final["en"].evaluation, reference_reports.final["en"].pdf
    pages = pdf_pages(pdf)
    text = "\n".join(pages)

    for value in [RESPONSE_RATE, *TOP_TWO, LINE, TARGET]:
        assert value in text, value
    for number in [REACH_RATIO, *CHANNEL_CELLS, *BASES]:
        assert number_in(text, number), number
    assert "All respondents" in text and "n = 229" in text
    assert "met with 97.5 % confidence (one-sided)" in text
    assert "inconclusive" in text  # Fuchu has no respondents...
    assert "no respondents" in text  # ...and shows it, not 0 %
    assert "Online service: anytime consultation" in text  # the counting rules
    assert "Read the medical articles" in text  # listed as not counted
    assert "DRAFT" not in text

    last = pages[-1]
    assert "Sign-off" in last
    assert "Hanako Yamada" in last and "Head of child-rearing support" in last
    assert "I have checked the counts, bases, intervals and verdicts." in last
    assert signed.snapshot_sha256 in last.replace(" ", "")
    assert f"No. {signed.pk}" in last
    # The reference study withholds small per-site counts (k = 5): the snapshot, which
    # holds them, stays with the issuer, committed to by the digest printed; what the
    # report publishes rides along, its own SHA-256 printed in the attachments table
    # (k = 1 attaches snapshot.json itself: test_evidence.py).
    attachments = PdfReader(io.BytesIO(pdf)).attachments
    assert "snapshot.json" not in attachments
    published = json.loads(attachments["published.json"][0])
    assert published["withheld"]["threshold"] == 5
    assert {
        k: v for k, v in published.items() if k not in ("results", "distributions", "withheld")
    } == {k: v for k, v in signed.snapshot.items() if k not in ("results", "distributions")}
    assert "the issuer keeps it" in " ".join(last.split())
    published_sha = hashlib.sha256(attachments["published.json"][0]).hexdigest()
    assert published_sha in re.sub(r"\s+", "", text)
    # The footer of every page: the report's title and page X of Y; the study code and
    # the digest are for the auditors' appendix and the sign-off (test_report_typesetting).
    for number, page in enumerate(pages, start=1):
        assert "Tokyo DX pilot: online postpartum support" in page
        assert f"page {number} of {len(pages)}" in page
    assert "tokyo-dx-2021" in last


def test_a_draft_of_a_signed_off_evaluation_leaves_the_signer_out(reference_reports):
    pages = pdf_pages(reference_reports.signed_draft["en"].pdf)
    assert all("DRAFT — not signed off" in page for page in pages)
    assert "Not signed off yet" in pages[-1]
    assert "Hanako Yamada" not in "\n".join(pages)


def test_an_unknown_language_is_refused(reference_reports):
    evaluation = reference_reports.draft["ja"].evaluation
    with pytest.raises(ValueError, match="Japanese or English"):
        render_pdf_export(evaluation, draft=True, language="fr")
    with pytest.raises(ValueError, match="Japanese or English"):
        render.render_html(evaluation, draft=True, language="fr")


# --- nothing but static files -------------------------------------------------------------


def test_the_fetcher_serves_the_shipped_font():
    font = Path(django_settings.BASE_DIR) / "static" / "fonts" / "ipaexg.ttf"
    response = StaticFilesFetcher()(font.as_uri())
    try:
        assert response.read() == font.read_bytes()
    finally:
        response.close()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://example.com/x.png",
        "https://example.com/x.css",
        "ftp://example.com/x",
        "data:text/plain,hello",
        "file://example.com/etc/passwd",
        "fonts/ipaexg.ttf",  # relative: WeasyPrint always passes absolute URLs
    ],
)
def test_the_fetcher_refuses_other_schemes_and_files(url):
    with pytest.raises(ResourceRefused):
        StaticFilesFetcher()(url)


def test_the_fetcher_refuses_a_dot_dot_escape():
    static = fetcher.static_root().as_uri()
    for url in (
        f"{static}/fonts/../../manage.py",
        f"{static}/%2e%2e/manage.py",
        f"{static}/../config/settings.py",
    ):
        with pytest.raises(ResourceRefused):
            StaticFilesFetcher()(url)


def test_the_fetcher_refuses_a_symlink_out_of_the_static_folder(tmp_path, settings):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the report")
    static = tmp_path / "project" / "static"
    static.mkdir(parents=True)
    (static / "inside.css").write_text("p {}")
    (static / "out.css").symlink_to(secret)
    (static / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    settings.BASE_DIR = tmp_path / "project"
    assert StaticFilesFetcher()((static / "inside.css").as_uri()).read() == b"p {}"
    for path in (static / "out.css", static / "linked-dir" / "secret.txt"):
        with pytest.raises(ResourceRefused):
            StaticFilesFetcher()(path.as_uri())


def test_participant_supplied_markup_is_printed_as_text_and_fetches_nothing(
    reference_study, monkeypatch
):
    Study.objects.filter(pk=reference_study.pk).update(description_ja=f"説明 {HOSTILE}")
    Site.objects.filter(study=reference_study, code="setagaya").update(name_ja=f"世田谷区{HOSTILE}")
    # A choice label is drawn inside the SVG chart: it must be escaped there too.
    Choice.objects.filter(
        question__instrument__study=reference_study, question__code="tool", code="other"
    ).update(label_ja=f"その他{HOSTILE}")
    evaluation = evaluations.evaluation_create(run=score(reference_study), user=None)

    asked: list[str] = []

    class Recording(StaticFilesFetcher):
        def fetch(self, url, headers=None):  # type: ignore[no-untyped-def]
            asked.append(url)
            return super().fetch(url, headers)

    monkeypatch.setattr(render, "StaticFilesFetcher", Recording)
    # The stylesheets and their font are parsed once per thread: parse them again here, so
    # that every file this render reads is recorded.
    monkeypatch.setattr(render, "_parsed", threading.local())
    html = render.render_html(evaluation, draft=True)
    assert HOSTILE not in html
    assert "&lt;img src=&quot;file:///etc/passwd&quot;&gt;" in html
    text = "\n".join(pdf_pages(render_pdf_export(evaluation, draft=True)))

    assert not any("passwd" in url for url in asked)
    assert any(url.endswith("/fonts/ipaexg.ttf") for url in asked)  # the recorder works
    assert all(url.startswith(fetcher.static_root().as_uri()) for url in asked)
    compact = text.replace("\n", "").replace(" ", "")
    assert HOSTILE.replace(" ", "") in compact  # printed literally, as text


# --- independent of the machine's fonts -----------------------------------------------------

_NO_FONTS = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><cachedir>{cache}</cachedir></fontconfig>
"""

_RENDER_JAPANESE = """
import warnings, django
warnings.simplefilter("ignore")
django.setup()
import weasyprint
from kpi.evaluations.report.fetcher import StaticFilesFetcher, base_url
html = '<html lang="ja"><link rel="stylesheet" href="kpi/report.css"><p>回収率 65 %</p></html>'
pdf = weasyprint.HTML(string=html, base_url=base_url(), url_fetcher=StaticFilesFetcher())
open({out!r}, "wb").write(pdf.write_pdf())
"""


def test_the_report_font_works_on_a_machine_without_any_font(tmp_path):
    """Fontconfig here knows no font at all; the report still prints Japanese."""
    config = tmp_path / "fonts.conf"
    config.write_text(_NO_FONTS.format(cache=tmp_path / "cache"))
    out = tmp_path / "out.pdf"
    env = {
        **os.environ,
        "FONTCONFIG_FILE": str(config),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    subprocess.run(
        [sys.executable, "-c", _RENDER_JAPANESE.format(out=str(out))],
        cwd=django_settings.BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    pdf = out.read_bytes()
    assert "回収率 65 %" in pdf_pages(pdf)[0].replace("\u00a0", " ")
    fonts = embedded_fonts(pdf)
    assert fonts and all("IPAex" in name and embedded for name, embedded in fonts)


# --- a study without every section --------------------------------------------------------


def test_a_study_with_kpis_but_no_responses_renders(db):
    study = load_study()
    path = kpis_path()
    assert path is not None
    load_kpis(study=study, path=path)
    evaluation = evaluations.evaluation_create(run=score(study), user=None)
    text = "\n".join(pdf_pages(render_pdf_export(evaluation, draft=True, language="en")))
    assert "no respondents" in text or "no participants" in text
    assert "inconclusive" in text
