"""The evaluation PDF as evidence: a PDF/A-3a file carrying its data, signed with a
timestamp and its validation data, that both verifiers (``manage.py verify_evaluation``
and the standalone ``scripts/verify_evaluation.py``) pass, and that each of them fails,
with its own one-line reason, when one thing is tampered with.

Every tampered copy is made the way a forger would: the report rendered by the real
pipeline with one thing changed, then signed and timestamped by the trusted certificate
and authority (a re-signed forgery is what the digests and the recomputation catch; a
change after signing also breaks the signature, tested in test_evaluations_signed.py).
The files are made once for the module; the database work is rolled back after it.

The registered cases are the same reference study registered below the service (its
responses are in, so ``register`` refuses: fieldwork has started), with a real signature
and a real token from the test's authority; for the honest registered report its sites'
opening is then moved after the token's time, as the demo does; for the late one it stays
in 2021, before the token: a registration dated after fieldwork opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import override_settings
from pypdf import PdfReader

from kpi.evaluations import evidence as evidences
from kpi.evaluations.report import context, render
from kpi.evaluations.signing import _signer, sign_pdf
from kpi.evidence.timestamps import stamp
from kpi.models import KPI, Registration
from kpi.registration import canonical, services
from kpi.scoring import wording
from scripts import verify_evaluation as verifier
from surveys.models import Site, Study
from surveys.selectors import instrument_current
from tests.factories import build_reference_study
from tests.kpi.evaluations.conftest import evaluated, signing_and_stamping

DASH, NBSP = "\u2013", "\u00a0"
PASSWORD = "correct horse battery staple"
DEVIATION_REASON = "The programme board raised the continuation target."


@contextlib.contextmanager
def forged_evidence(change: Callable[[evidences.Evidence], evidences.Evidence]) -> Iterator[None]:
    """Render with the evidence ``change`` returns instead of the honest one."""
    honest = evidences.build
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render.evidences, "build", lambda evaluation: change(honest(evaluation)))
        yield


def replace_attachment(evidence: evidences.Evidence, name: str, data: bytes) -> evidences.Evidence:
    """The same manifest (the printed digests) over a different attached file."""
    attachments = [
        dataclasses.replace(a, data=data) if a.name == name else a for a in evidence.attachments
    ]
    return evidences.Evidence(attachments, evidence.manifest)


def edited(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(data)
    edit(document)
    return evidences.canonical(document)


def first_overall(document: dict[str, Any], key: str = "kpi_code") -> dict[str, Any]:
    return next(r for r in document["results"] if r["site"] is None and r.get("comparator"))


def repaint_first_page(signed: bytes, authority_url: str) -> bytes:
    """The signed report with its first page's content replaced in an incremental update,
    closed by a fresh (valid, trusted) document timestamp: what anyone can do to a signed
    file with a public time-stamping authority."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers import PdfTimeStamper
    from pyhanko.sign.timestamps import HTTPTimeStamper

    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    page["/Contents"] = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (all KPIs met) Tj ET")
    )
    writer.mark_update(page_ref)
    stamper = PdfTimeStamper(HTTPTimeStamper(authority_url))
    return stamper.timestamp_pdf(writer, "sha256").getvalue()


def registered_below_the_service(study: Study, user: User) -> Registration:
    """The study's specification signed and timestamped as ``register`` does, stored
    without its check that fieldwork has not started (the reference responses are in)."""
    instrument = instrument_current(study)
    data = canonical.dumps(canonical.specification(study, instrument))
    digest = hashlib.sha256(data).digest()
    signature = asyncio.run(_signer().async_sign_general_data(data, "sha256")).dump()
    token = stamp(digest)
    return Registration.objects.create(
        study=study,
        instrument=instrument,
        canonical_json=data,
        sha256=digest.hex(),
        signature=signature,
        timestamp_token=token.dump(),
        timestamped_at=services._gen_time(token),
        registered_by=user,
        statement="Fixed before fieldwork.",
    )


def open_sites(study: Study, first: dt.datetime) -> dict[int, dt.datetime]:
    """Move the sites' openings so that the first is ``first`` (gaps kept); the old ones."""
    sites = Site.objects.filter(study=study, survey_opens_at__isnull=False)
    old = dict(sites.values_list("pk", "survey_opens_at"))
    earliest = min(old.values())
    for pk, opens in old.items():
        Site.objects.filter(pk=pk).update(survey_opens_at=first + (opens - earliest))
    return old


