#!/usr/bin/env python3
"""Verify a Hyoka evaluation PDF with nothing but Python (3.11+) and pyHanko.

    python verify_evaluation.py evaluation.pdf --trust signer.pem --trust tsa.pem

No Django, no database, nothing else of Hyoka: an auditor who has only the PDF and the
certificates they choose to trust can run it (``pip install pyHanko``). It checks

1. the signature: present, intact, made by a certificate chaining to one given with
   ``--trust`` (judged at the time of the signature's trusted timestamp, so that the file
   still verifies after the certificate has expired; ``--at`` verifies as of another
   moment), and followed by nothing but validation data and a document timestamp (PAdES
   B-LT/B-LTA), so that it covers the whole report;
2. the timestamps: the signature's timestamp token (RFC 3161) and the document timestamp
   after it, each valid and from an authority given with ``--trust``; their times are
   printed;
3. the PDF/A-3 identification in the XMP metadata;
4. the attachments: ``manifest.json`` lists the SHA-256 of every other attached file, as
   the report prints them on its evidence page; each file's digest must match, and no
   file may be missing or unlisted;
5. the registration of the KPI specification, when ``registration.json`` is attached:
   its SHA-256 is the one the report prints; ``registration.tst`` is a valid RFC 3161
   timestamp token from an authority given with ``--trust`` whose message imprint is that
   SHA-256; its time is the printed one and comes before fieldwork opened (the earliest
   opening of a site in the snapshot); ``registration.p7s``, when attached, is a valid
   signature of the JSON by a certificate given with ``--trust``. A report of a study
   that was not registered says so (NOTE);
6. the figures: every interval and verdict is recomputed from ``counts.json`` with the
   formulas below (written independently of Hyoka's scoring code) and compared with the
   results snapshot (``snapshot.json``) and with the figures as printed (the manifest's
   ``figures``, the same strings the report's tables show);
7. small cells: a report that withholds per-site counts under a small-cell threshold
   (the manifest's ``withheld``: the marks "<5" and "x" its tables print, by KPI, site
   and field, and by site, question and choice for its charts) attaches ``published.json``
   instead of ``snapshot.json``: the snapshot with each withheld figure null. That is by
   design, and said in one line (the full snapshot's SHA-256, printed in the sign-off,
   commits the issuer to the data it keeps). Every count the manifest marks as withheld
   must be null in ``counts.json`` and ``published.json`` (an attachment carrying it
   would give away what the report withholds), and every null count must be marked;
   a result with a withheld count is not recomputed (they are counted, and the report
   must print no value for it). What is checked is the attachments against the marks
   the manifest lists; that the pages print those marks is for the reader to see.

Each failure is one line starting with ``FAIL``; the exit status is 0 only when every
check passes (1 if any fails, 2 if the file cannot be read at all).

The formulas (the methods section of the report states the same):

* a share x / n: the Wilson score interval without continuity correction,
  (p + z²/2n ± z·sqrt(p(1 − p)/n + z²/4n²)) / (1 + z²/n), with p = x / n and z the
  two-sided normal quantile of the confidence level; the bounds are exactly 0 when x = 0
  and exactly 1 when x = n;
* a ratio a / b of two groups among the same r respondents, ``both`` in both: the delta
  method on the log scale, exp(log(a/b) ∓ z·sqrt(1/a + 1/b − 2·both/(a·b))); no interval
  when a = 0;
* a mean of n scores: mean ∓ z·s/sqrt(n), which needs the sum of squares; when the counts
  do not carry it only the value and the point verdict are checked;
* the verdict: inconclusive when the base is below the KPI's minimum or there is no
  value; otherwise the point estimate (rule "point", compared exactly as a fraction) or
  the interval's unfavourable bound (rule "bound": the low bound for ">=" and ">", the high
  one for "<=" and "<") is compared with the target (a share's target is in percent);
  "met with confidence" when, besides, the unfavourable bound meets the target;
* as printed: a share in whole percent and its interval to one decimal of a percent, a
  ratio to one decimal and its interval to two, a mean to two; halves rounded away from
  zero, from the exact value (the float's shortest decimal for a bound).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import logging
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist
from typing import Any

MANIFEST = "manifest.json"
SNAPSHOT = "snapshot.json"
PUBLISHED = "published.json"
COUNTS = "counts.json"
REGISTRATION = "registration.json"
REGISTRATION_TST = "registration.tst"
REGISTRATION_SIGNATURE = "registration.p7s"
NBSP = "\u00a0"
DASH = "\u2013"
#: How far a recomputed bound may be from the stored one (floating point, not rounding).
TOLERANCE = 1e-9


@dataclass
class Report:
    """What was checked: ``lines`` to print, ``failures`` among them."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"OK    {text}")

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.lines.append(f"FAIL  {text}")

    def note(self, text: str) -> None:
        self.lines.append(f"NOTE  {text}")

    @property
    def passed(self) -> bool:
        return not self.failures


