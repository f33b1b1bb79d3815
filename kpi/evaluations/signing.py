"""PAdES signatures on evaluation PDFs (pyHanko), and their verification.

The programme's certificate and key come from a PKCS#12 file and its passphrase
(``HYOKA_SIGNING_P12``, ``HYOKA_SIGNING_PASSPHRASE``). Verification trusts the
certificates in ``HYOKA_SIGNING_TRUST_ROOTS`` (PEM or DER files; by default the signing
certificate itself, which is right for the self-signed development certificate).
"""

from __future__ import annotations

import io
from pathlib import Path

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12
from django.conf import settings
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import VENDOR
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import get_pyca_cryptography_hash
from pyhanko_certvalidator import ValidationContext

from kpi.evidence import timestamps
from kpi.evidence.certificates import self_signed
from scripts import verify_evaluation as verifier
from scripts.verify_evaluation import Report

FIELD_NAME = "HyokaSignOff"


class SigningNotConfigured(RuntimeError):
    pass


class _Signer(signers.SimpleSigner):
    """pyHanko's ``SimpleSigner``, with the private key parsed once.

    ``SimpleSigner.sign_raw`` parses the key from DER for every signature it makes, and
    the cryptography library checks an RSA key's primes each time it parses one (about
    0.13 s for a 2048-bit key): a signed evaluation makes two (the size estimate and the
    signature), so that was half the time of signing. The PKCS#1 v1.5 signatures pyHanko
    makes with an RSA key are made here with the key parsed (and checked) once; any
    other mechanism is left to pyHanko."""

    _private_key: RSAPrivateKey | None = None

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        try:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        except ValueError:  # as pyHanko: a mechanism with no hash of its own (e.g. PSS)
            mechanism = ""
        if mechanism != "rsassa_pkcs1v15":
            return super().sign_raw(data, digest_algorithm)
        if self._private_key is None:
            key = serialization.load_der_private_key(self.signing_key.dump(), password=None)
            if not isinstance(key, RSAPrivateKey):
                return super().sign_raw(data, digest_algorithm)
            self._private_key = key
        return self._private_key.sign(
            data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm)
        )


#: The signer of the configured PKCS#12 file, kept while the file, its path and the
#: passphrase stay the same (opening it checks the key too).
_signers: dict[tuple[str, int, str], _Signer] = {}


def _signer() -> signers.SimpleSigner:
    path = Path(settings.HYOKA_SIGNING_P12)
    if not path.is_file():
        raise SigningNotConfigured(
            f"No signing certificate at {path}. Set HYOKA_SIGNING_P12 and "
            "HYOKA_SIGNING_PASSPHRASE, or run `manage.py make_dev_certificate` for development."
        )
    key = (str(path.resolve()), path.stat().st_mtime_ns, settings.HYOKA_SIGNING_PASSPHRASE)
    signer = _signers.get(key)
    if signer is None:
        loaded = _Signer.load_pkcs12(
            pfx_file=str(path), passphrase=settings.HYOKA_SIGNING_PASSPHRASE.encode()
        )
        if loaded is None:
            raise SigningNotConfigured(f"Could not open {path}: wrong passphrase or not PKCS#12.")
        signer = _signers[key] = _Signer(
            signing_cert=loaded.signing_cert,
            signing_key=loaded.signing_key,
            cert_registry=loaded.cert_registry,
            signature_mechanism=loaded.signature_mechanism,
        )
    return signer


def _certificates(paths: list[str]) -> list[x509.Certificate]:
    return [_load_certificate(Path(p)) for p in paths]


def sign_pdf(data: bytes, *, reason: str, location: str = "") -> bytes:
    """``data`` with a PAdES signature by the programme's certificate.

    With a time-stamping authority configured (``HYOKA_TSA_URL``; production requires
    one), the signature carries the authority's timestamp, the validation data of both
    certificates is embedded (a DSS: B-LT) and a document timestamp closes the file
    (B-LTA), so that it verifies offline after the signing certificate has expired. Each
    step is an incremental update: the PDF/A file WeasyPrint wrote stays byte for byte
    the first revision, its identification and attachments untouched.

    The development certificate is self-signed and has no OCSP or CRL address: it is its
    own trust anchor, and a trust anchor is not checked for revocation, so the
    validation context trusts it (and the authority's certificate) and never fetches
    (``allow_fetching=False``); "soft-fail" lets a real certificate without reachable
    revocation data still be signed with, its absence visible to the verifier.
    """
    signer = _signer()
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    _one_producer(writer)
    stamper = timestamps.timestamper() if settings.HYOKA_TSA_URL else None
    if stamper is not None and not settings.HYOKA_TSA_TRUST_ROOTS:
        raise timestamps.TimestampingNotConfigured(
            "HYOKA_TSA_TRUST_ROOTS must name the time-stamping authority's root certificate: "
            "its validation data is embedded in every signed evaluation."
        )
    context = ValidationContext(
        trust_roots=[signer.signing_cert, *_certificates(settings.HYOKA_TSA_TRUST_ROOTS)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location or None,
        embed_validation_info=stamper is not None,
        use_pades_lta=stamper is not None,
        validation_context=context if stamper is not None else None,
    )
    out = signers.sign_pdf(writer, meta, signer=signer, timestamper=stamper)
    return out.getvalue()


def _one_producer(writer: IncrementalPdfFileWriter) -> None:
    """Name the producer as pyHanko will in the XMP metadata it rewrites.

    PDF/A requires the document information dictionary and the XMP metadata to agree;
    pyHanko would append itself to WeasyPrint's /Producer but write only itself into the
    XMP's pdf:Producer. (WeasyPrint is still named as /Creator's tool in the first
    revision, which the signature covers.)
    """
    info_ref = writer.trailer.raw_get("/Info")
    info = info_ref.get_object()
    info["/Producer"] = generic.TextStringObject(VENDOR)
    writer.mark_update(info_ref)


def _load_certificate(path: Path) -> x509.Certificate:
    raw = path.read_bytes()
    if b"-----BEGIN" in raw:
        raw = cx509.load_pem_x509_certificate(raw).public_bytes(serialization.Encoding.DER)
    return x509.Certificate.load(raw)


def trust_roots() -> list[x509.Certificate]:
    """The certificates a verification trusts: ``HYOKA_SIGNING_TRUST_ROOTS`` (by default
    the signing certificate itself) and the time-stamping authorities of
    ``HYOKA_TSA_TRUST_ROOTS`` (in embedded mode without an authority, the development one
    the demo stamps with, once made)."""
    paths = [Path(p) for p in settings.HYOKA_SIGNING_TRUST_ROOTS]
    roots = [_load_certificate(p) for p in paths] if paths else [_signer().signing_cert]
    return roots + [_load_certificate(p) for p in timestamps.trusted_authorities()]


def verify_pdf(data: bytes, *, extra_trust: list[x509.Certificate] | None = None) -> Report:
    """Every check of the standalone verifier (``scripts/verify_evaluation.py``: the
    signature, its timestamps, the attachments' digests, the figures recomputed from the
    attached counts), trusting ``trust_roots()`` and ``extra_trust``."""
    return verifier.verify(data, [*trust_roots(), *(extra_trust or [])])


def make_development_certificate(path: Path, passphrase: str, *, days: int = 3650) -> Path:
    """A self-signed certificate and key as PKCS#12, for the demo and development only."""
    key, certificate = self_signed(
        "Hyoka development signing certificate",
        [
            (cx509.BasicConstraints(ca=True, path_length=None), True),
            (
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
                True,
            ),
        ],
        days=days,
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