@pytest.fixture(scope="module")
def files(django_db_setup, django_db_blocker, signing_settings, tsa_files, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The honest signed report and one tampered copy per case, as files."""
    folder = tmp_path_factory.mktemp("evidence")
    out: dict[str, Path] = {}
    with signing_and_stamping(django_db_blocker, signing_settings, tsa_files) as authority:
        study = build_reference_study()
        # Protection off (k = 1): the attachments as every report signed before the
        # small-cell rule carries them, snapshot.json with every count (k = 5, where
        # published.json stands in for it: test_evidence_small_cells.py).
        Study.objects.filter(pk=study.pk).update(small_cell_threshold=1)
        study.refresh_from_db()
        evaluation = evaluated(study)

        def write(name: str, *, of: Any = None, unsigned: bytes | None = None) -> bytes:
            """Render (or take ``unsigned``, rendered before from the same data), sign
            and keep as ``name``; the unsigned bytes."""
            unsigned = unsigned or render.render_pdf(of or evaluation, draft=False)
            pdf = sign_pdf(unsigned, reason=f"test evaluation {evaluation.pk}")
            out[name] = folder / f"{name}.pdf"
            out[name].write_bytes(pdf)
            return unsigned

        honest = write("honest")
        out["unsigned"] = folder / "unsigned.pdf"
        out["unsigned"].write_bytes(honest)
        snapshot_figure = lambda d: first_overall(d).update(ci_low=0.5)  # noqa: E731
        with forged_evidence(
            lambda e: replace_attachment(
                e, "snapshot.json", edited(e.attachments[0].data, snapshot_figure)
            )
        ):
            write("changed-snapshot")

        def fewer(document: dict[str, Any]) -> None:
            row = next(r for r in document["results"] if r["site"] is None and r["comparator"])
            row["numerator"] -= 20

        with forged_evidence(
            lambda e: replace_attachment(e, "counts.json", edited(e.attachments[1].data, fewer))
        ):
            write("changed-counts")

        honest_interval = wording.interval

        def printed(r: wording.Result) -> str:  # one printed interval, page and manifest alike
            text = honest_interval(r)
            return f"10.0{DASH}20.0{NBSP}%" if (r.numerator, r.denominator) == (227, 229) else text

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(wording, "interval", printed)
            write("changed-figure")
        with override_settings(HYOKA_TSA_URL=""):
            write("no-timestamp", unsigned=honest)
        out["changed-after-signing"] = folder / "changed-after-signing.pdf"
        out["changed-after-signing"].write_bytes(
            repaint_first_page(out["honest"].read_bytes(), authority.url)
        )

        # Registered: a deviation after the registration, the sites opening after it.
        signer = User.objects.create_superuser("signer", "signer@example.org", PASSWORD)
        registration = registered_below_the_service(study, signer)
        services.kpi_deviate(
            kpi=KPI.objects.get(study=study, code="continue"),
            fields={"threshold": Decimal("99.5")},
            user=signer,
            password=PASSWORD,
            reason=DEVIATION_REASON,
        )
        in_2021 = open_sites(study, registration.timestamped_at + dt.timedelta(milliseconds=1))

        registered = evaluated(study, language="en")
        write("registered", of=registered)
        with forged_evidence(
            lambda e: replace_attachment(
                e,
                "registration.json",
                edited(e.attachments[2].data, lambda d: d["kpis"][0].update(threshold="1")),
            )
        ):
            write("changed-registration", of=registered)
        for pk, opens in in_2021.items():
            Site.objects.filter(pk=pk).update(survey_opens_at=opens)
        write("registered-late", of=evaluated(study, language="en"))
    out["signer"] = Path(signing_settings["HYOKA_SIGNING_P12"]).with_suffix(".pem")
    out["tsa"] = tsa_files.certificate
    return out


def standalone(files: dict[str, Path], name: str) -> tuple[int, str]:
    """The standalone verifier, trusting the signer and the authority."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = verifier.main(
            [str(files[name]), "--trust", str(files["signer"]), "--trust", str(files["tsa"])]
        )
    return status, output.getvalue()