# --- statistics, reimplemented ------------------------------------------------------------


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf((1 + confidence) / 2)


def wilson(x: int, n: int, confidence: float) -> tuple[float, float]:
    z = z_value(confidence)
    p = x / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if x == 0 else max(0.0, centre - spread)
    high = 1.0 if x == n else min(1.0, centre + spread)
    return low, high


def log_ratio(a: int, b: int, both: int, confidence: float) -> tuple[float, float] | None:
    if a == 0:
        return None
    z = z_value(confidence)
    half = z * math.sqrt(1 / a + 1 / b - 2 * both / (a * b))
    centre = math.log(a / b)
    return math.exp(centre - half), math.exp(centre + half)


def normal_mean(total: float, squares: float, n: int, confidence: float) -> tuple[float, float]:
    z = z_value(confidence)
    mean = total / n
    variance = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half


def holds(left: Fraction | float, comparator: str, right: Fraction | float) -> bool:
    if comparator == ">=":
        return left >= right
    if comparator == ">":
        return left > right
    if comparator == "<=":
        return left <= right
    if comparator == "<":
        return left < right
    raise ValueError(f"unknown comparator {comparator!r}")


def exact(value: float) -> Fraction:
    """A float as the decimal it prints as (a bound compared with a target, or rounded)."""
    return Fraction(repr(value))


@dataclass(frozen=True)
class Figure:
    """One result recomputed from its counts."""

    value: Fraction | None
    low: float | None
    high: float | None
    verdict: str  # "", "met", "not_met", "inconclusive"
    met_point: bool | None
    met_with_confidence: bool | None
    printed_value: str
    printed_interval: str
    printed_verdict: str  # "none", "met_confident", "met", "not_met", "inconclusive"


def recompute(counts: dict[str, Any]) -> Figure:
    kind = counts["kind"]
    confidence = float(Decimal(counts["confidence"]))
    x, n = counts["numerator"], counts["denominator"]
    value: Fraction | None = Fraction(x, n) if n else None
    bounds: tuple[float, float] | None = None
    if n and kind == "share":
        bounds = wilson(x, n, confidence)
    elif n and kind == "ratio":
        bounds = log_ratio(x, n, counts["overlap"], confidence)
    elif n and kind == "mean" and counts.get("sum_squares") is not None and n > 1:
        bounds = normal_mean(x, counts["sum_squares"], n, confidence)
    low, high = bounds if bounds else (None, None)

    verdict, met_point, met_with_confidence = "", None, None
    if counts["comparator"]:
        target = Fraction(Decimal(counts["threshold"]))
        if kind == "share":
            target /= 100
        comparator = counts["comparator"]
        if n >= counts["min_n"] and value is not None:
            met_point = holds(value, comparator, target)
            bound = low if comparator in (">=", ">") else high
            if bound is not None:
                met_with_confidence = holds(float(bound), comparator, float(target))
            met = met_point if counts["rule"] == "point" else met_with_confidence
            verdict = "inconclusive" if met is None else ("met" if met else "not_met")
        else:
            verdict = "inconclusive"
    printed_verdict = (
        "none"
        if not verdict
        else "met_confident"
        if verdict == "met" and met_with_confidence
        else verdict
    )
    return Figure(
        value=value,
        low=low,
        high=high,
        verdict=verdict,
        met_point=met_point,
        met_with_confidence=met_with_confidence,
        printed_value=printed_value(kind, value),
        printed_interval=printed_interval(kind, low, high),
        printed_verdict=printed_verdict,
    )


def half_up(value: Fraction, places: int) -> str:
    scaled = abs(value) * 10**places
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    digits = str(whole).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}" if places else digits
    return f"-{text}" if value < 0 and whole else text


