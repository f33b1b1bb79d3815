"""No input gives a 500: each class of bad input, at every place it can enter, gets a
clear 4xx in the caller's language and changes nothing (docs/security.md, "Bad input").

Organised by class: control characters in text, text that is not UTF-8 (or not text at
all), numbers that do not fit their column, JSON too large or too deep, odd ids. Run on
SQLite by default and on PostgreSQL with DATABASE_URL (where NUL in text and integer
overflow behave differently: the same expectations hold on both).
"""

# The API tests' fixtures are imported by name, and tests take them as arguments.
# ruff: noqa: F811

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from kpi.models import KPI, Evaluation
from surveys import services
from surveys.api.parsers import nesting_depth
from surveys.models import Answer, Instrument, Participant, Question, Response, Study
from surveys.text import forbidden_character, forbidden_message, no_control_characters
from tests.api.conftest import (  # noqa: F401  (the API tests' world, shared here)
    PASSWORD,
    World,
    _fresh_throttles,
    _module_world,
    no_rendering,
    world,
)
from tests.factories import ParticipantFactory, SiteFactory

# WhiteNoise warns that STATIC_ROOT has not been collected; the admin does not need it here.
pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

JSON = "application/json"
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def rows() -> dict[str, int]:
    """What a refused request must leave as it was."""
    return {
        "participants": Participant.objects.count(),
        "responses": Response.objects.count(),
        "answers": Answer.objects.count(),
        "kpis": list(KPI.objects.order_by("pk").values_list("name_ja", "threshold", "min_n")),
        "evaluations": list(
            Evaluation.objects.order_by("pk").values_list("status", "statement", "signer_name")
        ),
    }  # type: ignore[dict-item]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert list(body) == ["error"], body
    return body["error"]


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def raw_json(client: APIClient, method: str, path: str, body: bytes | str, **extra: Any) -> Any:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return client.generic(method, path, data, content_type=JSON, **extra)


@pytest.fixture
def free(world: World) -> Participant:
    """A participant of a study whose questionnaire asks for free text and a number."""
    study = Study.objects.create(
        code="free", name_ja="自由記述", period_start="2021-04-01", period_end="2021-12-31"
    )
    instrument = Instrument.objects.create(study=study, version=1, title_ja="票")
    common = {"instrument": instrument, "text_ja": "問", "required": False}
    Question.objects.create(**common, code="comment", order=1, type=Question.Type.TEXT)
    Question.objects.create(**common, code="amount", order=2, type=Question.Type.NUMBER)
    services.instrument_publish(instrument=instrument)
    return ParticipantFactory(site=SiteFactory(study=study))


def web_post(participant: Participant, action: str, answers: dict[str, str], **extra: Any) -> Any:
    client = Client()
    return client.post(f"/r/{participant.token}/", {"action": action, **answers}, **extra)  # type: ignore[attr-defined]


def invitation(participant: Participant, what: str) -> str:
    return f"/api/v1/invitations/{participant.token}/{what}/"  # type: ignore[attr-defined]


def submit_api(participant: Participant, answers: dict[str, Any], **extra: Any) -> Any:
    return api().post(
        invitation(participant, "submission"), {"answers": answers}, format="json", **extra
    )


def draft_api(participant: Participant, answers: dict[str, Any], **extra: Any) -> Any:
    return api().put(invitation(participant, "draft"), {"answers": answers}, format="json", **extra)


# --- 1. Control characters in text -------------------------------------------------------

# NUL (PostgreSQL refuses it: a server error before the rule), other C0 controls, DEL,
# C1 controls; each in the middle of ordinary text.
CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\x85", "\x9f"]
KEPT = ["\t", "\n", "\r\n"]


def test_the_rule_refuses_controls_and_lone_surrogates_and_keeps_tab_and_line_breaks():
    refused = [chr(c) for c in range(0x110000) if forbidden_character(chr(c))]
    expected = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]]
    expected = [c for c in expected if c not in "\t\n\r"]
    assert refused == expected
    with translation.override("en"):
        assert forbidden_message("\x00") == (
            "Remove the invisible control character U+0000 from this text; it cannot be stored."
        )


