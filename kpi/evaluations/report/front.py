"""The front of the report: its cover, its table of contents and its plain-language summary.

Added to the context ``context.build`` makes, from the same snapshot: the issuing body is
the study's (``issuing_body_ja``/``_en``; a snapshot frozen before it existed has none and
the cover leaves it out), the publication date is the sign-off's (a draft shows its own
date, marked as a draft). The contents are one list of (anchor, title) in document order:
each section's h2 carries the anchor as its id and the same title, and the PDF prints the
page each one lands on (``target-counter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from kpi.scoring import wording

from ..models import Evaluation
from . import summary, text
from .words import pick

Data = dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """One line of the contents: the section's anchor (its h2's id) and title."""

    anchor: str
    title: str
    appendix: bool = False


def contents(data: Data) -> list[Entry]:
    """The report's sections in document order (report.html's), those it prints only:
    the same conditions as their templates."""
    entries = [
        Entry("summary", _("Summary")),
        Entry("results", _("KPI verdicts")),
    ]
    if data.get("response_rates"):
        entries.append(Entry("response-rate", _("Response rate by site")))
    if data.get("channels"):
        entries.append(Entry("channels", _("Channel use")))
    if data.get("charts"):
        entries.append(Entry("answers", _("Answers to each question")))
    if data.get("breakdowns"):
        entries.append(Entry("sites", _("Results by site")))
    entries.append(Entry("methods", _("Methods")))
    if data.get("definitions"):
        entries.append(Entry("appendix-definitions", _("Definitions as registered (codes)"), True))
    if data.get("instrument"):
        entries.append(Entry("appendix-questionnaire", _("Appendix: the questionnaire"), True))
    entries.append(Entry("verify", _("How to verify this document"), True))
    if data.get("evidence"):
        entries.append(Entry("appendix-evidence", _("Evidence attached to this file"), True))
    entries.append(Entry("signoff", _("Sign-off")))
    return entries


def publication(evaluation: Evaluation, *, draft: bool) -> Data:
    """The date the report is published on: its sign-off; a draft's own date, marked."""
    if not draft and evaluation.signed_off_at:
        return {"draft": False, "date": text.date(evaluation.signed_off_at)}
    when = evaluation.created_at
    return {"draft": True, "date": text.date(when) if when else ""}


def _respondents(snapshot: Data) -> str:
    overall = [r for r in snapshot.get("results", []) if r["site"] is None]
    if not overall:
        return ""
    respondents, invited = int(overall[0]["respondents"]), int(overall[0]["invited"])
    if not invited:
        return wording.integer(respondents)
    return _("%(respondents)s of %(invited)s invited (%(rate)s)") % {
        "respondents": wording.integer(respondents),
        "invited": wording.integer(invited),
        "rate": wording.pct(Fraction(respondents, invited)),
    }


def _targets(snapshot: Data) -> str:
    judged = [r for r in snapshot.get("results", []) if r["site"] is None and r["comparator"]]
    if not judged:
        return _("none set")
    met = sum(1 for r in judged if r["verdict"] == "met")
    return ngettext(
        "%(met)d of %(total)d met",
        "%(met)d of %(total)d met",
        len(judged),
    ) % {"met": met, "total": len(judged)}


def build(data: Data, evaluation: Evaluation, *, draft: bool) -> Data:
    """The keys the front adds to the report's context (``data``: the rest of it)."""
    snapshot = evaluation.snapshot
    study = snapshot["study"]
    issuing_body = pick(study, "issuing_body")
    published = publication(evaluation, draft=draft)
    sites = [pick(s, "name") or s["code"] for s in snapshot.get("sites", [])]
    return {
        "study": {**data["study"], "issuing_body": issuing_body},
        "cover": {
            "issuing_body": issuing_body,
            "publication": published,
            "sites": text.join(sites),
            "respondents": _respondents(snapshot),
            "targets": _targets(snapshot),
        },
        "contents": contents(data),
        "plain": summary.build(snapshot),
    }