def printed_value(kind: str, value: Fraction | None) -> str:
    if value is None:
        return ""
    if kind == "share":
        return f"{half_up(value * 100, 0)}{NBSP}%"
    return half_up(value, 1 if kind == "ratio" else 2)


def printed_interval(kind: str, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return DASH
    if kind == "share":
        return f"{half_up(exact(low) * 100, 1)}{DASH}{half_up(exact(high) * 100, 1)}{NBSP}%"
    return f"{half_up(exact(low), 2)}{DASH}{half_up(exact(high), 2)}"


# --- reading the PDF with pyHanko ---------------------------------------------------------


def attachments(reader: Any) -> dict[str, bytes]:
    """The embedded files by name (the catalog's /EmbeddedFiles name tree)."""
    found: dict[str, bytes] = {}

    def walk(node: Any) -> None:
        node = node.get_object()
        names = node.get("/Names")
        if names is not None:
            names = names.get_object()
            for i in range(0, len(names), 2):
                spec = names[i + 1].get_object()
                stream = spec["/EF"]["/F"].get_object()
                found[str(spec.get("/UF", names[i]))] = stream.data
        for kid in node.get("/Kids", []):
            walk(kid)

    tree = reader.root.get("/Names", {})
    if "/EmbeddedFiles" in tree:
        walk(tree["/EmbeddedFiles"])
    return found


def pdfa_identification(reader: Any) -> tuple[str, str] | None:
    """(part, conformance) from the XMP metadata, or None."""
    if "/Metadata" not in reader.root:
        return None
    xmp = reader.root["/Metadata"].get_object().data.decode("utf-8", "replace")
    part = re.search(r"pdfaid:part(?:=\"|>)\s*(\d)", xmp)
    conformance = re.search(r"pdfaid:conformance(?:=\"|>)\s*([ABUabu])", xmp)
    if not part:
        return None
    return part.group(1), conformance.group(1).upper() if conformance else ""


def load_certificates(paths: Iterable[Path]) -> list[Any]:
    from asn1crypto import pem, x509

    certificates = []
    for path in paths:
        raw = path.read_bytes()
        if pem.detect(raw):
            certificates += [x509.Certificate.load(der) for _, _, der in pem.unarmor(raw, True)]
        else:
            certificates.append(x509.Certificate.load(raw))
    return certificates


def check_signatures(
    reader: Any, trusted: list[Any], report: Report, at: dt.datetime | None = None
) -> None:
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    embedded = reader.embedded_signatures
    signatures = [s for s in embedded if s.sig_object.get("/Type") != "/DocTimeStamp"]
    documents = [s for s in embedded if s.sig_object.get("/Type") == "/DocTimeStamp"]
    if not signatures:
        report.fail("signature: the file is not signed")
        return

    def context(moment: dt.datetime | None = at) -> Any:
        # Only the certificates the auditor trusts; nothing fetched: the validation data
        # is in the file (the development certificates are their own trust anchors).
        return ValidationContext(trust_roots=trusted, allow_fetching=False, moment=moment)

    signature = signatures[-1]
    try:
        status = validate_pdf_signature(
            signature,
            signer_validation_context=context(),
            ts_validation_context=context(),
            skip_diff=True,  # changes_after, below
        )
        token = status.timestamp_validity
        if token is not None and token.intact and token.valid and token.trusted:
            # The signing certificate is judged at the time the authority vouches for,
            # not today: the file still verifies after the certificate has expired.
            status = validate_pdf_signature(
                signature,
                signer_validation_context=context(token.timestamp),
                ts_validation_context=context(),
                skip_diff=True,
            )
    except Exception as exc:  # a damaged signature is an answer, not a crash
        report.fail(f"signature: cannot be validated: {exc}")
        return
    signer = status.signing_cert.subject.human_friendly
    if not status.intact:
        report.fail("signature: the signed content has been altered")
    elif not status.valid:
        report.fail("signature: the cryptographic signature is not valid")
    elif not status.trusted:
        report.fail(f"signature: the signing certificate ({signer}) is not trusted (--trust)")
    else:
        report.ok(f"signature: intact, by {signer}")

    later = changes_after(reader, signature.signed_revision)

    def whole(status: Any) -> bool:
        """Covers the file, or all that follows its revision is validation data and
        document timestamps."""
        return status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
            status.coverage == SignatureCoverageLevel.ENTIRE_REVISION and not later
        )

    if whole(status):
        report.ok("signature: covers the whole report (later revisions: validation data only)")
    else:
        report.fail(f"signature: content was changed after signing ({later[0]})")

    token = status.timestamp_validity
    if token is None:
        report.fail("timestamp: the signature has no timestamp from a time-stamping authority")
    elif not (token.intact and token.valid):
        report.fail("timestamp: the signature's timestamp token is not valid")
    elif not token.trusted:
        report.fail("timestamp: the signature's time-stamping authority is not trusted (--trust)")
    else:
        report.ok(f"timestamp: the signature was timestamped at {token.timestamp.isoformat()}")

    if not documents:
        report.fail("timestamp: no document timestamp after the validation data (not B-LTA)")
    else:
        try:
            stamp = validate_pdf_timestamp(
                documents[-1], validation_context=context(), skip_diff=True
            )
        except Exception as exc:
            report.fail(f"timestamp: the document timestamp cannot be validated: {exc}")
            return
        if not (stamp.intact and stamp.valid):
            report.fail("timestamp: the document timestamp is not valid")
        elif not stamp.trusted:
            report.fail("timestamp: the document timestamp's authority is not trusted (--trust)")
        elif not whole(stamp):
            report.fail("timestamp: content was added after the document timestamp")
        else:
            report.ok(f"timestamp: the document was timestamped at {stamp.timestamp.isoformat()}")
    if "/DSS" in reader.root:
        report.ok("validation data: embedded (DSS)")
    else:
        report.fail("validation data: none embedded (not B-LT)")