def test_every_text_field_a_manager_writes_carries_the_rule():
    """Every editable CharField and TextField of the project's models that is not a code,
    a fixed choice or written by the system: a new one fails here until it has the rule."""
    system = {
        ("surveys", "instrument", "source"),  # the loader's file path
        ("kpi", "evaluation", "rendering_error"),
        ("kpi", "evaluationrun", "error"),
        ("surveys", "responseexport", "error"),  # the export task's message
        ("fieldwork", "delivery", "last_error"),  # a mail server's answer
        ("fieldwork", "delivery", "provider_message_id"),
        ("surveys", "participantlink", "nonce"),  # hex written by surveys/links.py
        ("surveys", "participantlink", "key_id"),
    }
    missing = []
    for app in ("surveys", "kpi", "fieldwork"):
        for model in django_models(app):
            for field in model._meta.get_fields():
                if not isinstance(field, models.CharField | models.TextField):
                    continue
                if (
                    isinstance(field, models.SlugField)
                    or field.choices
                    or not field.editable
                    or (app, model._meta.model_name, field.name) in system
                    or model.__name__.startswith("Historical")
                    or field.name in {"token_hash", "pdf_sha256", "snapshot_sha256"}
                    or model._meta.model_name in {"answer", "kpiresult"}  # answers.py; copies
                ):
                    continue
                if no_control_characters not in field.validators:
                    missing.append(f"{app}.{model.__name__}.{field.name}")
    assert missing == []


def django_models(app: str) -> list[type[models.Model]]:
    from django.apps import apps

    return list(apps.get_app_config(app).get_models())


@pytest.mark.parametrize("control", CONTROLS)
def test_a_free_text_answer_with_a_control_character_is_refused_on_the_web(free, control):
    before = rows()
    autosave = web_post(
        free,
        "save",
        {"comment": f"a{control}b"},
        HTTP_ACCEPT=JSON,
        HTTP_COOKIE="django_language=en",
    )
    assert autosave.status_code == 400
    assert autosave.json()["errors"] == {
        "comment": f"Remove the invisible control character U+{ord(control):04X} from this "
        "text; it cannot be stored."
    }
    # The form posted without JavaScript: the page again, the error at the question
    # (docs/questionnaire-contract.md), in Japanese by default.
    page = web_post(free, "submit", {"comment": f"a{control}b"})
    assert page.status_code == 200
    with translation.override("ja"):
        assert forbidden_message(control) in page.content.decode()
    assert rows() == before


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("send", [draft_api, submit_api])
def test_a_free_text_answer_with_a_control_character_is_refused_by_the_api(free, control, send):
    before = rows()
    response = send(free, {"comment": f"a{control}b"}, **EN)
    assert response.status_code == 400
    assert error_of(response)["code"] == "answers_invalid"
    assert error_of(response)["fields"] == {
        "comment": [
            f"Remove the invisible control character U+{ord(control):04X} from this text; "
            "it cannot be stored."
        ]
    }
    assert rows() == before


@pytest.mark.parametrize("kept", KEPT)
def test_tabs_and_line_breaks_are_text(free, kept):
    response = submit_api(free, {"comment": f"a{kept}b"})
    assert response.status_code == 201
    assert (
        Answer.objects.get(response__participant=free).text_value
        == "a" + kept.replace("\r\n", "\n") + "b"
    )


def import_file(text: str) -> io.BytesIO:
    upload = io.BytesIO(text.encode("utf-8"))
    upload.name = "participants.csv"
    return upload


@pytest.mark.parametrize("control", CONTROLS)
def test_an_imported_reference_with_a_control_character_is_refused(world: World, control):
    before = rows()
    content = f"reference,site\r\nOK-1,setagaya\r\nR{control}1,setagaya\r\n"
    through_api = api(world.users["manager@setagaya"]).post(
        "/api/v1/participants/import/",
        {"study": world.study.pk, "file": import_file(content)},
        format="multipart",
        **EN,
    )
    assert through_api.status_code == 400
    message = (
        f"Remove the invisible control character U+{ord(control):04X} from this text; "
        "it cannot be stored."
    )
    assert error_of(through_api)["fields"] == {"3": [message]}
    admin = Client(**EN)
    admin.force_login(world.users["superuser"])
    through_admin = admin.post(
        reverse("admin:surveys_participant_import"),
        {"study": world.study.pk, "file": import_file(content)},
    )
    assert through_admin.status_code == 200
    assert message in through_admin.content.decode()
    assert rows() == before


