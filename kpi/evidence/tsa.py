"""A development time-stamping authority: RFC 3161 over HTTP on 127.0.0.1.

It answers ``POST`` of an ``application/timestamp-query`` with an
``application/timestamp-reply`` signed by its own certificate (extended key usage
``timeStamping``, critical, as RFC 3161 § 2.3 requires), using pyHanko's token builder.
The tests use it as the stand-in of a real authority; the embedded demo uses it so that a
fresh checkout produces timestamped evidence without calling out. Its certificate is
self-signed and says "development only": no verifier trusts it unless told to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import keys, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.conf import settings
from pyhanko.sign.timestamps import DummyTimeStamper

from kpi.evidence.certificates import self_signed

QUERY = "application/timestamp-query"
REPLY = "application/timestamp-reply"


@dataclass(frozen=True)
class AuthorityFiles:
    certificate: Path  # PEM
    key: Path  # PEM, unencrypted (development only)


def make_authority(directory: Path, *, days: int = 3650) -> AuthorityFiles:
    """A self-signed time-stamping certificate and its key, written under ``directory``."""
    key, certificate = self_signed(
        "Hyoka development time-stamping authority",
        [
            (cx509.BasicConstraints(ca=False, path_length=None), True),
            (cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
        ],
        days=days,
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = AuthorityFiles(directory / "tsa.pem", directory / "tsa.key")
    files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def development_directory() -> Path:
    return Path(settings.BASE_DIR) / "var" / "tsa"


def development_authority_files() -> tuple[AuthorityFiles]:
    """The embedded mode's authority under ``var/tsa``, made on first use."""
    directory = development_directory()
    files = AuthorityFiles(directory / "tsa.pem", directory / "tsa.key")
    if not (files.certificate.is_file() and files.key.is_file()):
        files = make_authority(directory)
    return (files,)


def load_certificate(path: Path) -> x509.Certificate:
    der = cx509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    return x509.Certificate.load(der)


def _stamper(files: AuthorityFiles) -> DummyTimeStamper:
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    key_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return DummyTimeStamper(
        tsa_cert=load_certificate(files.certificate),
        tsa_key=keys.PrivateKeyInfo.load(key_der),
    )


class _Handler(BaseHTTPRequestHandler):
    stamper: DummyTimeStamper
    requests_served: list[tsp.TimeStampReq]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.headers.get("Content-Type", "").split(";")[0].strip() != QUERY:
            self._answer(415, b"expected " + QUERY.encode(), "text/plain")
            return
        try:
            request = tsp.TimeStampReq.load(body)
            _ = request.native  # parse it all now: a malformed request is a 400, not a crash
            reply = self.stamper.request_tsa_response(request)
        except Exception:
            self._answer(400, b"malformed time-stamp request", "text/plain")
            return
        self.requests_served.append(request)
        self._answer(200, reply.dump(), REPLY)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests and the demo print what matters


@dataclass
class Authority:
    url: str
    certificate: x509.Certificate
    requests_served: list[tsp.TimeStampReq]


@contextmanager
def serve_authority(files: AuthorityFiles) -> Iterator[Authority]:
    """Serve the authority on 127.0.0.1 (a free port) until the block ends."""
    served: list[tsp.TimeStampReq] = []
    handler = type("Handler", (_Handler,), {"stamper": _stamper(files), "requests_served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Authority(
            url=f"http://127.0.0.1:{server.server_port}/",
            certificate=load_certificate(files.certificate),
            requests_served=served,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve(files: AuthorityFiles) -> Iterator[str]:
    with serve_authority(files) as authority:
        yield authority.url