#: What PAdES B-LT/B-LTA updates may change in an object that existed when the report was
#: signed: the catalog gains the DSS, the form its timestamp field, a page its widget,
#: the metadata its modification date.
MAY_CHANGE = {
    "/Catalog": {"/DSS", "/AcroForm", "/Metadata"},
    "/AcroForm": {"/Fields", "/SigFlags"},
    "/Page": {"/Annots"},
    "/Info": {"/ModDate", "/Producer"},
}


def changes_after(reader: Any, signed_revision: int) -> list[str]:
    """What the revisions after ``signed_revision`` change beyond validation data and
    document timestamps, in words (empty: nothing).

    pyHanko's own diff analysis proves the same but reads every object of the file; the
    report's structure tree (its tags) makes that seconds for a 30-page report. This
    reads only the objects the later revisions write: new objects can only matter where
    a changed one refers to them, and a changed one may only change the keys above
    (the added fields and widgets must be signature fields).
    """
    from pyhanko.pdf_utils import generic

    problems: list[str] = []
    xrefs = reader.xrefs
    catalog_ref = reader.root_ref
    for revision in range(signed_revision + 1, xrefs.total_revisions):
        before = reader.get_historical_resolver(revision - 1)
        after = reader.get_historical_resolver(revision)
        roles = {catalog_ref.idnum: "/Catalog"}
        old_catalog = before(catalog_ref)
        for key, kind in (("/AcroForm", "/AcroForm"), ("/Metadata", "/Metadata")):
            value = old_catalog.raw_get(key) if key in old_catalog else None
            if isinstance(value, generic.IndirectObject):
                roles[value.idnum] = kind
        info = reader.trailer_view.raw_get("/Info") if "/Info" in reader.trailer_view else None
        if isinstance(info, generic.IndirectObject):
            roles[info.idnum] = "/Info"
        for ref in xrefs.explicit_refs_in_revision(revision):
            introduced = xrefs.get_introducing_revision(ref)
            if introduced == revision or introduced > signed_revision:
                continue  # written after signing: validation data, the timestamp field
            old, new = before(ref), after(ref)
            role = roles.get(ref.idnum)
            if role is None and isinstance(old, generic.DictionaryObject):
                role = "/Page" if old.get("/Type") == "/Page" else None
            if role == "/Metadata":
                continue  # the XMP's dates; the PDF/A identification is checked apart
            allowed = MAY_CHANGE.get(role) if role else None
            if role is None or allowed is None or not isinstance(new, generic.DictionaryObject):
                problems.append(f"object {ref.idnum} was changed in revision {revision}")
                continue
            for key in sorted(set(old) | set(new)):
                if key in allowed:
                    continue
                was = old.raw_get(key) if key in old else None
                now = new.raw_get(key) if key in new else None
                if was != now:
                    problems.append(f"{role[1:]} entry {key} was changed in revision {revision}")
            for key in ("/Fields", "/Annots"):
                if key in allowed and key in new:
                    kept = {x.idnum for x in old.raw_get(key).get_object()} if key in old else set()
                    added = [x for x in new.raw_get(key).get_object() if x.idnum not in kept]
                    missing = kept - {x.idnum for x in new.raw_get(key).get_object()}
                    if missing:
                        problems.append(f"{role[1:]} {key} lost entries in revision {revision}")
                    for item in added:
                        field = item.get_object()
                        kind = field.get("/FT") or field.get("/Parent", {}).get("/FT")
                        if kind != "/Sig":
                            problems.append(f"a non-signature {key[1:-1].lower()} was added")
    return problems


