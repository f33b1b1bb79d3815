"""The front of the evaluation report, read from the PDF page by page (pdfplumber), in
Japanese and English: the cover names the issuing body and the publication date, page 2
lists the sections with the page each one really starts on, and the summary page states
the counts (recomputed here from the snapshot's counts)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pdfplumber
import pytest

from kpi.evaluations.report import render
from tests.kpi.evaluations.conftest import REFERENCE_REPORTS
from tests.kpi.evaluations.test_report import evaluation, signed

__all__ = ["evaluation", "signed"]  # the fixtures, used by name

pytestmark = REFERENCE_REPORTS

TOKYO = ZoneInfo("Asia/Tokyo")
# The reference study's issuing body (surveys/reference/tokyo-dx-2021/study.toml).
ISSUER = {"ja": "東京都", "en": "Tokyo Metropolitan Government"}
MONTHS = [
    "Jan.",
    "Feb.",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
]
# The report's sections for the reference study, in document order.
ANCHORS = [
    "summary",
    "results",
    "response-rate",
    "channels",
    "answers",
    "sites",
    "methods",
    "appendix-definitions",
    "appendix-questionnaire",
    "verify",
    "appendix-evidence",
    "signoff",
]


def pages(document: pdfplumber.PDF) -> list[str]:
    """Each page's text, with no-break spaces as plain spaces."""
    return [re.sub(r"[\u00a0\u202f]", " ", p.extract_text() or "") for p in document.pages]


def written_date(when: dt.datetime, language: str) -> str:
    day = when.astimezone(TOKYO).date()
    if language == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def contents_of(page: str) -> dict[str, str]:
    """The contents' lines, "Title.......12": title to page number ("" if none printed)."""
    entries = {}
    for line in page.splitlines():
        match = re.fullmatch(r"(.+?)\s*\.{3,}\s*(\d*)", line.strip())
        if match:
            entries[match.group(1).strip()] = match.group(2)
    return entries


def is_heading(line: str, title: str) -> bool:
    """A section heading as printed: the title, after its section number if it has one."""
    return re.fullmatch(rf"(\d+\.\s*)?{re.escape(title)}", line.strip()) is not None


def first_page_with_heading(texts: list[str], title: str, after: int) -> int | None:
    for number, text in enumerate(texts, start=1):
        if number > after and any(is_heading(line, title) for line in text.splitlines()):
            return number
    return None


def expected_counts(snapshot: dict) -> dict[str, int]:  # type: ignore[type-arg]
    """The summary's counts, straight from the snapshot's whole-study counts."""
    overall = [r for r in snapshot["results"] if r["site"] is None]
    respondents = {r["respondents"] for r in overall}
    invited = {r["invited"] for r in overall}
    assert len(respondents) == 1 and len(invited) == 1  # one questionnaire, one count
    judged = [r for r in overall if r["comparator"]]
    return {
        "respondents": respondents.pop(),
        "invited": invited.pop(),
        "targets": len(judged),
        "met": sum(1 for r in judged if r["verdict"] == "met"),
        "confident": sum(1 for r in judged if r["met_with_confidence"]),
    }


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_cover_contents_and_summary_of_the_signed_report(reference_reports, language):
    rendering = reference_reports.final[language]
    signed, texts, html = rendering.evaluation, pages(rendering.document), rendering.html

    # Page 1: who issues it, and when (the sign-off's date, in Japan time).
    assert ISSUER[language] in texts[0]
    assert written_date(signed.signed_off_at, language) in texts[0]
    assert "verify_evaluation.py" not in texts[0]  # the verification moved to the appendix

    # Page 2: every section the report prints, with the page its heading is on.
    entries = rendering.contents
    assert [e.anchor for e in entries] == ANCHORS
    listed = contents_of(texts[1])
    previous = 2
    for entry in entries:
        assert entry.title in listed, entry.title
        assert f'id="{entry.anchor}"' in html, entry.anchor
        page = int(listed[entry.title])
        assert page == first_page_with_heading(texts, entry.title, after=2), entry.title
        assert page >= previous  # in document order
        previous = page

    # The summary page: the counts, recomputed from the snapshot.
    counts = expected_counts(signed.snapshot)
    summary = texts[int(listed[entries[0].title]) - 1]
    missing = counts["invited"] - counts["respondents"]
    rate = round(100 * counts["respondents"] / counts["invited"])  # 65.06: no half to round
    for number in (counts["respondents"], counts["invited"], missing):
        assert re.search(rf"(?<![\d.]){number}(?!\d)", summary), number
    assert f"{rate} %" in summary
    if language == "en":
        r, n = counts["respondents"], counts["invited"]
        assert f"{r} of the {n} people invited answered the questionnaire" in summary
        assert f"{counts['targets']} targets were set before the study." in summary
        assert counts["met"] == counts["confident"] == counts["targets"] == 4
        assert "All 4 were met with confidence." in summary
        assert f"{missing} of the {n} invited did not answer." in summary
        assert "87 %" in summary and "99 %" in summary  # the headline figures
    # The verification box and the study code are in the auditor's appendix, after the
    # questionnaire and before the attached evidence.
    page_of = {e.anchor: int(listed[e.title]) for e in entries if listed[e.title]}
    verify = next(i for i, t in enumerate(texts, start=1) if "verify_evaluation.py FILE.pdf" in t)
    assert verify == page_of["verify"]
    assert page_of["appendix-questionnaire"] <= verify <= page_of["appendix-evidence"]
    assert "tokyo-dx-2021" in texts[verify - 1]


def test_an_english_draft_says_so_on_its_cover_and_summary(reference_reports):
    signed = reference_reports.signed_draft["en"].evaluation
    texts = pages(reference_reports.signed_draft["en"].document)
    date = written_date(signed.created_at, "en")
    assert f"Draft of {date}: not signed off, not for publication" in texts[0]
    assert "Published" not in texts[0]
    summary = texts[2]
    assert "This summary is of a draft" in summary


def test_a_snapshot_from_before_the_issuing_body_still_renders(signed):
    """Snapshots frozen before the issuing body existed have no such key: the cover
    leaves it out."""
    snapshot = dict(signed.snapshot)
    snapshot["study"] = {
        k: v for k, v in snapshot["study"].items() if not k.startswith("issuing_body")
    }
    signed.snapshot = snapshot  # in memory only: the stored one is frozen
    html = render.render_html(signed, draft=True, language="en")
    assert "cover__issuer" not in html
    assert "Evaluation report" in html
