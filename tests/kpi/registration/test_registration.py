"""Registering a study's KPI specification: the canonical JSON (recomputed here from the
rows, independently of kpi/registration/canonical.py), its hash, the signature and the
timestamp from a real RFC 3161 authority on 127.0.0.1; and each refusal with its words."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json

import pytest
from asn1crypto import cms
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from kpi.models import KPI, Segment
from kpi.registration import services
from kpi.registration.errors import RegistrationRefused
from kpi.registration.selectors import registration_for
from kpi.scoring import RULES_VERSION
from surveys.models import Instrument
from tests.factories import ParticipantFactory

from .conftest import PASSWORD, account


def register(study, user, **overrides):  # type: ignore[no-untyped-def]
    fields = {"password": PASSWORD, "statement": "Targets fixed before fieldwork.", **overrides}
    return services.register(study=study, user=user, **fields)


def clause_rows(segment: Segment) -> list[dict]:
    rows = [
        {
            "question": c.question.code,
            "choices": sorted(ch.code for ch in c.choices.all()),
            "tag": c.tag,
            "negate": c.negate,
        }
        for c in segment.clauses.all()
    ]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, separators=(",", ":")))


def expected_bytes(study) -> bytes:  # type: ignore[no-untyped-def]
    """The specification written out from the rows, as the module docstring says."""
    instrument = Instrument.objects.get(study=study)

    def seg(s: Segment | None) -> dict | None:
        return None if s is None else {"code": s.code, "clauses": clause_rows(s)}

    spec = {
        "format": "hyoka-kpi-specification/1",
        "study": study.code,
        "instrument": {
            "version": instrument.version,
            "questions": [
                {
                    "code": q.code,
                    "order": q.order,
                    "type": q.type,
                    "required": q.required,
                    "condition": {
                        "question": q.condition_question.code,
                        "choices": sorted(c.code for c in q.condition_choices.all()),
                    }
                    if q.condition_question
                    else None,
                    "choices": [
                        {
                            "code": c.code,
                            "order": c.order,
                            "score": c.score,
                            "tags": sorted(c.tags),
                            "exclusive": c.exclusive,
                        }
                        for c in q.choices.order_by("order")
                    ],
                }
                for q in instrument.questions.order_by("order")
            ],
        },
        "segments": [seg(s) for s in Segment.objects.filter(study=study).order_by("code")],
        "kpis": [
            {
                "code": k.code,
                "order": k.order,
                "group": k.group,
                "kind": k.kind,
                "name_ja": k.name_ja,
                "name_en": k.name_en,
                "base_description_ja": k.base_description_ja,
                "base_description_en": k.base_description_en,
                "base": k.base,
                "numerator": seg(k.numerator),
                "base_segment": seg(k.base_segment),
                "mean_question": k.mean_question.code if k.mean_question else "",
                "comparator": k.comparator,
                "threshold": "" if k.threshold is None else str(k.threshold),
                "rule": k.rule,
                "confidence": str(k.confidence),
                "min_n": k.min_n,
                "by_site": k.by_site,
            }
            for k in KPI.objects.filter(study=study, active=True).order_by("order", "code")
        ],
        "computing_rules": RULES_VERSION,
    }
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_it_stores_the_canonical_json_its_hash_a_signature_and_a_timestamp(planned, signer, tsa):
    registration = register(planned, signer)

    stored = bytes(registration.canonical_json)
    assert stored == expected_bytes(planned)
    assert json.loads(stored)["kpis"]  # the reference KPIs are in it
    assert registration.sha256 == hashlib.sha256(stored).hexdigest()
    assert registration_for(planned) == registration
    assert registration.registered_by == signer
    assert registration.statement == "Targets fixed before fieldwork."

    token = cms.ContentInfo.load(bytes(registration.timestamp_token))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == bytes.fromhex(registration.sha256)
    assert info["gen_time"].native == registration.timestamped_at
    assert len(tsa.requests_served) == 1
    status = TimestampSignatureStatus(
        **asyncio.run(
            validate_tst_signed_data(
                token["content"],
                ValidationContext(trust_roots=[tsa.certificate]),
                lambda _: bytes.fromhex(registration.sha256),
            )
        )
    )
    assert status.intact and status.valid and status.trusted
    assert (
        registration.timestamped_at < planned.sites.order_by("survey_opens_at")[0].survey_opens_at
    )

    signature = cms.ContentInfo.load(bytes(registration.signature))
    signed = signature["content"]
    assert signed["encap_content_info"]["content"].native is None  # detached
    attrs = {
        a["type"].native: a["values"][0].native for a in signed["signer_infos"][0]["signed_attrs"]
    }
    assert attrs["message_digest"] == hashlib.sha256(stored).digest()


def test_the_json_is_canonical_and_stable(planned, signer, tsa):
    data = bytes(register(planned, signer).canonical_json)
    assert b" " not in data.replace(b'" ', b"").split(b'"kpis"')[0][:1]  # compact
    assert (
        data
        == json.dumps(
            json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )


def test_it_refuses_a_manager_without_the_signer_role(planned, tsa):
    manager = account("manager", role="manager", sites=planned.sites.all())
    with pytest.raises(RegistrationRefused) as err:
        register(planned, manager)
    assert "signer role" in err.value.message
    assert registration_for(planned) is None
    assert tsa.requests_served == []


def test_it_refuses_a_wrong_password(planned, signer, tsa):
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer, password="wrong")
    assert err.value.errors == {"password": "The password is not correct."}
    assert registration_for(planned) is None


def test_it_refuses_without_a_statement(planned, signer, tsa):
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer, statement="  ")
    assert "statement" in err.value.errors
    assert registration_for(planned) is None


def test_it_refuses_once_a_site_has_opened(planned, signer, tsa):
    site = planned.sites.first()
    site.survey_opens_at = timezone.now() - dt.timedelta(minutes=1)
    site.save()
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer)
    assert err.value.message.startswith(
        "The specification must be registered before fieldwork: Fieldwork opened on"
    )
    assert registration_for(planned) is None
    assert tsa.requests_served == []


def test_it_refuses_once_participants_are_invited(planned, signer, tsa):
    ParticipantFactory(site=planned.sites.first(), invited_at=timezone.now())
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer)
    assert "Participants have already been invited." in err.value.message


def test_it_refuses_a_second_registration(planned, signer, tsa):
    register(planned, signer)
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer)
    assert "already registered" in err.value.message


def test_it_refuses_when_the_authority_dates_it_after_fieldwork_opened(
    planned, signer, tsa, monkeypatch
):
    """The authority's time decides, not the server's: an authority whose clock is past
    the opening (here: the opening moved before the token's time) is refused."""
    from kpi.registration import services as module

    real = module.stamp

    def late_stamp(digest):  # type: ignore[no-untyped-def]
        token = real(digest)
        planned.sites.update(survey_opens_at=timezone.now() - dt.timedelta(seconds=30))
        return token

    monkeypatch.setattr(module, "stamp", late_stamp)
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer)
    assert "at or after fieldwork opened" in err.value.message
    assert registration_for(planned) is None


def test_an_unreachable_authority_registers_nothing(planned, signer, settings):
    settings.HYOKA_TSA_URL = "http://127.0.0.1:9/"
    settings.HYOKA_TSA_TIMEOUT = 2
    with pytest.raises(RegistrationRefused) as err:
        register(planned, signer)
    assert "nothing was registered" in err.value.message
    assert registration_for(planned) is None


def test_the_registration_is_append_only(planned, signer, tsa):
    registration = register(planned, signer)
    for sql in (
        f"UPDATE kpi_registration SET statement = 'x' WHERE id = {registration.pk}",  # noqa: S608
        f"DELETE FROM kpi_registration WHERE id = {registration.pk}",  # noqa: S608
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