# --- the attachments and the figures ------------------------------------------------------


def load_json(files: dict[str, bytes], name: str, report: Report) -> Any:
    if name not in files:
        report.fail(f"{name}: not attached")
        return None
    try:
        return json.loads(files[name])
    except ValueError as exc:
        report.fail(f"{name}: not JSON ({exc})")
        return None


def check_attachments(files: dict[str, bytes], report: Report) -> dict[str, Any] | None:
    manifest = load_json(files, MANIFEST, report)
    if manifest is None:
        return None
    printed = manifest.get("attachments", {})
    for name, expected in sorted(printed.items()):
        if name not in files:
            report.fail(f"{name}: printed in the report but not attached")
            continue
        actual = hashlib.sha256(files[name]).hexdigest()
        if actual != expected:
            report.fail(f"{name}: SHA-256 {actual} is not the printed {expected}")
        else:
            report.ok(f"{name}: SHA-256 {actual} as printed")
    for name in sorted(set(files) - set(printed) - {MANIFEST}):
        report.fail(f"{name}: attached but not listed in the report")
    deviations = manifest.get("deviations") or []
    report.note(f"deviations: {len(deviations) or 'none'}")
    return manifest


# --- the registration of the KPI specification --------------------------------------------


def _moment(text: Any) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def fieldwork_opened(snapshot: dict[str, Any]) -> str | None:
    opened = [s["survey_opens_at"] for s in snapshot.get("sites", []) if s.get("survey_opens_at")]
    return (
        min(opened, key=lambda t: _moment(t) or dt.datetime.max.replace(tzinfo=dt.UTC))
        if opened
        else None
    )