def manager_text_requests(world: World, text: str) -> list[tuple[str, Any]]:
    """Every kind of text a manager writes through the API, with ``text`` in it."""
    signer = api(world.users["signer@both"])
    superuser = api(world.users["superuser"])
    manager = api(world.users["manager@setagaya"])
    return [
        (
            "reference",
            manager.post(
                "/api/v1/participants/",
                {"site": world.setagaya.pk, "reference": text},
                format="json",
                **EN,
            ),
        ),
        (
            "name_ja",
            superuser.patch(
                f"/api/v1/kpis/{world.kpi.pk}/", {"name_ja": text}, format="json", **EN
            ),
        ),
        (
            "base_description_en",
            superuser.patch(
                f"/api/v1/kpis/{world.kpi.pk}/", {"base_description_en": text}, format="json", **EN
            ),
        ),
        (
            "name_en",
            superuser.patch(
                f"/api/v1/segments/{world.segment_unused.pk}/",
                {"name_en": text},
                format="json",
                **EN,
            ),
        ),
        (
            "statement",
            signer.post(
                f"/api/v1/evaluations/{world.draft.pk}/sign-off/",
                {"password": PASSWORD, "statement": text, "signer_name": "Sato"},
                format="json",
                **EN,
            ),
        ),
        (
            "signer_name",
            signer.post(
                f"/api/v1/evaluations/{world.draft.pk}/sign-off/",
                {"password": PASSWORD, "statement": "Checked.", "signer_name": text},
                format="json",
                **EN,
            ),
        ),
        (
            "reason",
            signer.post(
                f"/api/v1/evaluations/{world.signed.pk}/withdraw/",
                {"reason": text},
                format="json",
                **EN,
            ),
        ),
    ]


@pytest.mark.parametrize("control", ["\x01", "\x1b", "\x7f", "\x85"])
def test_text_a_manager_writes_through_the_api_refuses_control_characters(world, control):
    before = rows()
    for field, response in manager_text_requests(world, f"A{control}B"):
        assert response.status_code == 400, (field, response.content)
        assert error_of(response)["fields"] == {
            field: [
                f"Remove the invisible control character U+{ord(control):04X} from this "
                "text; it cannot be stored."
            ]
        }, field
    assert rows() == before


def test_a_nul_in_text_a_manager_writes_through_the_api_is_refused(world):
    # REST framework's own rule speaks first for NUL, with its own words.
    before = rows()
    for field, response in manager_text_requests(world, "A\x00B"):
        assert response.status_code == 400, (field, response.content)
        assert list(error_of(response)["fields"]) == [field]
    assert rows() == before


def admin_client(user: User) -> Client:
    client = Client(**EN)
    client.force_login(user)
    return client


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x85"])
def test_text_a_manager_writes_in_the_admin_refuses_control_characters(world, control):
    before = rows()
    superuser = admin_client(world.users["superuser"])
    participant = world.participants["setagaya_waiting"]
    change = superuser.post(
        reverse("admin:surveys_participant_change", args=[participant.pk]),
        {"reference": f"R{control}1", "invited_at": "", "reminded_at": ""},
    )
    sign_off = superuser.post(
        reverse("admin:kpi_evaluation_sign_off", args=[world.draft.pk]),
        {"signer_name": f"Sa{control}to", "statement": "Checked.", "password": PASSWORD},
    )
    withdraw = superuser.post(
        reverse("admin:kpi_evaluation_withdraw", args=[world.signed.pk]),
        {"reason": f"Wr{control}ong"},
    )
    for response in (change, sign_off, withdraw):
        assert response.status_code == 200  # the form again, with the field's error
        assert "errorlist" in response.content.decode()
    if control != "\x00":  # Django's own NUL rule speaks first, with its own words
        assert forbidden_message(control) in change.content.decode()
    assert rows() == before
    assert Participant.objects.get(pk=participant.pk).reference == participant.reference


# --- 2. Text that is not UTF-8, and strings that are not text -----------------------------

