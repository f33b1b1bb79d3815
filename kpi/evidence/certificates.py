"""Self-signed development certificates: the programme's signing certificate of the demo
(``make_dev_certificate``) and the development time-stamping authority's. Never for
production, which names real ones in the environment."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed(
    common_name: str, extensions: list[tuple[x509.ExtensionType, bool]], *, days: int
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new RSA key and a certificate for it, issued by itself, "development only"
    in its organisation; ``extensions``: (extension, critical) pairs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hyoka (development only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return key, builder.sign(key, hashes.SHA256())