def check_registration(
    files: dict[str, bytes],
    manifest: dict[str, Any],
    snapshot: dict[str, Any] | None,
    trusted: list[Any],
    report: Report,
) -> None:
    """The registered specification: its printed hash, its timestamp (valid, trusted,
    over that hash, at the printed time, before fieldwork opened) and its signature."""
    import asyncio

    from asn1crypto import cms
    from pyhanko.sign.validation import async_validate_detached_cms
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    printed = manifest.get("registration")
    opened_text = manifest.get("fieldwork_opened")
    if snapshot is not None and opened_text != fieldwork_opened(snapshot):
        report.fail(
            f"registration: the report says fieldwork opened {opened_text} but the snapshot's "
            f"sites opened {fieldwork_opened(snapshot)}"
        )
    opened = _moment(opened_text)
    if REGISTRATION not in files:
        if printed is not None:
            report.fail(f"registration: printed as registered but {REGISTRATION} is not attached")
        else:
            report.note(
                f"registration: not registered; fieldwork opened {opened_text or 'not recorded'}"
            )
        return
    if printed is None:
        report.fail(f"registration: {REGISTRATION} is attached but the report prints none")
        return
    data = files[REGISTRATION]
    digest = hashlib.sha256(data).hexdigest()
    failures_before = len(report.failures)
    if digest != printed.get("sha256"):
        report.fail(
            f"registration: SHA-256 of {REGISTRATION} is {digest}, not the printed "
            f"{printed.get('sha256')}"
        )
    if REGISTRATION_TST not in files:
        report.fail(f"registration: no timestamp token ({REGISTRATION_TST}) attached")
        return
    try:
        token = cms.ContentInfo.load(files[REGISTRATION_TST])
        signed = token["content"]
        info = signed["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        stamped_at = info["gen_time"].native
    except Exception as exc:
        report.fail(f"registration: the timestamp token cannot be read ({exc})")
        return
    stamped = imprint["hashed_message"].native
    if stamped != hashlib.new(algorithm, data).digest():
        report.fail(
            f"registration: the timestamp token is over another document than {REGISTRATION}"
        )
    context = ValidationContext(trust_roots=trusted, allow_fetching=False)
    try:
        # The token's own imprint: whether it is over this JSON is said above, in its line.
        status = asyncio.run(validate_tst_signed_data(signed, context, lambda md: stamped))
    except Exception as exc:
        report.fail(f"registration: the timestamp token cannot be validated ({exc})")
    else:
        if not (status["intact"] and status["valid"]):
            report.fail("registration: the timestamp token is not valid")
        elif status.get("trust_problem_indic") is not None:
            report.fail("registration: the timestamp token's authority is not trusted (--trust)")
    if _moment(printed.get("timestamped_at")) != stamped_at:
        report.fail(
            f"registration: printed as timestamped {printed.get('timestamped_at')} but the "
            f"token says {stamped_at.isoformat()}"
        )
    if opened is None:
        report.fail("registration: the report does not say when fieldwork opened")
    elif stamped_at >= opened:
        report.fail(
            f"registration timestamped {stamped_at.isoformat()} after fieldwork opened "
            f"{opened.isoformat()}"
        )
    if REGISTRATION_SIGNATURE in files:
        try:
            signature = cms.ContentInfo.load(files[REGISTRATION_SIGNATURE])["content"]
            moment = ValidationContext(trust_roots=trusted, allow_fetching=False, moment=stamped_at)
            signed_status = asyncio.run(
                async_validate_detached_cms(data, signature, signer_validation_context=moment)
            )
        except Exception as exc:
            report.fail(f"registration: the signature cannot be validated ({exc})")
        else:
            if not (signed_status.intact and signed_status.valid):
                report.fail(f"registration: the signature of {REGISTRATION} is not valid")
            elif not signed_status.trusted:
                report.fail("registration: the signing certificate is not trusted (--trust)")
    if len(report.failures) == failures_before:
        report.ok(
            f"registration: SHA-256 {digest}, timestamped {stamped_at.isoformat()} by a "
            f"trusted authority, before fieldwork opened {opened_text}"
        )


def _label(kpi: str, site: str | None) -> str:
    return f"{kpi} ({site or 'all sites'})"


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))


COUNTED = ("numerator", "denominator", "overlap", "respondents", "invited")
RULES = ("kind", "confidence", "comparator", "threshold", "rule", "min_n")


def _marks(manifest: dict[str, Any], kpi: str, site: str | None) -> dict[str, str]:
    """The marks the report prints for one result's withheld fields ({} when none)."""
    withheld = manifest.get("withheld") or {}
    marks = ((withheld.get("results") or {}).get(kpi) or {}).get(site or "") or {}
    return marks if isinstance(marks, dict) else {}


def _recomputable(row: dict[str, Any]) -> bool:
    """Whether a row carries the counts its figures are computed from."""
    needed = ["numerator", "denominator"] + (["overlap"] if row.get("kind") == "ratio" else [])
    return all(row.get(name) is not None for name in needed)