# Valid JSON whose strings are not text: lone surrogates, escaped or as raw bytes.
NOT_TEXT_JSON = [
    '{"answers": {"comment": "\\ud800"}}',
    '{"answers": {"comment": "a\\udfffb"}}',
    '{"answers": {"\\ud800": "x"}}',
    '{"answers": {"comment": "\\udc00\\ud800"}}',  # a pair in the wrong order
]
NOT_UTF8_JSON = [b'{"answers": {"comment": "\xff"}}', b'{"answers": {"comment": "\xed\xa0\x80"}}']


@pytest.mark.parametrize("body", [*NOT_TEXT_JSON, *NOT_UTF8_JSON])
def test_json_strings_that_are_not_text_are_refused(world, free, body):
    before = rows()
    paths = [
        ("PUT", invitation(free, "draft")),
        ("POST", invitation(free, "submission")),
        ("POST", "/api/v1/auth/token/"),
    ]
    for method, path in paths:
        response = raw_json(api(), method, path, body, **EN)
        assert response.status_code == 400, (path, response.content)
        assert error_of(response)["code"] == "parse_error"
    manager = api(world.users["superuser"])
    response = raw_json(manager, "PATCH", f"/api/v1/kpis/{world.kpi.pk}/", body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
    assert rows() == before


def test_a_valid_surrogate_pair_is_text(free):
    response = raw_json(
        api(), "POST", invitation(free, "submission"), '{"answers": {"comment": "\\ud83d\\ude00"}}'
    )
    assert response.status_code == 201
    assert Answer.objects.get(response__participant=free).text_value == "\U0001f600"


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "body",
    [b"action=submit&comment=%FF", b"action=submit&comment=\xff", b"action=save&comment=%C3"],
)
def test_a_form_body_that_is_not_utf8_is_a_400(free, body):
    before = rows()
    response = Client().post(f"/r/{free.token}/", body, content_type=FORM)
    assert response.status_code == 400
    assert "<html" in response.content.decode()  # the participants' page, not a trace
    admin = Client().post("/admin/login/", b"username=r%FFoot&password=x", content_type=FORM)
    assert admin.status_code == 400
    assert rows() == before


@pytest.mark.parametrize("query", ["lang=%FF", "x=%C3%28", "%FF=1", "a=%ED%A0%80"])
def test_a_query_string_that_is_not_utf8_is_a_400(world, free, query):
    page = Client().get(f"/r/{free.token}/?{query}")
    assert page.status_code == 400
    response = api(world.users["superuser"]).get(f"/api/v1/participants/?{query}", **EN)
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "parse_error",
        "message": "The request could not be read.",
        "fields": {},
    }
    japanese = api(world.users["superuser"]).get(f"/api/v1/participants/?{query}")
    with translation.override("ja"):
        from django.utils.translation import gettext

        assert error_of(japanese)["message"] == gettext("The request could not be read.")
    admin = admin_client(world.users["superuser"]).get(f"/admin/surveys/participant/?{query}")
    assert admin.status_code == 400


