"""PAdES signatures on evaluation PDFs (pyHanko), and their verification.

The programme's certificate and key come from a PKCS#12 file and its passphrase
(``HYOKA_SIGNING_P12``, ``HYOKA_SIGNING_PASSPHRASE``). Verification trusts the
certificates in ``HYOKA_SIGNING_TRUST_ROOTS`` (PEM or DER files; by default the signing
certificate itself, which is right for the self-signed development certificate).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

FIELD_NAME = "HyokaSignOff"


class SigningNotConfigured(RuntimeError):
    pass


def _signer() -> signers.SimpleSigner:
    path = Path(settings.HYOKA_SIGNING_P12)
    if not path.is_file():
        raise SigningNotConfigured(
            f"No signing certificate at {path}. Set HYOKA_SIGNING_P12 and "
            "HYOKA_SIGNING_PASSPHRASE, or run `manage.py make_dev_certificate` for development."
        )
    signer = signers.SimpleSigner.load_pkcs12(
        pfx_file=str(path), passphrase=settings.HYOKA_SIGNING_PASSPHRASE.encode()
    )
    if signer is None:
        raise SigningNotConfigured(f"Could not open {path}: wrong passphrase or not PKCS#12.")
    return signer


def sign_pdf(data: bytes, *, reason: str, location: str = "") -> bytes:
    """``data`` with a PAdES baseline signature by the programme's certificate."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location or None,
    )
    out = signers.sign_pdf(writer, meta, signer=_signer())
    return out.getvalue()


@dataclass(frozen=True)
class Verification:
    signed: bool
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer: str
    signed_at: dt.datetime | None
    problem: str

    @property
    def ok(self) -> bool:
        return (
            self.signed and self.intact and self.valid and self.trusted and self.covers_whole_file
        )


def _load_certificate(path: Path) -> x509.Certificate:
    raw = path.read_bytes()
    if b"-----BEGIN" in raw:
        raw = cx509.load_pem_x509_certificate(raw).public_bytes(serialization.Encoding.DER)
    return x509.Certificate.load(raw)


def trust_roots() -> list[x509.Certificate]:
    paths = [Path(p) for p in settings.HYOKA_SIGNING_TRUST_ROOTS]
    if paths:
        return [_load_certificate(p) for p in paths]
    return [_signer().signing_cert]


def verify_pdf(data: bytes) -> Verification:
    """Is the file signed, unaltered since signing, and by a trusted certificate?"""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # a damaged file is an answer, not a crash
        return Verification(False, False, False, False, False, "", None, f"unreadable PDF: {exc}")
    if not signatures:
        return Verification(False, False, False, False, False, "", None, "the file is not signed")
    signature = signatures[-1]
    try:
        status = validate_pdf_signature(
            signature, signer_validation_context=ValidationContext(trust_roots=trust_roots())
        )
    except Exception as exc:
        return Verification(True, False, False, False, False, "", None, f"cannot validate: {exc}")
    covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    problems = []
    if not status.intact:
        problems.append("the signed content has been altered")
    if not status.valid:
        problems.append("the signature is not valid")
    if not status.trusted:
        problems.append("the signing certificate is not trusted")
    if not covers:
        problems.append("content was added after signing")
    return Verification(
        signed=True,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        covers_whole_file=covers,
        signer=status.signing_cert.subject.human_friendly,
        signed_at=status.signer_reported_dt,
        problem="; ".join(problems),
    )


def make_development_certificate(path: Path, passphrase: str, *, days: int = 3650) -> Path:
    """A self-signed certificate and key as PKCS#12, for the demo and development only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = cx509.Name(
        [
            cx509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hyoka (development only)"),
            cx509.NameAttribute(NameOID.COMMON_NAME, "Hyoka development signing certificate"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            cx509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"hyoka-dev",
            key,
            certificate,
            None,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    path.chmod(0o600)
    path.with_suffix(".pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path