def check_withheld(
    counts: dict[str, Any],
    published: dict[str, Any] | None,
    manifest: dict[str, Any],
    report: Report,
) -> None:
    """No attached file carries a count the report withholds, and no count is missing
    that the report does not withhold: every null count in ``counts.json`` and
    ``published.json`` is a marked one, every marked one is null."""
    withheld = manifest.get("withheld")
    failures_before = len(report.failures)
    marked = 0
    for row in counts.get("results", []):
        label = _label(row["kpi"], row["site"])
        marks = _marks(manifest, row["kpi"], row["site"])
        for name in COUNTED:
            if name in marks:
                marked += 1
                if row.get(name) is not None:
                    report.fail(
                        f"{label}: {COUNTS} carries {name} {row.get(name)}, which the report "
                        f'withholds ("{marks[name]}")'
                    )
            elif row.get(name) is None and not (name == "overlap" and row.get("kind") != "ratio"):
                report.fail(f"{label}: {COUNTS} has no {name}, yet the report does not withhold it")
        own = row.get("withheld")
        if own is not None and own != {n: m for n, m in marks.items() if n in COUNTED}:
            report.fail(f"{label}: {COUNTS} marks {own}, the report {marks}")
    if published is not None:
        if published.get("withheld") != withheld:
            report.fail(f"{PUBLISHED}: its withheld marks are not the ones the report lists")
        for result in published.get("results", []):
            marks = _marks(manifest, result.get("kpi_code", ""), result.get("site"))
            for name in marks:
                if result.get(name) is not None:
                    report.fail(
                        f"{_label(result.get('kpi_code', ''), result.get('site'))}: {PUBLISHED} "
                        f"carries {name} {result.get(name)}, which the report withholds "
                        f'("{marks[name]}")'
                    )
            for name in COUNTED:
                if result.get(name) is None and name not in marks and name != "overlap":
                    report.fail(
                        f"{_label(result.get('kpi_code', ''), result.get('site'))}: {PUBLISHED} "
                        f"has no {name}, yet the report does not withhold it"
                    )
        by_site = (published.get("distributions") or {}).get("by_site") or {}
        charts = (withheld or {}).get("distributions") or {}
        for site, questions in by_site.items():
            for question, choices in questions.items():
                marks = (charts.get(site) or {}).get(question) or {}
                for choice, count in choices.items():
                    where = f"{PUBLISHED}: {question} at {site}, {choice}"
                    if choice in marks and count is not None:
                        report.fail(
                            f"{where}: carries {count}, which the report withholds "
                            f'("{marks[choice]}")'
                        )
                    elif choice not in marks and count is None:
                        report.fail(f"{where}: no count, yet the report does not withhold it")
        for site, questions in charts.items():
            for question, marks in questions.items():
                for choice in marks:
                    marked += 1
                    if choice not in ((by_site.get(site) or {}).get(question) or {}):
                        report.fail(
                            f"{PUBLISHED}: {question} at {site}, {choice}: marked but absent"
                        )
    if len(report.failures) == failures_before:
        report.ok(
            f"small cells: the {marked} counts the report withholds (k = "
            f"{(withheld or {}).get('threshold')}) are null in every attachment, and only they"
        )


def check_figures(
    counts: dict[str, Any], snapshot: dict[str, Any], manifest: dict[str, Any], report: Report
) -> None:
    stored = {(r["kpi_code"], r["site"]): r for r in snapshot.get("results", [])}
    printed = {(f["kpi"], f["site"]): f for f in manifest.get("figures", [])}
    checked = 0
    skipped = 0
    failures_before = len(report.failures)
    for row in counts.get("results", []):
        key = (row["kpi"], row["site"])
        label = _label(*key)
        result = stored.get(key)
        if result is None:
            report.fail(f"{label}: in the counts but not in the snapshot")
            continue
        if not _recomputable(row) and manifest.get("withheld"):
            # A withheld count (check_withheld says whether the report withholds it): its
            # figures are not printed either, since each would give the count back.
            skipped += 1
            shown = printed.get(key) or {}
            if shown.get("value") or shown.get("interval") not in (DASH, None):
                report.fail(f"{label}: a figure is printed although its counts are withheld")
            continue
        for name in (*COUNTED, *RULES):
            if str(result.get(name)) != str(row.get(name)):
                report.fail(
                    f"{label}: counts and snapshot disagree on {name} "
                    f"({row.get(name)} against {result.get(name)})"
                )
        figure = recompute(row)
        if row["kind"] == "mean" and row.get("sum_squares") is None:
            report.note(f"{label}: a mean's interval needs the sum of squares; value checked")
        elif _differs(figure.low, result["ci_low"]) or _differs(figure.high, result["ci_high"]):
            report.fail(
                f"{label}: the snapshot's interval {result['ci_low']}..{result['ci_high']} "
                f"is not the recomputed {figure.low}..{figure.high}"
            )
        value = float(figure.value) if figure.value is not None else None
        if _differs(value, result["value"]):
            report.fail(f"{label}: the snapshot's value {result['value']} is not {value}")
        if figure.verdict != (result.get("verdict") or ""):
            report.fail(
                f"{label}: the snapshot's verdict {result.get('verdict') or 'none'} is not the "
                f"recomputed {figure.verdict or 'none'}"
            )
        elif (figure.met_point, figure.met_with_confidence) != (
            result.get("met_point"),
            result.get("met_with_confidence"),
        ):
            report.fail(f"{label}: the snapshot's readings of the target are not the recomputed")
        shown = printed.get(key)
        if shown is None:
            report.fail(f"{label}: no printed figure")
        else:
            for what, mine in (
                ("value", figure.printed_value),
                ("interval", figure.printed_interval),
                ("verdict", figure.printed_verdict),
            ):
                if shown.get(what) != mine and not (row["kind"] == "mean" and what == "interval"):
                    report.fail(
                        f'{label}: printed {what} "{shown.get(what)}" but the attached '
                        f'counts give "{mine}"'
                    )
        checked += 1
    for key in sorted(set(stored) - {(r["kpi"], r["site"]) for r in counts.get("results", [])}):
        report.fail(f"{_label(*key)}: in the snapshot but not in the counts")
    if len(report.failures) == failures_before:
        report.ok(f"figures: {checked} intervals and verdicts recomputed from the counts agree")
    if skipped:
        report.note(
            f"figures: {skipped} withheld figures not recomputable by design (their counts "
            "are under the small-cell threshold or would give such a count back)"
        )