def test_a_multipart_field_that_is_not_utf8_is_refused_as_invalid(world):
    before = rows()
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="study"\r\n\r\n'.encode()
        + b"\xff\xfe"
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="p.csv"\r\nContent-Type: text/csv\r\n\r\nreference,site\r\nA,setagaya\r\n'
        f"\r\n--{boundary}--\r\n".encode()
    )
    response = api(world.users["superuser"]).generic(
        "POST",
        "/api/v1/participants/import/",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["study"]
    assert rows() == before


# --- 3. Numbers that pass a parser but not the column ------------------------------------

# Each is a number to Python's Decimal (or to JSON), but cannot be stored as the answer
# (numeric(14, 4)): too many decimal places, out of range, not finite.
BAD_NUMBERS = [
    "9999999999.99999",  # rounds up past the column's largest value
    "10000000000",
    "-10000000000",
    "99999999999999999999",
    "1e10",
    "1e-9999999",
    "0.00001",
    "1E+400",
    "NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "1e999999999999999999",
]


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_number_answer_that_does_not_fit_is_refused_everywhere(free, value):
    before = rows()
    for send in (draft_api, submit_api):
        response = send(free, {"amount": value}, **EN)
        assert response.status_code == 400, (value, response.content)
        assert list(error_of(response)["fields"]) == ["amount"]
    autosave = web_post(free, "save", {"amount": value}, HTTP_ACCEPT=JSON)
    assert autosave.status_code == 400
    assert list(autosave.json()["errors"]) == ["amount"]
    assert web_post(free, "submit", {"amount": value}).status_code == 200  # the form again
    assert rows() == before


@pytest.mark.parametrize(
    "body", ['{"answers": {"amount": 1e400}}', '{"answers": {"amount": -1e999}}']
)
def test_a_json_number_too_large_to_be_finite_is_refused(free, body):
    response = raw_json(api(), "POST", invitation(free, "submission"), body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


@pytest.mark.parametrize(
    "body", ['{"answers": {"amount": NaN}}', '{"answers": {"amount": Infinity}}']
)
def test_json_nan_and_infinity_literals_are_refused(free, body):
    response = raw_json(api(), "POST", invitation(free, "submission"), body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("9999999999.9999", Decimal("9999999999.9999")),
        ("-9999999999.9999", Decimal("-9999999999.9999")),
        ("-0", Decimal("0")),
        ("0e-5", Decimal("0")),
        ("1E+5", Decimal("100000")),
        ("3.50000", Decimal("3.5")),
        ("１２", Decimal("12")),
    ],
)
def test_the_largest_and_the_oddly_written_numbers_that_fit_are_stored_exactly(free, value, stored):
    response = submit_api(free, {"amount": value})
    assert response.status_code == 201, response.content
    answer = Answer.objects.get(response__participant=free)
    assert answer.number_value == stored
    assert str(answer.number_value).startswith("-") == (stored < 0)  # no negative zero
    expected = format(stored.normalize(), "f")
    assert response.json()["answers"] == {"amount": expected}


KPI_NUMBERS = [
    ("threshold", "9999999999.99999"),
    ("threshold", "1e-9999999"),
    ("threshold", "NaN"),
    ("threshold", "Infinity"),
    ("threshold", "99999999999999999999"),
    ("confidence", "0.99999"),
    ("confidence", "1e-9999999"),
    ("confidence", "NaN"),
    ("confidence", "-Infinity"),
    ("min_n", "99999999999999999999"),
    ("min_n", 2**63),
    ("min_n", "1e5"),
    ("min_n", "-1"),
    ("min_n", "NaN"),
]


@pytest.mark.parametrize(("field", "value"), KPI_NUMBERS)
def test_a_kpi_number_that_does_not_fit_is_refused_by_the_api(world, field, value):
    before = rows()
    response = api(world.users["superuser"]).patch(
        f"/api/v1/kpis/{world.kpi.pk}/", {field: value}, format="json", **EN
    )
    assert response.status_code == 400, response.content
    assert list(error_of(response)["fields"]) == [field]
    assert rows() == before


@pytest.mark.parametrize(("field", "value"), KPI_NUMBERS)
def test_a_kpi_number_that_does_not_fit_is_refused_by_the_admin(world, field, value):
    before = rows()
    client = admin_client(world.users["superuser"])
    url = reverse("admin:kpi_kpi_change", args=[world.kpi.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list)}
    data.update({f"clauses-{k}": v for k, v in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0}.items()})
    data[field] = value
    response = client.post(url, data)
    assert response.status_code == 200, response.status_code  # the form again
    assert field in response.context["adminform"].form.errors
    assert rows() == before


# --- 4. JSON too large or too deep --------------------------------------------------------


def nested(depth: int) -> str:
    return '{"answers": ' + "[" * depth + "]" * depth + "}"


def test_nesting_is_measured_before_parsing_and_brackets_in_strings_do_not_count():
    assert nesting_depth(b'{"a": [1, {"b": []}]}', 20) == 4
    assert nesting_depth(b'{"a": "[[[[{{{{"}', 20) == 1
    assert nesting_depth(b'{"a": "\\"[[[["}', 20) == 1
    assert nesting_depth(b"[" * 100_000, 20) == 21  # stops counting past the limit