def command(files: dict[str, Path], name: str, settings: Any) -> tuple[bool, str]:
    """``manage.py verify_evaluation``, trusting the configured certificates."""
    settings.HYOKA_SIGNING_TRUST_ROOTS = [str(files["signer"])]
    settings.HYOKA_TSA_TRUST_ROOTS = [str(files["tsa"])]
    output = io.StringIO()
    try:
        call_command("verify_evaluation", str(files[name]), stdout=output)
    except CommandError:
        return False, output.getvalue()
    return True, output.getvalue()


def failures(text: str) -> list[str]:
    return [line.removeprefix("FAIL  ") for line in text.splitlines() if line.startswith("FAIL")]


# --- the honest file ----------------------------------------------------------------------


def test_the_honest_report_passes_the_standalone_verifier(files):
    status, output = standalone(files, "honest")
    assert (status, failures(output)) == (0, [])
    assert "OK    figures: 44 intervals and verdicts recomputed from the counts agree" in output
    assert re.search(r"OK    timestamp: the signature was timestamped at 20\d\d-", output)
    assert re.search(r"OK    timestamp: the document was timestamped at 20\d\d-", output)
    assert "NOTE  registration: not registered" in output


def test_the_honest_report_passes_the_command_but_for_not_being_stored(files, db, settings):
    passed, output = command(files, "honest", settings)
    # The test's evaluation was rolled back: the only failure is that no stored file has
    # this digest; every check of the file itself passes. (A stored file passing the
    # command: test_evaluations_signed.py.)
    assert failures(output) == ["stored: no evaluation has a file with this SHA-256"]
    assert not passed


def test_the_file_is_pdf_a_3a_tagged_with_its_data_attached(files):
    reader = PdfReader(files["honest"])
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp
    assert 'pdfaid:conformance="A"' in xmp
    assert sorted(reader.attachments) == ["counts.json", "manifest.json", "snapshot.json"]
    manifest = json.loads(reader.attachments["manifest.json"][0])
    for name in ("snapshot.json", "counts.json"):
        data = reader.attachments[name][0]
        assert verifier.hashlib.sha256(data).hexdigest() == manifest["attachments"][name]
    relationships = [
        (str(spec.get_object()["/UF"]), str(spec.get_object()["/AFRelationship"]))
        for spec in reader.trailer["/Root"]["/AF"]
    ]
    assert sorted(relationships) == [
        ("counts.json", "/Source"),
        ("manifest.json", "/Data"),
        ("snapshot.json", "/Data"),
    ]
    info = subprocess.run(
        ["pdfinfo", str(files["honest"])], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"^Tagged:\s+yes$", info, re.MULTILINE)


def test_the_report_prints_each_attachments_digest_and_the_registration_state(files):
    reader = PdfReader(files["honest"])
    text = re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in reader.pages))
    manifest = json.loads(reader.attachments["manifest.json"][0])
    for digest in manifest["attachments"].values():
        assert digest in text
    assert manifest["registration"] is None
    assert manifest["deviations"] == []
    assert manifest["fieldwork_opened"].startswith("2021-")


# --- a registered study ------------------------------------------------------------------


def test_the_registered_report_passes_both_tools_with_its_registration(files, db, settings):
    status, output = standalone(files, "registered")
    assert (status, failures(output)) == (0, []), output
    manifest = json.loads(PdfReader(files["registered"]).attachments["manifest.json"][0])
    line = (
        f"OK    registration: SHA-256 {manifest['registration']['sha256']}, timestamped "
        f"{dt.datetime.fromisoformat(manifest['registration']['timestamped_at']).isoformat()} "
        f"by a trusted authority, before fieldwork opened {manifest['fieldwork_opened']}"
    )
    assert line in output.splitlines()
    _, output = command(files, "registered", settings)
    assert failures(output) == ["stored: no evaluation has a file with this SHA-256"]
    assert line in output.splitlines()


