"""What an evaluation PDF carries as evidence: its attachments and the manifest of them.

The PDF is PDF/A-3 with these files attached (associated files of the document,
``AFRelationship`` Data or Source):

* ``snapshot.json``: the results snapshot, the exact bytes its SHA-256 is taken of;
  or, when the snapshot froze a small-cell threshold k above 1, ``published.json``
  instead (below);
* ``counts.json``: the aggregate counts every printed figure is computed from (per KPI and
  per site: numerator, base, overlap, respondents, invited, and the confidence, target,
  rule and minimum base that decide the verdict), so that anyone can recompute each
  interval and verdict without Hyoka's database;
* ``manifest.json``: what the report prints in its evidence section, for machines: each
  other attachment's SHA-256, the registration (or null), the time fieldwork opened, the
  deviations, and every figure as printed (value, interval, verdict). The standalone
  verifier (``scripts/verify_evaluation.py``) reads the printed hashes and figures from
  it; it is covered by the signature like the page that prints the same values.

**Small cells.** When the snapshot froze a threshold k > 1 (``kpi.scoring.disclosure``),
the report withholds per-site counts from 1 to k − 1 (and those that would give them
back); the attachments publish no more than the pages do. ``snapshot.json`` is then not
attached: ``published.json`` is the snapshot with each withheld per-site figure null (a
result's counts, and its value, interval, verdict and non-response figures when the
report prints none; a site's withheld choice counts and bases; the per-site figures of
the deviations' effects, which the report prints as verdicts only), and a ``withheld``
map of the marks the report prints ("<5", "x") with the threshold. ``counts.json`` has
the same nulls, each row its marks. The full snapshot stays with the issuer (the
evaluation keeps it; its managers can download it): its SHA-256, printed in the
sign-off, is the commitment to it, and the manifest carries it as ``snapshot_sha256``.
Whole-study figures are always exact. With k = 1 (and for every snapshot made before
there was a threshold) the attachments are as they always were.

A registered study's PDF carries its registration too, as frozen in the snapshot
(``snapshot.registration_data``):

* ``registration.json``: the registered KPI specification, the canonical JSON whose
  SHA-256 was signed and timestamped;
* ``registration.tst``: the RFC 3161 timestamp token over that SHA-256 (DER), whose time
  the report prints as the registration's;
* ``registration.p7s``: the detached CMS signature over the JSON by the programme's
  certificate (DER).

The manifest's ``deviations`` are those recorded up to the evaluation, each with its
effect on each verdict as the run computed it (registered verdict against the verdict
under the deviations, per KPI and scope).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kpi.scoring import disclosure, wording
from kpi.scoring.models import INVITED_FIGURES, RESULT_FIELDS
from kpi.scoring.wording import Result

from . import snapshot as snapshots
from .models import Evaluation

FORMAT = 1
MANIFEST = "manifest.json"
SNAPSHOT = "snapshot.json"
PUBLISHED = "published.json"
COUNTS = "counts.json"
REGISTRATION = "registration.json"
REGISTRATION_TST = "registration.tst"
REGISTRATION_SIGNATURE = "registration.p7s"

#: The fields of a snapshot result that decide its figures: what counts.json carries.
COUNT_FIELDS = (
    "kind",
    "numerator",
    "denominator",
    "overlap",
    "respondents",
    "invited",
    "confidence",
    "comparator",
    "threshold",
    "rule",
    "min_n",
)


#: A per-site result's fields that give its counts back, withheld (with the mark "x")
#: when the report prints no value, interval or verdict for it: the figures, which close
#: the one list of a result's fields.
FIGURE_FIELDS = RESULT_FIELDS[RESULT_FIELDS.index("value") :]

#: The figures of a deviation's effect that the report does not print (only verdicts).
EFFECT_FIGURES = ("value", "ci_low", "ci_high")


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    mime: str
    description: str
    relationship: str = "Data"  # PDF/A-3 AFRelationship

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def withheld_marks(snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """What the report withholds, as it marks it: ``{"threshold": k, "results": {kpi:
    {site: {field: mark}}}, "distributions": {site: {question: {choice: mark}}}}`` ("_answered"
    for a site's base), at the threshold the snapshot froze; None when k = 1 (nothing is
    withheld, and the attachments are the full snapshot's)."""
    k = snapshots.small_cell_threshold(snapshot)
    if k <= 1:
        return None
    protection = disclosure.protect_results(snapshot["results"], k)
    results: dict[str, dict[str, dict[str, str]]] = {}
    for result in snapshot["results"]:
        if result["site"] is None:
            continue
        cells = protection.cells(result)
        # The same marks as the report's per-site tables (context.withheld_row).
        marks = cells.count_marks(has_overlap=result["overlap"] is not None)
        if not cells.invited:
            marks.update(dict.fromkeys(INVITED_FIGURES, disclosure.SECONDARY_MARK))
        if not cells.figures:
            marks.update(dict.fromkeys(FIGURE_FIELDS, disclosure.SECONDARY_MARK))
        if marks:
            results.setdefault(result["kpi_code"], {})[result["site"]] = marks
    distributions: dict[str, dict[str, dict[str, str]]] = {}
    for question, sites in disclosure.protect_distributions(snapshot).items():
        for site, shown in sites.items():
            if shown.marks:
                distributions.setdefault(site, {})[question] = {
                    ("_answered" if c == "_base" else c): mark for c, mark in shown.marks.items()
                }
    return {"threshold": k, "results": results, "distributions": distributions}


def published_document(snapshot: dict[str, Any], marks: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as the report publishes it: every withheld per-site figure null, the
    per-site figures of the deviations' effects null (the report prints their verdicts
    only), and the ``withheld`` marks. Whole-study figures are exact."""
    published = copy.deepcopy(snapshot)
    for result in published["results"]:
        for name in marks["results"].get(result["kpi_code"], {}).get(result["site"] or "", {}):
            result[name] = None
    by_site = (published.get("distributions") or {}).get("by_site") or {}
    for site, questions in marks["distributions"].items():
        for question, choices in questions.items():
            counts = by_site.setdefault(site, {}).setdefault(question, {})
            for choice in choices:
                counts[choice] = None
    for effect in published.get("deviation_effects") or []:
        if effect.get("site") is None:
            continue
        for side in ("registered", "deviated"):
            if effect.get(side):
                effect[side].update(dict.fromkeys(EFFECT_FIGURES))
    published["withheld"] = marks
    return published


def counts_document(
    snapshot: dict[str, Any], marks: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The counts every figure is computed from, read off the frozen snapshot; with
    ``marks`` (k > 1), each withheld count null and the row's ``withheld`` marks.

    A mean's interval needs the sum of squares, which scoring does not keep: the verifier
    checks a mean's value and point verdict only (the reference study has no mean KPI).
    """
    rows = []
    for result in snapshot["results"]:
        row: dict[str, Any] = {
            "kpi": result["kpi_code"],
            "site": result["site"],
            **{name: result[name] for name in COUNT_FIELDS},
            "sum_squares": None,
        }
        if marks is not None:
            withheld = {
                name: mark
                for name, mark in (
                    marks["results"].get(result["kpi_code"], {}).get(result["site"] or "", {})
                ).items()
                if name in COUNT_FIELDS
            }
            row.update(dict.fromkeys(withheld))
            row["withheld"] = withheld
        rows.append(row)
    document: dict[str, Any] = {
        "format": FORMAT,
        "study": snapshot["study"]["code"],
        "results": rows,
    }
    if marks is not None:
        document["small_cell_threshold"] = marks["threshold"]
    return document


def evidence_attachments(evaluation: Evaluation) -> list[Attachment]:
    """The data files the PDF carries, in the order the report lists them."""
    snapshot = evaluation.snapshot
    marks = withheld_marks(snapshot)
    if marks is None:
        data = Attachment(
            name=SNAPSHOT,
            data=snapshots.canonical(snapshot),
            mime="application/json",
            description="Hyoka results snapshot (every figure, definition and question "
            "the report shows)",
        )
    else:
        data = Attachment(
            name=PUBLISHED,
            data=snapshots.canonical(published_document(snapshot, marks)),
            mime="application/json",
            description="Hyoka results snapshot as the report publishes it (counts under "
            "the small-cell threshold withheld: null, with their marks)",
        )
    return [
        data,
        Attachment(
            name=COUNTS,
            data=canonical(counts_document(snapshot, marks)),
            mime="application/json",
            description="Aggregate counts every figure is computed from (per KPI and site)",
            relationship="Source",
        ),
        *registration_attachments(snapshot.get("registration")),
    ]


def registration_attachments(registration: dict[str, Any] | None) -> list[Attachment]:
    """The registered specification, its timestamp token and its signature (none: the
    study is not registered, or the evaluation predates registrations)."""
    if registration is None:
        return []
    return [
        Attachment(
            name=REGISTRATION,
            data=registration["canonical_json"].encode(),
            mime="application/json",
            description="The registered KPI specification (canonical JSON), whose SHA-256 "
            "was signed and timestamped before fieldwork",
            relationship="Source",
        ),
        Attachment(
            name=REGISTRATION_TST,
            data=base64.b64decode(registration["timestamp_token"]),
            mime="application/timestamp-token",
            description="RFC 3161 timestamp token over the registration's SHA-256 (DER)",
            relationship="Source",
        ),
        Attachment(
            name=REGISTRATION_SIGNATURE,
            data=base64.b64decode(registration["signature"]),
            mime="application/pkcs7-signature",
            description="Detached CMS signature of the registration (DER)",
            relationship="Source",
        ),
    ]


def _deviation_kpis(what: str, definitions: list[dict[str, Any]]) -> set[str]:
    """The KPIs a deviation touches: the one it changed ("kpi <code>: ..."), or those
    counting with the segment it changed ("segment <code>: ...")."""
    kind, _, rest = what.partition(" ")
    code = rest.split(":", 1)[0]
    if kind == "kpi":
        return {code}
    return {
        d["code"]
        for d in definitions
        if any((d.get(k) or {}).get("code") == code for k in ("numerator", "base_segment"))
    }


def deviations(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Each deviation recorded up to the evaluation, with beside it its effect on each
    verdict it touches: the registered verdict and the verdict under the deviations
    (``None``: the deviation made the KPI inactive)."""
    effects = snapshot.get("deviation_effects") or []
    out = []
    for deviation in snapshot.get("deviations") or []:
        kpis = _deviation_kpis(deviation["what"], snapshot.get("definitions") or [])
        out.append(
            {
                **deviation,
                "effects": [
                    {
                        "kpi": e["kpi"],
                        "site": e["site"],
                        "registered": e["registered"]["verdict"],
                        "deviated": e["deviated"]["verdict"] if e["deviated"] else None,
                    }
                    for e in effects
                    if e["kpi"] in kpis and not deviation.get("after_run")
                ],
            }
        )
    return out


def printed_figures(
    snapshot: dict[str, Any], marks: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every result's value, interval and verdict as the report prints them (the same
    formatter, ``kpi.scoring.wording``; the numbers are the same in both languages); a
    per-site result whose figures are withheld (``marks``) as its row prints them: no
    value, no interval, inconclusive."""
    figures = []
    for result in snapshot["results"]:
        withheld = (
            (marks or {}).get("results", {}).get(result["kpi_code"], {}).get(result["site"] or "")
        )
        if withheld and "value" in withheld:
            figures.append(
                {
                    "kpi": result["kpi_code"],
                    "site": result["site"],
                    "value": "",
                    "interval": wording.DASH,
                    "verdict": "inconclusive",
                }
            )
            continue
        r = Result.of(result)
        has_value = result["value"] is not None
        figures.append(
            {
                "kpi": result["kpi_code"],
                "site": result["site"],
                "value": wording.headline(r) if has_value else "",
                "interval": wording.interval(r) if has_value else wording.DASH,
                "verdict": wording.verdict_key(r),
            }
        )
    return figures


def fieldwork_opened(snapshot: dict[str, Any]) -> str | None:
    """When the first site's questionnaire opened (ISO 8601), or None if none has a date."""
    opened = [s["survey_opens_at"] for s in snapshot["sites"] if s.get("survey_opens_at")]
    # By moment, not by text: "…00+00:00" and "…00.5+00:00" do not sort as times do.
    return min(opened, key=dt.datetime.fromisoformat) if opened else None


@dataclass(frozen=True)
class Evidence:
    attachments: list[Attachment]
    manifest: dict[str, Any]

    def manifest_attachment(self) -> Attachment:
        return Attachment(
            name=MANIFEST,
            data=canonical(self.manifest),
            mime="application/json",
            description="What this report prints as evidence: the attachments' SHA-256, "
            "the registration, the deviations and every figure",
        )

    def all_attachments(self) -> list[Attachment]:
        return [*self.attachments, self.manifest_attachment()]


def build(evaluation: Evaluation) -> Evidence:
    attachments = evidence_attachments(evaluation)
    snapshot = evaluation.snapshot
    registration = snapshot.get("registration")
    marks = withheld_marks(snapshot)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "evaluation": evaluation.pk,
        "study": snapshot["study"]["code"],
        "attachments": {a.name: a.sha256 for a in attachments},
        "registration": (
            {k: registration[k] for k in ("sha256", "timestamped_at")} if registration else None
        ),
        "fieldwork_opened": fieldwork_opened(snapshot),
        "deviations": deviations(snapshot),
        "figures": printed_figures(snapshot, marks),
    }
    if marks is not None:
        # What the report withholds, as printed, and the commitment to the full snapshot
        # the issuer keeps (the digest the sign-off prints).
        manifest["withheld"] = marks
        manifest["snapshot_sha256"] = snapshots.digest(snapshot)
    return Evidence(attachments, manifest)