@pytest.mark.parametrize("depth", [21, 1000, 100_000])
def test_json_nested_too_deep_is_refused_without_login_and_with(world, free, depth):
    before = rows()
    body = nested(depth)
    for client, method, path in [
        (api(), "POST", "/api/v1/auth/token/"),
        (api(), "PUT", invitation(free, "draft")),
        (api(), "POST", invitation(free, "submission")),
        (api(world.users["superuser"]), "POST", "/api/v1/kpis/"),
    ]:
        response = raw_json(client, method, path, body, **EN)
        assert response.status_code == 400, (path, response.content)
        assert error_of(response) == {
            "code": "parse_error",
            "message": "The JSON is nested more than 20 levels deep.",
            "fields": {},
        }
    assert rows() == before


def test_json_at_the_depth_limit_is_read(free):
    answers = "[" * 18 + "]" * 18  # the body's object, "answers"' object, then 18 levels
    response = raw_json(
        api(), "PUT", invitation(free, "draft"), '{"answers": {"x": ' + answers + "}}"
    )
    assert response.status_code == 200


def test_a_body_over_the_size_limit_is_a_413_before_it_is_read(world, free, settings):
    settings.HYOKA_JSON_MAX_BYTES = 1000
    before = rows()
    big = json.dumps({"username": "a", "password": "x" * 1000})
    for client, method, path in [
        (api(), "POST", "/api/v1/auth/token/"),
        (api(), "PUT", invitation(free, "draft")),
        (api(world.users["superuser"]), "PATCH", f"/api/v1/kpis/{world.kpi.pk}/"),
    ]:
        response = raw_json(client, method, path, big, **EN)
        assert response.status_code == 413, path
        assert error_of(response) == {
            "code": "request_too_large",
            "message": "The request body is too large.",
            "fields": {},
        }
    small = raw_json(api(), "POST", "/api/v1/auth/token/", json.dumps({"username": "a"}))
    assert small.status_code == 400  # read, and refused for its content
    assert rows() == before


def test_the_default_size_limit_is_one_mebibyte(free):
    body = '{"answers": {"comment": "' + "x" * (1024 * 1024) + '"}}'
    response = raw_json(api(), "POST", "/api/v1/auth/token/", body)
    assert response.status_code == 413


