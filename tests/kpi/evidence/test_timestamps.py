"""The time-stamping client speaks RFC 3161 over HTTP to the authority the settings name."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import urllib.parse

import pytest
from django.test import override_settings
from pyhanko.sign.timestamps import TimestampRequestError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from kpi.evidence.timestamps import TimestampingNotConfigured, stamp, timestamper


def test_a_token_from_the_configured_authority_covers_the_digest_and_validates(tsa) -> None:
    digest = hashlib.sha256(b"the registered specification").digest()

    token = stamp(digest)

    assert len(tsa.requests_served) == 1  # it went over HTTP to the authority
    signed_data = token["content"]
    info = signed_data["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest
    status = validated(signed_data, tsa.certificate, digest)
    assert status.intact and status.valid and status.trusted


def test_a_token_from_an_authority_nobody_trusts_is_not_trusted(tsa, tmp_path) -> None:
    from kpi.evidence.tsa import load_certificate, make_authority

    digest = hashlib.sha256(b"x").digest()
    token = stamp(digest)
    stranger = load_certificate(make_authority(tmp_path).certificate)

    assert not validated(token["content"], stranger, digest).trusted


def test_without_an_authority_timestamping_says_what_to_set() -> None:
    with override_settings(HYOKA_TSA_URL=""), pytest.raises(TimestampingNotConfigured) as err:
        timestamper()
    assert "HYOKA_TSA_URL" in str(err.value)


def test_an_unreachable_authority_is_an_error_not_a_hang() -> None:
    with (
        override_settings(HYOKA_TSA_URL="http://127.0.0.1:9/", HYOKA_TSA_TIMEOUT=2),
        pytest.raises(TimestampRequestError),
    ):
        stamp(hashlib.sha256(b"x").digest())


def test_the_authority_refuses_what_is_not_a_time_stamp_query(tsa) -> None:
    url = urllib.parse.urlsplit(tsa.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    connection.request("POST", "/", body=b"\x30\x03junk", headers={"Content-Type": tsp_query()})
    assert connection.getresponse().status == 400
    connection.request("POST", "/", body=b"x", headers={"Content-Type": "text/plain"})
    assert connection.getresponse().status == 415
    assert tsa.requests_served == []


def validated(signed_data, root, digest: bytes) -> TimestampSignatureStatus:  # type: ignore[no-untyped-def]
    kwargs = asyncio.run(
        validate_tst_signed_data(
            signed_data, ValidationContext(trust_roots=[root]), lambda _: digest
        )
    )
    return TimestampSignatureStatus(**kwargs)


def tsp_query() -> str:
    return "application/timestamp-query"


def test_a_signature_asks_the_authority_for_two_tokens_once_its_client_is_known(
    tsa, signing_settings, monkeypatch
) -> None:
    """(A plain PDF: the report's PDF/A identification and attachments are not checked.)
    The first signature also asks for the sample token pyHanko sizes the signature
    with; the next ones reuse it (one request in three saved), until the client is old."""
    import weasyprint

    from kpi.evaluations.signing import sign_pdf, verify_pdf
    from kpi.evidence import timestamps

    pdf = weasyprint.HTML(string="<p>評価</p>").write_pdf()
    with override_settings(**signing_settings):
        served = []
        for _ in range(2):
            signed = sign_pdf(pdf, reason="test")
            served.append(len(tsa.requests_served))
            checked = [line for line in verify_pdf(signed).lines if "PDF/A" not in line]
            signature_checks = [line for line in checked if ".json" not in line]
            assert len(signature_checks) == 5  # intact, coverage, two timestamps, DSS
            assert all(line.startswith("OK") for line in signature_checks)
        monkeypatch.setattr(timestamps, "CLIENT_LIFETIME", 0.0)
        sign_pdf(pdf, reason="test")
        served.append(len(tsa.requests_served))

    # the sample, the signature's timestamp, the document timestamp; then two per file;
    # then three again from a new client
    assert served == [3, 5, 8]