# --- the whole check ----------------------------------------------------------------------


def verify(data: bytes, trusted: list[Any], at: dt.datetime | None = None) -> Report:
    """Every check on the PDF ``data``; ``trusted``: asn1crypto certificates; ``at``: the
    moment to verify at (now by default; later, to see that it still verifies then)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    report = Report()
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
    except Exception as exc:
        report.fail(f"file: not a readable PDF ({exc})")
        return report
    # Each part on its own: damage to one (a changed byte in a compressed stream) must
    # not hide what the others say, the signature's verdict first.
    try:
        check_signatures(reader, trusted, report, at)
    except Exception as exc:
        report.fail(f"signature: cannot be read ({exc})")
    try:
        identification = pdfa_identification(reader)
        files = attachments(reader)
    except Exception as exc:
        report.fail(f"attachments: cannot be read ({exc})")
        return report
    if identification is None or identification[0] != "3":
        report.fail("PDF/A: the metadata does not identify the file as PDF/A-3")
    else:
        report.ok(f"PDF/A: identified as PDF/A-{identification[0]}{identification[1].lower()}")
    manifest = check_attachments(files, report)
    counts = load_json(files, COUNTS, report)
    published = None
    if SNAPSHOT not in files and PUBLISHED in files:
        # A report under the small-cell rule: the snapshot holds what it withholds.
        published = snapshot = load_json(files, PUBLISHED, report)
        k = ((manifest or {}).get("withheld") or {}).get("threshold")
        report.note(
            f"{SNAPSHOT}: not attached, by design: the report withholds counts under its "
            f"small-cell threshold (k = {k}); {PUBLISHED} stands in for it; the full "
            f"snapshot's SHA-256 {(manifest or {}).get('snapshot_sha256')} commits the "
            "issuer to the data it keeps"
        )
    else:
        snapshot = load_json(files, SNAPSHOT, report)
    if manifest is not None:
        try:
            check_registration(files, manifest, snapshot, trusted, report)
        except Exception as exc:
            report.fail(f"registration: cannot be checked ({exc})")
    if manifest is not None and manifest.get("withheld") is not None:
        if SNAPSHOT in files:
            report.fail(
                f"{SNAPSHOT}: attached, with every count the report withholds under its "
                "small-cell threshold"
            )
        if counts is not None:
            check_withheld(counts, published, manifest, report)
    if manifest is not None and counts is not None and snapshot is not None:
        check_figures(counts, snapshot, manifest, report)
    return report


def quiet_pyhanko() -> None:
    """pyHanko logs each validation problem with its traceback; the report's one line
    says what is wrong."""
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        help="a certificate (PEM or DER) to trust: the signer's and the time-stamping "
        "authority's; repeat for each",
    )
    parser.add_argument(
        "--at",
        type=dt.datetime.fromisoformat,
        help="verify as of this moment (ISO 8601 with a UTC offset), e.g. after the "
        "signing certificate has expired",
    )
    args = parser.parse_args(argv)
    quiet_pyhanko()
    try:
        data = args.file.read_bytes()
        trusted = load_certificates(args.trust)
    except (OSError, ValueError) as exc:
        print(f"FAIL  cannot read: {exc}")
        return 2
    report = verify(data, trusted, args.at)
    print(f"File  {args.file} ({len(data):,} bytes), SHA-256 {hashlib.sha256(data).hexdigest()}")
    for line in report.lines:
        print(line)
    print("VERIFIED" if report.passed else f"NOT VERIFIED: {len(report.failures)} failed")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
