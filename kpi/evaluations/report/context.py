"""The report's template context, built from an evaluation's frozen snapshot alone.

Nothing here reads the database: every figure comes from ``evaluation.snapshot`` (see
``kpi.evaluations.snapshot``), so a signed report can be rendered again, years later, from the same
data and show the same numbers. Values are formatted here, as text, in the active
language; the templates only place them (and Django's autoescaping escapes every string
a participant or a manager supplied).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.utils.translation import get_language, ngettext, pgettext
from django.utils.translation import gettext as _

from kpi.scoring import disclosure, wording
from kpi.scoring import statistics as st
from kpi.scoring.wording import Result
from surveys.bidi import strip_bidi_controls
from surveys.models import Question

from .. import snapshot as snapshot_module
from ..evidence import Evidence
from ..models import Evaluation
from . import charts, front, text, words
from .words import Instrument, pick

Data = dict[str, Any]


@dataclass
class Row:
    """One result as the report prints it."""

    code: str
    name: str
    site: str  # the site's name, or "" for the whole study
    kind: str
    base: str  # who the base is, in words (the KPI's base description)
    n: str  # the base size, "229"
    counts: str  # "227 / 229"
    overlap: str  # ratios: respondents in both groups
    value: str  # as published, "99 %"
    precise: str  # "99.1 %"
    empty: str  # why there is no value ("no respondents"), or ""
    interval: str
    level: str  # "95 %"
    target: str
    verdict: str  # "none", "met_confident", "met", "not_met", "inconclusive"
    verdict_text: str
    mark: str
    nonresponse: str
    tipping: str
    counting: str = ""
    respondents: str = ""
    invited: str = ""

    @property
    def has_value(self) -> bool:
        return not self.empty


def row(
    result: Data,
    *,
    name: str = "",
    site: str = "",
    counting: str = "",
    over_invited: bool = False,
) -> Row:
    has_value = result["value"] is not None
    r = Result.of(result)
    verdict = wording.verdict_key(r)
    return Row(
        code=result["kpi_code"],
        name=name or pick(result, "name"),
        site=site,
        kind=result["kind"],
        base=pick(result, "base_description"),
        n=wording.integer(
            result["respondents"] if result["kind"] == "ratio" else result["denominator"]
        ),
        counts=wording.counts(r),
        overlap=wording.integer(result["overlap"]) if result["overlap"] is not None else "",
        value=wording.headline(r) if has_value else "",
        precise=wording.precise(r) if has_value else "",
        empty="" if has_value else wording.empty_value(r, over_invited=over_invited),
        interval=wording.interval(r) if has_value else wording.DASH,
        level=wording.level(r),
        target=wording.target(r),
        verdict=verdict,
        verdict_text=wording.verdict_text(r),
        mark=wording.MARKS[verdict],
        nonresponse=wording.nonresponse(r),
        tipping=wording.tipping(r),
        counting=counting,
        respondents=wording.integer(result["respondents"]),
        invited=wording.integer(result["invited"]),
    )


@dataclass
class Snapshot:
    """The snapshot, indexed for the report."""

    data: Data
    instrument: Instrument = field(init=False)
    definitions: dict[str, Data] = field(init=False)
    overall: dict[str, Data] = field(init=False)
    by_site: dict[str, dict[str, Data]] = field(init=False)
    sites: list[Data] = field(init=False)
    distributions: dict[str, dict[str, disclosure.SiteDistribution]] = field(init=False)
    kpi_protection: disclosure.KPIProtection | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.instrument = Instrument(self.data.get("instrument"))
        self.definitions = {d["code"]: d for d in self.data.get("definitions", [])}
        self.overall = {}
        self.by_site = {}
        for result in self.data["results"]:
            if result["site"] is None:
                self.overall[result["kpi_code"]] = result
            else:
                self.by_site.setdefault(result["kpi_code"], {})[result["site"]] = result
        self.sites = list(self.data["sites"])
        # Each question's per-site answers as they may be published (the small-cell rule
        # at the threshold the snapshot froze), decided once for every chart and table.
        self.distributions = disclosure.protect_distributions(self.data)

    def codes(self) -> list[str]:
        """KPI codes in the report's order (the snapshot's results are ordered)."""
        return list(self.overall)

    def definition(self, code: str) -> Data | None:
        return self.definitions.get(code)

    def counting(self, code: str) -> str:
        definition = self.definition(code)
        return words.counting(self.instrument, definition) if definition else ""

    def is_response_rate(self, code: str) -> bool:
        definition = self.definition(code)
        if definition is not None:
            return definition["base"] == "invited" and definition["numerator"] is None
        result = self.overall[code]
        return (
            result["kind"] == "share"
            and result["numerator"] == result["respondents"]
            and result["denominator"] == result["invited"]
        )


# --- sections -----------------------------------------------------------------------------


def _sites(snap: Snapshot) -> list[Data]:
    return [
        {
            "code": s["code"],
            "name": pick(s, "name") or s["code"],
            "period": text.period(s["period_start"], s["period_end"]),
            "survey": text.tokyo(s.get("survey_opens_at"), seconds=False)
            if s.get("survey_opens_at")
            else "",
            "survey_closes": text.tokyo(s.get("survey_closes_at"), seconds=False)
            if s.get("survey_closes_at")
            else "",
        }
        for s in snap.sites
    ]


def _verdicts(snap: Snapshot) -> tuple[list[Row], dict[str, int]]:
    rows = [
        row(result, counting=snap.counting(code))
        for code, result in snap.overall.items()
        if result["comparator"]
    ]
    summary = {key: 0 for key in ("met_confident", "met", "not_met", "inconclusive")}
    for r in rows:
        summary[r.verdict] = summary.get(r.verdict, 0) + 1
    summary["total"] = len(rows)
    summary["met_all"] = summary["met"] + summary["met_confident"]
    return rows, summary


def summary_text(summary: dict[str, int]) -> str:
    """ "Of the 4 KPIs with a target, 4 met it (4 with confidence).", and what was not."""
    values = {
        "total": summary["total"],
        "met": summary["met_all"],
        "confident": summary["met_confident"],
        "not_met": summary["not_met"],
        "inconclusive": summary["inconclusive"],
    }
    sentences = [
        ngettext(
            "Of the %(total)d KPI with a target set before the study, %(met)d met it "
            "(%(confident)d with the confidence the KPI asks for).",
            "Of the %(total)d KPIs with a target set before the study, %(met)d met it "
            "(%(confident)d with the confidence the KPI asks for).",
            summary["total"],
        )
        % values
    ]
    if summary["not_met"]:
        sentences.append(
            ngettext("%(not_met)d was not met.", "%(not_met)d were not met.", summary["not_met"])
            % values
        )
    if summary["inconclusive"]:
        sentences.append(
            ngettext(
                "%(inconclusive)d is inconclusive.",
                "%(inconclusive)d are inconclusive.",
                summary["inconclusive"],
            )
            % values
        )
    # Japanese runs sentences together; English separates them with a space.
    return ("" if get_language().startswith("ja") else " ").join(sentences)


def _wilson_row(name: str, respondents: int, invited: int, confidence: str = "0.95") -> Data:
    """A response rate computed here when the study has no response-rate KPI."""
    low: float | None = None
    high: float | None = None
    value: float | None = None
    if invited:
        low, high = st.wilson_interval(respondents, invited, float(confidence))
        value = respondents / invited
    return {
        "kpi_code": "",
        "kind": "share",
        "name_ja": name,
        "numerator": respondents,
        "denominator": invited,
        "respondents": respondents,
        "invited": invited,
        "overlap": None,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "comparator": "",
        "threshold": None,
        "verdict": "",
        "met_with_confidence": None,
        "confidence": confidence,
        "nonresponse_low": None,
        "nonresponse_high": None,
        "tipping_direction": "",
        "tipping_count": None,
        "base_description_ja": "",
    }


def _response_rates(snap: Snapshot) -> Data:
    code = next((c for c in snap.codes() if snap.is_response_rate(c)), None)
    cells = protection(snap)
    sites = []
    withheld = False
    for site in snap.sites:
        result = snap.by_site.get(code, {}).get(site["code"]) if code else None
        if result is not None:
            counted = result
        else:  # any result of the site carries its respondents and invited
            some = next((r[site["code"]] for r in snap.by_site.values() if site["code"] in r), None)
            if some is None:
                continue
            result, counted = _wilson_row("", some["respondents"], some["invited"]), some
        printed, hidden = _rate_row(result, counted, cells, name=pick(site, "name") or site["code"])
        sites.append(printed)
        withheld = withheld or hidden
    if code:
        total = row(snap.overall[code], name=_("All sites"), over_invited=True)
    else:
        some = next(iter(snap.overall.values()))
        total = row(
            _wilson_row("", some["respondents"], some["invited"]),
            name=_("All sites"),
            over_invited=True,
        )
    return {
        "kpi": pick(snap.overall[code], "name") if code else "",
        "base": pick(snap.overall[code], "base_description") if code else "",
        "sites": sites,
        "total": total,
        "withheld": withheld,  # then the table carries the small-cell legend
    }


def _rate_row(
    result: Data, counted: Data, cells: disclosure.KPIProtection, *, name: str
) -> tuple[Row, bool]:
    """A site's response rate under the small-cell rule, as the per-site KPI tables have
    it: respondents withheld there (as the site's respondents, or as this response-rate
    KPI's numerator) are withheld here, and the rate and its interval with them, which
    would give them back; a withheld base (few invited) leaves the rate "too few to
    publish". ``counted`` is the result whose cells say so: ``result`` itself, or, for a
    rate computed here, any KPI result of the site. With whether anything is withheld:
    a withheld number invited is marked too, and takes the rate with it."""
    printed = row(result, name=name, over_invited=True)
    shown = cells.cells(counted)
    own = shown if counted is result else None
    respondents_hidden = not shown.respondents or (own is not None and not own.numerator)
    too_few = own is not None and own.too_few
    if shown.invited and not (respondents_hidden or too_few):
        return printed, False
    mark = shown.respondents_mark or (own.numerator_mark if own else "")
    hidden = replace(
        printed,
        respondents=(mark or disclosure.SECONDARY_MARK)
        if respondents_hidden
        else printed.respondents,
        invited=shown.invited_mark if not shown.invited else printed.invited,
        counts="",
        value="",
        precise="",
        empty=disclosure.withheld_text(replace(shown, denominator=not too_few)),
        interval=wording.DASH,
    )
    return hidden, True


def _channel_rules(snap: Snapshot, codes: Iterable[str]) -> list[Data]:
    """Which choices count in each tagged group the channel KPIs use, and which count in
    none (from the definitions' clauses and the instrument's tags)."""
    tags: dict[str, list[str]] = {}
    for code in codes:
        definition = snap.definition(code)
        if not definition:
            continue
        for segment in (definition["numerator"], definition["base_segment"]):
            for clause in (segment or {}).get("clauses", []):
                if clause["tag"] and clause["tag"] not in tags.setdefault(clause["question"], []):
                    tags[clause["question"]].append(clause["tag"])
    rules = []
    for question, question_tags in tags.items():
        groups = [
            {
                "tag": tag,  # the auditors' appendix prints it; the body numbers the groups
                "choices": [pick(c, "label") for c in snap.instrument.tagged(question, tag)],
            }
            for tag in question_tags
        ]
        others = [
            pick(c, "label")
            for c in snap.instrument.choices(question)
            if not set(c.get("tags", [])) & set(question_tags) and not c.get("exclusive")
        ]
        exclusive = [
            pick(c, "label") for c in snap.instrument.choices(question) if c.get("exclusive")
        ]
        rules.append(
            {
                "question": f"{snap.instrument.ref(question)} "
                + text.quoted(snap.instrument.question_text(question)),
                "code": question,
                "groups": groups,
                "others": others,
                "exclusive": exclusive,
                "exclusive_text": text.join([text.quoted(label) for label in exclusive]),
            }
        )
    return rules


def _channels(snap: Snapshot) -> Data | None:
    cells = [c for c, r in snap.overall.items() if r["group"] == "channel_table"]
    ratios = [c for c, r in snap.overall.items() if r["kind"] == "ratio"]
    if not cells and not ratios:
        return None
    rows = [row(snap.overall[c]) for c in cells]
    base = snap.overall[cells[0]] if cells else None
    ratio_rows = []
    for code in ratios:
        result = snap.overall[code]
        r = row(result)
        ratio_rows.append(
            {
                "row": r,
                "equation": f"{wording.integer(result['numerator'])} / "
                f"{wording.integer(result['denominator'])} = {r.value or wording.DASH}",
            }
        )
    return {
        "rows": rows,
        "base": pick(base, "base_description") if base else "",
        "n": wording.integer(base["denominator"]) if base else "",
        "total_percent": wording.pct(
            Fraction(sum(snap.overall[c]["numerator"] for c in cells), base["denominator"])
        )
        if base and base["denominator"]
        else "",
        "total": wording.integer(sum(snap.overall[c]["numerator"] for c in cells)),
        "ratios": ratio_rows,
        "rules": _channel_rules(snap, [*cells, *ratios]),
    }


# More sites than this: the per-site bars are drawn compact (11 pt a bar).
COMPACT_SITES = 12
# At most this many bars in one drawing, which is kept on one page (with its heading).
BARS_PER_PANEL = 52
# Up to this many columns (the whole study and the sites), a site table has a column per site.
TABLE_COLUMNS = 6


def site_counts(
    snap: Snapshot, question: Data
) -> tuple[charts.SiteCounts, list[charts.SiteCounts]]:
    """The whole study's counts of ``question`` and each site's, in the choices' order:
    the whole study's exact, a site's as the small-cell rule lets them be published
    (a withheld count, or base, is ``None``)."""
    distributions = snap.data.get("distributions", {})
    codes = [c["code"] for c in question["choices"]]
    overall = (distributions.get("overall") or {}).get(question["code"], {})
    total = charts.SiteCounts(
        label=_("All sites"),
        base=int(overall.get("_answered", 0)),
        counts=[int(overall.get(code, 0)) for code in codes],
    )
    published = snap.distributions.get(question["code"], {})
    by_site = distributions.get("by_site") or {}
    sites = []
    for site in snap.sites:
        label = pick(site, "name") or site["code"]
        shown = published.get(site["code"])
        if shown is None:  # a site the protection did not see: no answers at all
            counts = (by_site.get(site["code"]) or {}).get(question["code"], {})
            shown = disclosure.SiteDistribution(
                base=int(counts.get("_answered", 0)),
                counts={code: int(counts.get(code, 0)) for code in codes},
                marks={},
            )
        sites.append(
            charts.SiteCounts(
                label=label,
                base=shown.base,
                counts=[shown.counts.get(code, 0) for code in codes],
            )
        )
    return total, sites


def _share_cells(row: charts.SiteCounts) -> Data:
    """A table row: each answer's count and share of the row's base, "199 (87 %)" (one
    text, so a narrow column wraps it after the count; a second text box per cell would
    double the table's typesetting time at 50 sites), "withheld" where withheld."""
    cells = []
    for count in row.counts:
        if row.base is None or not row.base:
            cells.append(wording.DASH)
        elif count is None:
            cells.append(pgettext("small cell", "withheld"))
        else:
            share = wording.pct(Fraction(count, row.base))
            cells.append(f"{wording.integer(count)} ({share})")
    note = ""
    if row.base is None:
        note = _("too few to publish")
    elif row.base == 0:
        note = _("no respondents")
    return {
        "label": row.label,
        "n": "" if row.base is None else wording.integer(row.base),
        "cells": cells,
        "note": note,
    }


def _description(question_title: str, choices: list[str], rows: list[charts.SiteCounts]) -> str:
    """The chart in words, for the tagged PDF's alternative text."""
    parts = []
    for r in rows:
        if r.base is None:
            parts.append(f"{r.label}: " + _("too few to publish"))
        elif not r.base:
            parts.append(f"{r.label}: " + _("no respondents"))
        else:
            shares = [
                f"{label} "
                + (
                    pgettext("small cell", "withheld")
                    if count is None
                    else wording.pct(Fraction(count, r.base))
                )
                for label, count in zip(choices, r.counts, strict=True)
            ]
            parts.append(f"{r.label} (n = {wording.integer(r.base)}): " + ", ".join(shares))
    return f"{question_title}. " + "; ".join(parts)


def _charts(snap: Snapshot) -> list[Data]:
    """A chart for every closed question: four-point scales as 100 % stacked bars (the
    whole study, then each site); single and multiple choice as bars of the whole study
    and a table of each site's counts and shares."""
    types = {Question.Type.SINGLE, Question.Type.MULTIPLE, Question.Type.SCALE4}
    out = []
    compact = len(snap.sites) > COMPACT_SITES
    for number, question in enumerate(snap.instrument.data["questions"], start=1):
        if question["type"] not in types or not question["choices"]:
            continue
        total, sites = site_counts(snap, question)
        labels = [pick(c, "label") or c["code"] for c in question["choices"]]
        title = f"Q{number} {pick(question, 'text')}"
        answered = total.base or 0
        item: Data = {
            "code": question["code"],
            "title": title,
            "kind": question["type"],
            "answered": wording.integer(answered),
            "multiple": question["type"] == Question.Type.MULTIPLE,
            "chart": None,
            "panels": [],
            "table": None,
            "related": [],
        }
        if question["type"] == Question.Type.SCALE4:
            bars = [total, *sites]
            panels = [bars[i : i + BARS_PER_PANEL] for i in range(0, len(bars), BARS_PER_PANEL)]
            item["panels"] = [
                charts.stacked_chart(
                    panel,
                    labels,
                    withheld_label=pgettext("small cell", "withheld"),
                    too_few_label=_("too few to publish"),
                    empty_label=_("no respondents"),
                    total_first=index == 0,
                    compact=compact,
                    description=_description(title, labels, panel),
                )
                for index, panel in enumerate(panels)
            ]
        else:
            rows = [(label, count or 0) for label, count in zip(labels, total.counts, strict=True)]
            if answered:
                item["chart"] = charts.bar_chart(
                    rows, answered, description=_description(title, labels, [total])
                )
            rows_ = [_share_cells(r) for r in [total, *sites]]
            item["table"] = {
                # Few sites: a column per site, a row per answer (room for the labels);
                # more: a row per site, a column per answer.
                "by_answer": len(rows_) <= TABLE_COLUMNS,
                "columns": labels,
                "rows": rows_,
                "answers": [
                    {"label": label, "cells": [r["cells"][i] for r in rows_]}
                    for i, label in enumerate(labels)
                ],
            }
        if question["type"] == Question.Type.SINGLE:
            item["related"] = [
                row(result)
                for code, result in snap.overall.items()
                if not result["comparator"]
                and result["kind"] == "share"
                and (definition := snap.definition(code)) is not None
                and definition["numerator"]
                and all(
                    c["question"] == question["code"] for c in definition["numerator"]["clauses"]
                )
            ]
        out.append(item)
    return out


def withheld_row(result: Data, cells: disclosure.ResultCells, *, site: str) -> Row:
    """A site's result with a withheld count (small-cell protection): its counts marked,
    no value, interval or verdict (each gives the count back)."""
    r = Result.of(result)
    why = disclosure.withheld_text(cells)
    return Row(
        code=result["kpi_code"],
        name=pick(result, "name"),
        site=site,
        kind=result["kind"],
        base=pick(result, "base_description"),
        n=cells.denominator_mark or wording.integer(result["denominator"]),
        counts=disclosure.counts_text(r.kind, r.numerator, r.denominator, cells),
        overlap=(
            ""
            if result["overlap"] is None
            else wording.integer(result["overlap"])
            if cells.overlap
            else disclosure.SECONDARY_MARK
        ),
        value="",
        precise="",
        # With a target the verdict column says why; without, the value's cell does.
        empty=wording.DASH if result["comparator"] else why,
        interval=wording.DASH,
        level=wording.level(r),
        target=wording.target(r),
        verdict="inconclusive",
        verdict_text=why,
        mark=wording.MARKS["inconclusive"],
        nonresponse="",
        tipping="",
    )


def protection(snap: Snapshot) -> disclosure.KPIProtection:
    """The small-cell protection of the report's per-site figures, at the threshold the
    snapshot froze (none for a snapshot made before there was one): decided once."""
    if snap.kpi_protection is None:
        snap.kpi_protection = disclosure.protect_results(
            snap.data["results"], snapshot_module.small_cell_threshold(snap.data)
        )
    return snap.kpi_protection


def _breakdowns(snap: Snapshot) -> list[Data]:
    out = []
    cells = protection(snap)
    for code, result in snap.overall.items():
        per_site = snap.by_site.get(code)
        if not per_site or snap.is_response_rate(code):
            continue
        rows = []
        for site in snap.sites:
            if site["code"] not in per_site:
                continue
            name = pick(site, "name") or site["code"]
            site_result = per_site[site["code"]]
            shown = cells.cells(site_result)
            rows.append(
                row(site_result, site=name)
                if shown.figures
                else withheld_row(site_result, shown, site=name)
            )
        out.append(
            {
                "code": code,
                "name": pick(result, "name"),
                "base": pick(result, "base_description"),
                "target": wording.target(Result.of(result)),
                "kind": result["kind"],
                "has_target": bool(result["comparator"]),
                "rows": rows,
                "total": row(result, site=_("All sites")),
            }
        )
    return out


def _small_cells(snap: Snapshot, language: str) -> Data:
    """The rule in Methods (only when the snapshot froze a threshold above 1) and the
    legend under the per-site tables (only when something is withheld)."""
    k = snapshot_module.small_cell_threshold(snap.data)
    if k <= 1:
        return {"methods": "", "legend": ""}
    p = protection(snap).protection
    lang = "ja" if language.startswith("ja") else "en"
    return {
        "methods": disclosure.methods_text(k, lang),
        "legend": disclosure.legend_text(k, blanked=bool(p.blanked)) if p.any else "",
    }


def kind_label(kind: str) -> str:
    labels = {"share": _("share"), "ratio": _("ratio of two groups"), "mean": _("mean score")}
    return labels.get(kind, kind)


def _methods(snap: Snapshot) -> list[Data]:
    out = []
    for code in snap.codes():
        definition = snap.definition(code)
        result = snap.overall[code]
        if definition is None:
            continue
        rule = (
            _("the point estimate")
            if definition["rule"] == st.Rule.POINT
            else _("the confidence interval's bound")
        )
        out.append(
            {
                "code": code,
                "name": pick(result, "name"),
                "kind": kind_label(definition["kind"]),
                "base": words.base(snap.instrument, definition),
                "numerator": words.numerator(snap.instrument, definition),
                "target": wording.target(Result.of(result)) or _("none (a descriptive figure)"),
                "rule": rule if result["comparator"] else "",
                "on_bound": definition["rule"] == st.Rule.BOUND,
                "questions": [
                    {
                        "ref": snap.instrument.ref(q),
                        "text": snap.instrument.question_text(q),
                    }
                    for q in words.questions(definition)
                ],
                "level": wording.level(Result.of(result)),
                "min_n": wording.integer(definition["min_n"]),
            }
        )
    return out


def _definitions(snap: Snapshot) -> list[Data]:
    """The auditors' appendix: each definition with the codes it was registered with."""
    out = []
    for code in snap.codes():
        definition = snap.definition(code)
        if definition is None:
            continue
        out.append(
            {
                "code": code,
                "name": pick(snap.overall[code], "name"),
                "numerator": words.coded_numerator(definition),
                "base": words.coded_base(definition),
                "questions": [snap.instrument.coded_ref(q) for q in words.questions(definition)],
                "registered": words.registered(definition),
            }
        )
    return out


def _instrument(snap: Snapshot) -> Data | None:
    data = snap.data.get("instrument")
    if not data:
        return None
    types = {t.value: str(t.label) for t in Question.Type}
    questions = []
    for number, q in enumerate(data["questions"], start=1):
        condition = ""
        if q.get("condition"):
            c = q["condition"]
            condition = _("shown only to those who chose any of %(choices)s in %(question)s") % {
                "choices": text.join(
                    [
                        text.quoted(label)
                        for label in snap.instrument.labels(c["question"], c["choices"])
                    ]
                ),
                "question": snap.instrument.ref(c["question"]),
            }
        questions.append(
            {
                "number": number,
                "code": q["code"],
                "type": types.get(q["type"], q["type"]),
                "required": q["required"],
                "text": pick(q, "text"),
                "help": pick(q, "help"),
                "condition": condition,
                "choices": [
                    {
                        "code": c["code"],
                        "label": pick(c, "label"),
                        "score": "" if c.get("score") is None else str(c["score"]),
                        "tags": ", ".join(c.get("tags", [])),
                        "exclusive": c.get("exclusive", False),
                    }
                    for c in q["choices"]
                ],
            }
        )
    return {"title": pick(data, "title"), "version": data["version"], "questions": questions}


# --- CSS strings --------------------------------------------------------------------------


def css_string(value: str) -> str:
    """``value`` as a CSS string literal body: every character but ASCII letters and
    digits as a six-digit escape, so nothing in it can end the string or the style
    element (and Django's autoescaping leaves it unchanged)."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\{ord(c):06x}" for c in value)


def _page_label() -> tuple[str, str, str]:
    """The texts before, between and after the two page counters ("page ", " of ", "")."""
    label = _("page %(page)s of %(pages)s") % {"page": "\x00", "pages": "\x01"}
    before, rest = label.split("\x00", 1)
    middle, after = rest.split("\x01", 1)
    return before, middle, after


# --- the whole report ---------------------------------------------------------------------


def status_text(evaluation: Evaluation, draft: bool) -> str:
    if draft or evaluation.status == Evaluation.Status.DRAFT:
        return pgettext("evaluation status", "Draft (not signed off)")
    if evaluation.status == Evaluation.Status.WITHDRAWN:
        return pgettext("evaluation status", "Withdrawn after sign-off")
    return pgettext("evaluation status", "Signed off")


def attachment_label(name: str) -> str:
    """What an attached file holds, in the report's language."""
    labels = {
        "snapshot.json": _(
            "The results snapshot: every figure, definition and question this report shows"
        ),
        "published.json": _(
            "The results snapshot as this report publishes it: every figure, definition and "
            "question it shows, with the counts it withholds left out (null)"
        ),
        "counts.json": _("The counts every figure is computed from, per KPI and site"),
        "registration.json": _("The registered KPI specification"),
        "registration.tst": _(
            "The time-stamping authority's token over the registration's SHA-256 (RFC 3161)"
        ),
        "registration.p7s": _("The programme's signature of the registration (CMS)"),
    }
    return labels.get(name, name)


def _evidence(evidence: Evidence) -> Data:
    manifest = evidence.manifest
    opened = manifest["fieldwork_opened"]
    return {
        "attachments": [
            {
                "name": a.name,
                "description": attachment_label(a.name),
                "size": wording.integer(len(a.data)),
                "sha256": a.sha256,
            }
            for a in evidence.attachments
        ],
        "manifest": evidence.manifest_attachment().name,
        "fieldwork_opened": text.tokyo(opened) if opened else _("not recorded"),
        # k > 1: the full snapshot is not attached (published.json instead).
        "withheld": "withheld" in manifest,
        "small_mark": f"<{manifest['withheld']['threshold']}" if "withheld" in manifest else "",
    }


def _registration(registration: Data | None) -> Data | None:
    """The registered specification's hash and time as printed, or None: not registered."""
    if registration is None:
        return None
    return {
        "sha256": registration["sha256"],
        "timestamped_at": text.tokyo(registration["timestamped_at"]),
    }


def _verdict_word(verdict: str | None) -> str:
    """A verdict as a deviation's effect prints it (the run keeps met or not, not the
    confidence it was met with)."""
    words_ = {
        None: _("KPI made inactive"),
        "": _("no target"),
        "met": _("met"),
        "not_met": _("not met"),
        "inconclusive": _("inconclusive"),
    }
    return words_.get(verdict, verdict or "")


def _deviations(deviations: list[Data], snap: Snapshot) -> list[Data]:
    """Each deviation as printed: what, old and new, why, who, when, and beside it its
    effect on each verdict (registered, then under the deviations), by site name."""
    names = {s["code"]: pick(s, "name") or s["code"] for s in snap.data.get("sites", [])}
    cells = protection(snap)

    def value(data: Any) -> str:
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    def withheld(effect: Data) -> bool:
        # A site's verdict gives its counts away where the per-site table withholds them.
        row = snap.by_site.get(effect["kpi"], {}).get(effect["site"]) if effect["site"] else None
        return row is not None and not cells.cells(row).figures

    def verdict(effect: Data, which: str) -> str:
        if withheld(effect):
            return pgettext("small cell", "withheld")
        return _verdict_word(effect[which])

    return [
        {
            "what": d["what"],
            "old": value(d["old"]),
            "new": value(d["new"]),
            "reason": d["reason"],
            "who": d["who"],
            "when": text.tokyo(d["when"]),
            "after_run": d.get("after_run", False),
            "effects": [
                {
                    "kpi": e["kpi"],
                    "scope": names.get(e["site"], e["site"]) if e["site"] else _("All sites"),
                    "registered": verdict(e, "registered"),
                    "deviated": verdict(e, "deviated"),
                    "changes": e["registered"] != e["deviated"] and not withheld(e),
                }
                for e in d["effects"]
            ],
        }
        for d in deviations
    ]


def build(
    evaluation: Evaluation, *, draft: bool, language: str, evidence: Evidence | None = None
) -> Data:
    """The template context; call inside ``translation.override(language)``."""
    data = _sections(evaluation, draft=draft, language=language, evidence=evidence)
    # The cover, the contents (from the sections present) and the plain summary.
    data.update(front.build(data, evaluation, draft=draft))
    return data


def _sections(
    evaluation: Evaluation, *, draft: bool, language: str, evidence: Evidence | None = None
) -> Data:
    snap = Snapshot(evaluation.snapshot)
    study = snap.data["study"]
    run = snap.data["run"]
    verdicts, summary = _verdicts(snap)
    summary_sentence = summary_text(summary)
    digest = evaluation.snapshot_sha256
    languages = dict(settings.LANGUAGES)
    page_before, page_middle, page_after = _page_label()
    draft_band = _("DRAFT — not signed off")
    # The margins name the report and the page, never a code or the digest: those are
    # for the auditors' appendix and the sign-off.
    # The title in the middle of the footer, the page number on its right (a draft says
    # so in the band across the top of every page).
    # Margin boxes are CSS strings, which render_pdf's stripping of direction controls
    # does not reach (css_string escapes them): a name holding an override is printed
    # as typed here as everywhere else.
    footer_centre = strip_bidi_controls(pick(study, "name"))
    signed = not draft and evaluation.status != Evaluation.Status.DRAFT
    return {
        "lang": language,
        "draft": draft,
        "study": {
            "code": study["code"],
            "name": pick(study, "name"),
            "description": pick(study, "description"),
            "period": text.period(study.get("period_start"), study.get("period_end")),
        },
        "sites": _sites(snap),
        "run": {
            "id": run["id"],
            "cutoff": text.tokyo(run["cutoff"]),
            "responses": wording.integer(run["responses_counted"] or 0),
        },
        "evaluation": {
            "id": evaluation.pk,
            "language": str(languages.get(language, language)),
            "status": status_text(evaluation, draft),
            "created": text.tokyo(evaluation.created_at) if evaluation.created_at else "",
        },
        "digest": digest,
        "digest_groups": [digest[i : i + 16] for i in range(0, len(digest), 16)],
        "digest_short": digest[:16],
        # k > 1: the snapshot holds counts the report withholds; it is not attached.
        "snapshot_kept": snapshot_module.small_cell_threshold(snap.data) > 1,
        "verdicts": verdicts,
        "summary": {**summary, "text": summary_sentence},
        "response_rates": _response_rates(snap) if snap.overall else None,
        "channels": _channels(snap),
        "charts": _charts(snap),
        "breakdowns": _breakdowns(snap),
        "small_cells": _small_cells(snap, language),
        "methods": _methods(snap),
        # The Methods' statistical sentences, worded by the one formatter.
        "statistics_words": {
            "confidence": wording.methods_confidence(),
            "nonresponse": wording.methods_nonresponse(),
            "judgements": wording.judgements([Result.of(r) for r in snap.data["results"]]),
        },
        "tags": words.tags(snap.instrument, list(snap.definitions.values())),
        "definitions": _definitions(snap),
        "instrument": _instrument(snap),
        "signoff": {
            "signed": signed,
            "name": evaluation.signer_name,
            "role": evaluation.signer_role,
            "at": text.tokyo(evaluation.signed_off_at) if evaluation.signed_off_at else "",
            "statement": evaluation.statement,
        },
        "css": {
            "draft_band": css_string(draft_band),
            "footer_centre": css_string(footer_centre),
            "page_before": css_string(page_before),
            "page_middle": css_string(page_middle),
            "page_after": css_string(page_after),
            "header": css_string(_("Evaluation report")),
        },
        "draft_band": draft_band,
        "evidence": _evidence(evidence) if evidence else None,
        # Filled from the manifest: the registration's hash and time (None: "not
        # registered") and the deviations from it (empty: "none").
        "registration": _registration(evidence.manifest["registration"]) if evidence else None,
        "deviations": _deviations(evidence.manifest["deviations"], snap) if evidence else [],
        # The PDF's creation date: the sign-off, or the evaluation's creation for a draft.
        "created_iso": (
            (evaluation.signed_off_at or evaluation.created_at).isoformat()
            if (evaluation.signed_off_at or evaluation.created_at)
            else ""
        ),
    }