def test_the_registration_is_attached_with_its_token_and_signature(files):
    from asn1crypto import cms

    reader = PdfReader(files["registered"])
    assert sorted(reader.attachments) == [
        "counts.json",
        "manifest.json",
        "registration.json",
        "registration.p7s",
        "registration.tst",
        "snapshot.json",
    ]
    spec = reader.attachments["registration.json"][0]
    manifest = json.loads(reader.attachments["manifest.json"][0])
    assert manifest["registration"]["sha256"] == hashlib.sha256(spec).hexdigest()
    assert json.loads(spec)["kpis"]  # the specification itself, not a reference to it
    token = cms.ContentInfo.load(reader.attachments["registration.tst"][0])
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(spec).digest()
    assert info["gen_time"].native == dt.datetime.fromisoformat(
        manifest["registration"]["timestamped_at"]
    )
    assert info["gen_time"].native < dt.datetime.fromisoformat(manifest["fieldwork_opened"])
    relationships = {
        str(s.get_object()["/UF"]): str(s.get_object()["/AFRelationship"])
        for s in reader.trailer["/Root"]["/AF"]
    }
    assert relationships["registration.json"] == "/Source"


def page_text(path: Path) -> str:
    return re.sub(r"\s+", "", "".join(p.extract_text() or "" for p in PdfReader(path).pages))


def test_the_report_prints_the_registration_and_each_deviation_with_its_effect(files):
    from django.utils import translation

    reader = PdfReader(files["registered"])
    manifest = json.loads(reader.attachments["manifest.json"][0])
    text = page_text(files["registered"])
    with translation.override("en"):
        printed_time = context.text.tokyo(manifest["registration"]["timestamped_at"])
        opened = context.text.tokyo(manifest["fieldwork_opened"])
    assert manifest["registration"]["sha256"] in text
    assert re.sub(r"\s+", "", printed_time) in text
    assert re.sub(r"\s+", "", opened) in text

    [deviation] = manifest["deviations"]
    assert deviation["what"] == "kpi continue: threshold"
    assert (deviation["old"], deviation["new"]) == (
        {"threshold": "70.0000"},
        {"threshold": "99.5000"},
    )
    assert (deviation["reason"], deviation["who"]) == (DEVIATION_REASON, "signer")
    # 227 of 229 (99.1 %) meets "at least 70 %" and misses "at least 99.5 %".
    overall = next(e for e in deviation["effects"] if e["site"] is None)
    assert overall == {"kpi": "continue", "site": None, "registered": "met", "deviated": "not_met"}
    assert {e["kpi"] for e in deviation["effects"]} == {"continue"}

    for words in (
        "Deviation1:kpicontinue:threshold",
        '{"threshold":"70.0000"}',
        '{"threshold":"99.5000"}',
        re.sub(r"\s+", "", DEVIATION_REASON),
        "continue(Allsites):registeredmet;withthedeviationnotmet",
    ):
        assert words in text, words


def test_an_unregistered_report_prints_no_deviation(files):
    assert "Deviation1" not in page_text(files["honest"])


# --- tampered copies: each caught by both tools, with its own line ------------------------