def test_a_form_body_over_djangos_limit_is_a_400(free, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = Client().post(
        f"/r/{free.token}/", f"action=save&comment={'x' * 2000}", content_type=FORM
    )
    assert response.status_code == 400
    assert not Response.objects.filter(participant=free).exists()


# --- 5. Odd ids in addresses and filters ---------------------------------------------------

# Not ids: words, a superscript digit (str.isdigit() says yes, int() says no), Arabic-Indic
# digits (int() reads them), numbers beyond bigint, negative, zero, exponent, NUL.
ODD_IDS = [
    "abc",
    "²",
    "٣",
    "99999999999999999999",
    "9223372036854775808",
    "-1",
    "0",
    "1e5",
    "%00",
    " 1",
]


def admin_paths(world: World, odd: str) -> list[str]:
    return [
        f"/admin/surveys/participant/{odd}/change/",
        f"/admin/surveys/participant/{odd}/delete/",
        f"/admin/surveys/participant/{odd}/history/",
        f"/admin/surveys/participant/{world.participants['setagaya'].pk}/history/{odd}/",
        f"/admin/surveys/response/{odd}/change/",
        f"/admin/surveys/response/{odd}/history/",
        f"/admin/surveys/study/{odd}/change/",
        f"/admin/surveys/instrument/{odd}/change/",
        f"/admin/kpi/segment/{odd}/history/",
        f"/admin/kpi/kpi/{odd}/change/",
        f"/admin/kpi/kpi/{world.kpi.pk}/history/{odd}/",
        f"/admin/kpi/evaluationrun/{odd}/change/",
        f"/admin/kpi/studyresults/{odd}/change/",
        f"/admin/kpi/evaluation/{odd}/change/",
        f"/admin/kpi/evaluation/{odd}/download/",
        f"/admin/kpi/evaluation/{odd}/sign-off/",
        f"/admin/kpi/evaluation/{odd}/withdraw/",
    ]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_an_odd_id_in_an_admin_address_is_a_404(world, odd):
    User.objects.filter(pk=world.users["signer@both"].pk).update(is_staff=True)
    for user in ("superuser", "signer@both"):
        client = admin_client(world.users[user])
        for path in admin_paths(world, odd):
            assert client.get(path).status_code == 404, (user, path)
        for path in [
            f"/admin/surveys/instrument/{odd}/publish/",
            f"/admin/surveys/instrument/{odd}/new-version/",
            f"/admin/kpi/studyresults/{odd}/score/",
            f"/admin/kpi/evaluation/{odd}/withdraw/",
        ]:
            assert client.post(path, {"reason": "x"}).status_code == 404, (user, path)


@pytest.mark.parametrize("odd", ODD_IDS)
def test_an_odd_id_in_an_admin_filter_is_refused_as_django_refuses_a_bad_filter(world, odd):
    client = admin_client(world.users["superuser"])
    for path in ["/admin/surveys/participant/?site", "/admin/surveys/response/?site"]:
        response = client.get(f"{path}={odd}")
        assert response.status_code == 302, path  # Django's "?e=1": the list says so
        assert response["Location"].endswith("?e=1"), path
    # Django's own filters by id: a value int() cannot read is "?e=1"; one it can (٣,
    # 0, -1, beyond bigint) lists the rows that have it, none.
    for path in [
        "/admin/surveys/participant/?site__id__exact",
        "/admin/surveys/participant/?site__study__id__exact",
        "/admin/kpi/kpi/?study__id__exact",
    ]:
        response = client.get(f"{path}={odd}")
        assert response.status_code in (200, 302), path
        if response.status_code == 302:
            assert response["Location"].endswith("?e=1"), path


@pytest.mark.parametrize("odd", ODD_IDS)
def test_an_odd_study_on_an_admin_add_page_is_ignored(world, odd):
    client = admin_client(world.users["superuser"])
    for path in ["/admin/kpi/kpi/add/?study", "/admin/kpi/segment/add/?study"]:
        assert client.get(f"{path}={odd}").status_code == 200, path


API_RESOURCES = [
    "studies",
    "sites",
    "instruments",
    "participants",
    "responses",
    "segments",
    "kpis",
    "runs",
    "evaluations",
]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_an_odd_id_in_an_api_address_is_a_404(world, odd):
    client = api(world.users["superuser"])
    for resource in API_RESOURCES:
        response = client.get(f"/api/v1/{resource}/{odd}/")
        assert response.status_code == 404, resource
        assert error_of(response)["code"] == "not_found"
    for path in [f"/api/v1/evaluations/{odd}/pdf/", f"/api/v1/evaluations/{odd}/sign-off/"]:
        response = client.post(path, {}, format="json") if "sign" in path else client.get(path)
        assert response.status_code == 404, path


# " 1" is 1 to a form field, as Django reads any number in a query string.
@pytest.mark.parametrize("odd", [o for o in ODD_IDS if o not in {"%00", " 1"}] + ["\x00"])
def test_an_odd_id_in_an_api_filter_is_a_400(world, odd):
    client = api(world.users["superuser"])
    for path, name in [
        ("/api/v1/participants/", "site"),
        ("/api/v1/participants/", "study"),
        ("/api/v1/responses/", "instrument"),
        ("/api/v1/responses/export/", "site"),
        ("/api/v1/sites/", "study"),
        ("/api/v1/kpis/", "study"),
        ("/api/v1/runs/", "study"),
    ]:
        response = client.get(path, {name: odd})
        assert response.status_code == 400, (path, name)
        assert error_of(response)["code"] == "invalid"
        assert list(error_of(response)["fields"]) == [name]


@pytest.mark.postgres
def test_postgresql_refuses_what_the_rules_refuse_before_it(free):
    """Why the rules exist: PostgreSQL itself refuses NUL in text and a number beyond
    numeric(14, 4) (SQLite stores both), and an id beyond bigint matches nothing."""
    from django.db import DataError, transaction

    submit_api(free, {"amount": "1"})
    answer = Answer.objects.get(response__participant=free)
    for change in ({"number_value": Decimal("10000000000")}, {"text_value": "a\x00b"}):
        values = {"number_value": None, "text_value": None, **change}
        with pytest.raises((DataError, ValueError)), transaction.atomic():
            Answer.objects.filter(pk=answer.pk).update(**values)
    assert not Participant.objects.filter(pk=2**63).exists()
