"""The evaluation PDF as evidence: a PDF/A-3a file carrying its data, signed with a
timestamp and its validation data, that both verifiers (``manage.py verify_evaluation``
and the standalone ``scripts/verify_evaluation.py``) pass, and that each of them fails,
with its own one-line reason, when one thing is tampered with.

Every tampered copy is made the way a forger would: the report rendered by the real
pipeline with one thing changed, then signed and timestamped by the trusted certificate
and authority (a re-signed forgery is what the digests and the recomputation catch; a
change after signing also breaks the signature, tested in test_evaluations_signed.py).
The files are made once for the module; the database work is rolled back after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from pypdf import PdfReader

from kpi.evaluations import evidence as evidences
from kpi.evaluations.report import render
from kpi.evaluations.services import evaluation_create
from kpi.evaluations.signing import sign_pdf
from kpi.evidence.tsa import serve_authority
from kpi.models import EvaluationRun
from kpi.scoring import execution, wording
from scripts import verify_evaluation as verifier
from tests.factories import build_reference_study

DASH, NBSP = "\u2013", "\u00a0"


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


@pytest.fixture(scope="module")
def files(django_db_setup, django_db_blocker, signing_settings, tsa_files, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The honest signed report and one tampered copy per case, as files."""
    folder = tmp_path_factory.mktemp("evidence")
    out: dict[str, Path] = {}
    with (
        django_db_blocker.unblock(),
        transaction.atomic(),
        override_settings(**signing_settings),
        serve_authority(tsa_files) as authority,
        override_settings(
            HYOKA_TSA_URL=authority.url, HYOKA_TSA_TRUST_ROOTS=[str(tsa_files.certificate)]
        ),
    ):
        study = build_reference_study()
        run = EvaluationRun.objects.create(study=study, trigger="command")
        evaluation = evaluation_create(run=execution.run_execute(run_id=run.pk), user=None)

        def write(name: str, *, signed: bool = True) -> None:
            pdf = render.render_pdf(evaluation, draft=False)
            if signed:
                pdf = sign_pdf(pdf, reason=f"test evaluation {evaluation.pk}")
            out[name] = folder / f"{name}.pdf"
            out[name].write_bytes(pdf)

        write("honest")
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
            write("no-timestamp")
        write("unsigned", signed=False)
        out["changed-after-signing"] = folder / "changed-after-signing.pdf"
        out["changed-after-signing"].write_bytes(
            repaint_first_page(out["honest"].read_bytes(), authority.url)
        )
        transaction.set_rollback(True)
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


# --- tampered copies: each caught by both tools, with its own line ------------------------

CASES = {
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