CASES = {
    "changed-registration": (
        r"^registration: SHA-256 of registration\.json is [0-9a-f]{64}, not the printed "
        r"[0-9a-f]{64}$"
    ),
    "registered-late": (r"^registration timestamped 20\d\d-\S+ after fieldwork opened 2021-\S+$"),
    "changed-snapshot": r"^snapshot\.json: SHA-256 [0-9a-f]{64} is not the printed [0-9a-f]{64}$",
    "changed-counts": r"^counts\.json: SHA-256 [0-9a-f]{64} is not the printed [0-9a-f]{64}$",
    "changed-figure": (
        '^\\S+ \\(all sites\\): printed interval "10\\.0–20\\.0\xa0%" but the attached '
        'counts give "\\d+\\.\\d–\\d+\\.\\d\xa0%"$'
    ),
    "no-timestamp": r"^timestamp: the signature has no timestamp from a time-stamping authority$",
    "unsigned": r"^signature: the file is not signed$",
    "changed-after-signing": (
        r"^signature: content was changed after signing \(Page entry /Contents was changed in "
        r"revision \d+\)$"
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_standalone_verifier_names_each_tampering(files, case):
    status, output = standalone(files, case)
    assert status == 1
    assert any(re.match(CASES[case], line) for line in failures(output)), output


@pytest.mark.parametrize("case", CASES)
def test_the_command_names_each_tampering(files, case, db, settings):
    passed, output = command(files, case, settings)
    assert not passed
    assert any(re.match(CASES[case], line) for line in failures(output)), output


def test_changed_counts_also_disagree_with_the_snapshot(files):
    _, output = standalone(files, "changed-counts")
    assert any("counts and snapshot disagree on numerator" in f for f in failures(output))


def test_an_untrusted_authority_is_named(files):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = verifier.main([str(files["honest"]), "--trust", str(files["signer"])])
    assert status == 1
    assert (
        "timestamp: the signature's time-stamping authority is not trusted (--trust)"
        in failures(output.getvalue())
    )


def test_an_untrusted_registration_authority_is_named(files):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        verifier.main([str(files["registered"]), "--trust", str(files["signer"])])
    assert "registration: the timestamp token's authority is not trusted (--trust)" in failures(
        output.getvalue()
    )


# --- after the signing certificate has expired ---------------------------------------------


def issued_certificate(folder: Path, *, days: int) -> tuple[Path, Path]:
    """A CA and a signing certificate it issued, valid ``days`` days (no OCSP or CRL):
    the PKCS#12 of the signer (with the CA) and the CA's certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Test CA"))
        .issuer_name(name("Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("Short-lived signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    p12 = folder / "signer.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"signer", key, leaf, [ca], serialization.BestAvailableEncryption(b"pass")
        )
    )
    ca_pem = folder / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return p12, ca_pem


def test_a_timestamped_file_still_verifies_after_the_signing_certificate_expired(
    files, tsa, tsa_files, tmp_path, settings
):
    import datetime as dt

    p12, ca = issued_certificate(tmp_path, days=1)
    settings.HYOKA_SIGNING_P12, settings.HYOKA_SIGNING_PASSPHRASE = str(p12), "pass"
    unsigned = files["unsigned"].read_bytes()
    stamped = sign_pdf(unsigned, reason="expires tomorrow")
    settings.HYOKA_TSA_URL = ""
    plain = sign_pdf(unsigned, reason="expires tomorrow, no timestamp")
    trusted = verifier.load_certificates([ca, tsa_files.certificate])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)

    assert verifier.verify(stamped, trusted).passed
    assert verifier.verify(stamped, trusted, later).passed  # judged at the timestamp's time
    expired = verifier.verify(plain, trusted, later).failures
    assert (
        "signature: the signing certificate (Common Name: Short-lived signer) is not "
        "trusted (--trust)" in expired
    )


def test_each_deviation_has_the_effects_of_the_kpis_it_touches():
    """A KPI's deviation has that KPI's effects; a segment's, those of the KPIs counting
    with it; one recorded after the run counted, none (the run could not compute them)."""

    def effect(kpi: str, site: str | None, before: str, after: str | None) -> dict[str, Any]:
        return {
            "kpi": kpi,
            "site": site,
            "registered": {"verdict": before},
            "deviated": {"verdict": after} if after else None,
        }

    deviation = {"old": {}, "new": {}, "reason": "r", "who": "w", "when": "2026-01-01T00:00:00"}
    snapshot = {
        "definitions": [
            {"code": "a", "numerator": {"code": "yes"}, "base_segment": None},
            {"code": "b", "numerator": None, "base_segment": {"code": "yes"}},
            {"code": "c", "numerator": {"code": "other"}, "base_segment": None},
        ],
        "deviation_effects": [
            effect("a", None, "met", "not_met"),
            effect("b", "s1", "met", "met"),
            effect("c", None, "met", None),
        ],
        "deviations": [
            {**deviation, "what": "kpi c: active", "after_run": False},
            {**deviation, "what": "segment yes: clauses", "after_run": False},
            {**deviation, "what": "kpi a: threshold", "after_run": True},
        ],
    }
    out = evidences.deviations(snapshot)
    assert out[0]["effects"] == [{"kpi": "c", "site": None, "registered": "met", "deviated": None}]
    assert [(e["kpi"], e["site"], e["deviated"]) for e in out[1]["effects"]] == [
        ("a", None, "not_met"),
        ("b", "s1", "met"),
    ]
    assert out[2]["effects"] == []
