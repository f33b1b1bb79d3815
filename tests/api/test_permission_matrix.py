"""Who may do what, endpoint by endpoint.

Every target lives in Setagaya or is study-wide (study "tokyo": Setagaya and Itabashi).
Callers: anonymous; an authenticated user with every permission but no site; a superuser;
a viewer, manager and signer of Setagaya ("own site") and of Itabashi ("other site"); a
signer of both. Each role's group holds the model permissions the role is meant to have
(viewer: view only; manager: also participants, definitions, scoring, drafts; signer:
also sign off and withdraw).

The expected status is worked out below from the rules the issue states, not from the
code under test:

* no credentials: 401;
* lacking the model permission for the action: 403 (it says nothing about any record);
* a Setagaya record (a participant, a response, the site itself) for someone without a
  role at Setagaya: 404, exactly as if it did not exist;
* a study-wide record (KPI, segment, run, evaluation, the study, its instrument) for a
  member of any site of the study: visible; for someone with no site: 404;
* a reference in a request body to a site or study the caller may not write to: 400;
* the report (PDF), its sign-off and its withdrawal show every site's results: they need a
  role on every site of the study (403 otherwise);
* superusers may do everything.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kpi.models import Segment
from surveys.models import Question
from tests.api.conftest import PASSWORD, World

RANK = {"viewer": 1, "manager": 2, "signer": 3}

WHO = [
    "anonymous",
    "nobody",
    "superuser",
    "viewer@setagaya",
    "manager@setagaya",
    "signer@setagaya",
    "viewer@itabashi",
    "manager@itabashi",
    "signer@itabashi",
    "signer@both",
]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[World], str]
    # list | study | site | create_site | create_study
    level: str
    role: str = "viewer"
    ok: int = 200
    body: Callable[[World], Any] | None = None
    multipart: bool = False
    whole_study: bool = False

    def __str__(self) -> str:
        return self.name


def _channels(world: World) -> Question:
    return Question.objects.get(instrument__study=world.study, code="channels")


def _segment(world: World, code: str) -> Segment:
    return Segment.objects.get(study=world.study, code=code)


def _csv(world: World) -> dict[str, Any]:
    upload = io.BytesIO(b"reference,site\r\nNEW-9,setagaya\r\n")
    upload.name = "participants.csv"
    return {"study": world.study.pk, "file": upload}


def _new_segment(world: World) -> dict[str, Any]:
    clause = {"question": _channels(world).pk, "tag": "online"}
    return {"study": world.study.pk, "code": "new", "name_ja": "新", "clauses": [clause]}


def _new_kpi(world: World) -> dict[str, Any]:
    return {
        "study": world.study.pk,
        "code": "new_kpi",
        "name_ja": "新",
        "kind": "share",
        "base": "respondents",
        "numerator": _segment(world, "online").pk,
        "comparator": ">=",
        "threshold": "70",
    }


ENDPOINTS = [
    Endpoint("studies", "get", lambda w: "/api/v1/studies/", "list"),
    Endpoint("study", "get", lambda w: f"/api/v1/studies/{w.study.pk}/", "study"),
    Endpoint("sites", "get", lambda w: "/api/v1/sites/", "list"),
    Endpoint("site", "get", lambda w: f"/api/v1/sites/{w.setagaya.pk}/", "site"),
    Endpoint("instruments", "get", lambda w: "/api/v1/instruments/", "list"),
    Endpoint(
        "instrument",
        "get",
        lambda w: f"/api/v1/instruments/{w.study.instruments.get().pk}/",
        "study",
    ),
    Endpoint("participants", "get", lambda w: "/api/v1/participants/", "list"),
    Endpoint(
        "participant",
        "get",
        lambda w: f"/api/v1/participants/{w.participants['setagaya'].pk}/",
        "site",
    ),
    Endpoint(
        "participant create",
        "post",
        lambda w: "/api/v1/participants/",
        "create_site",
        role="manager",
        ok=201,
        body=lambda w: {"site": w.setagaya.pk, "reference": "NEW-1"},
    ),
    Endpoint(
        "participant import",
        "post",
        lambda w: "/api/v1/participants/import/",
        "create_site",
        role="manager",
        ok=201,
        body=_csv,
        multipart=True,
    ),
    Endpoint("responses", "get", lambda w: "/api/v1/responses/", "list"),
    Endpoint(
        "response", "get", lambda w: f"/api/v1/responses/{w.responses['setagaya'].pk}/", "site"
    ),
    Endpoint("responses export", "get", lambda w: "/api/v1/responses/export/", "list"),
    Endpoint("segments", "get", lambda w: "/api/v1/segments/", "list"),
    Endpoint("segment", "get", lambda w: f"/api/v1/segments/{w.segment_unused.pk}/", "study"),
    Endpoint(
        "segment create",
        "post",
        lambda w: "/api/v1/segments/",
        "create_study",
        role="manager",
        ok=201,
        body=_new_segment,
    ),
    Endpoint(
        "segment update",
        "patch",
        lambda w: f"/api/v1/segments/{w.segment_unused.pk}/",
        "study",
        role="manager",
        body=lambda w: {"name_en": "Renamed"},
    ),
    Endpoint(
        "segment delete",
        "delete",
        lambda w: f"/api/v1/segments/{w.segment_unused.pk}/",
        "study",
        role="manager",
        ok=204,
    ),
    Endpoint("kpis", "get", lambda w: "/api/v1/kpis/", "list"),
    Endpoint("kpi", "get", lambda w: f"/api/v1/kpis/{w.kpi.pk}/", "study"),
    Endpoint(
        "kpi create",
        "post",
        lambda w: "/api/v1/kpis/",
        "create_study",
        role="manager",
        ok=201,
        body=_new_kpi,
    ),
    Endpoint(
        "kpi update",
        "patch",
        lambda w: f"/api/v1/kpis/{w.kpi.pk}/",
        "study",
        role="manager",
        body=lambda w: {"min_n": 10},
    ),
    Endpoint(
        "kpi delete",
        "delete",
        lambda w: f"/api/v1/kpis/{w.kpi.pk}/",
        "study",
        role="manager",
        ok=204,
    ),
    Endpoint("runs", "get", lambda w: "/api/v1/runs/", "list"),
    Endpoint("run", "get", lambda w: f"/api/v1/runs/{w.run.pk}/", "study"),
    Endpoint(
        "run start",
        "post",
        lambda w: "/api/v1/runs/",
        "create_study",
        role="manager",
        ok=202,
        body=lambda w: {"study": w.study.pk},
    ),
    Endpoint("evaluations", "get", lambda w: "/api/v1/evaluations/", "list"),
    Endpoint("evaluation", "get", lambda w: f"/api/v1/evaluations/{w.draft.pk}/", "study"),
    Endpoint(
        "evaluation create",
        "post",
        lambda w: "/api/v1/evaluations/",
        "create_study",
        role="manager",
        ok=201,
        body=lambda w: {"run": w.run.pk, "language": "en"},
    ),
    Endpoint(
        "evaluation update",
        "patch",
        lambda w: f"/api/v1/evaluations/{w.draft.pk}/",
        "study",
        role="manager",
        body=lambda w: {"language": "en"},
    ),
    Endpoint(
        "evaluation sign-off",
        "post",
        lambda w: f"/api/v1/evaluations/{w.draft.pk}/sign-off/",
        "study",
        role="signer",
        body=lambda w: {
            "password": PASSWORD,
            "statement": "I have checked it.",
            "signer_name": "Sato",
        },
        whole_study=True,
    ),
    Endpoint(
        "evaluation withdraw",
        "post",
        lambda w: f"/api/v1/evaluations/{w.signed.pk}/withdraw/",
        "study",
        role="signer",
        body=lambda w: {"reason": "A wrong cut-off."},
        whole_study=True,
    ),
    Endpoint(
        "evaluation pdf",
        "get",
        lambda w: f"/api/v1/evaluations/{w.signed.pk}/pdf/",
        "study",
        whole_study=True,
    ),
]


def expected(endpoint: Endpoint, who: str) -> int:
    if who == "anonymous":
        return 401
    if who == "superuser":
        return endpoint.ok
    if who == "nobody":  # every permission, no site: empty lists, nothing else exists
        return {"list": endpoint.ok, "create_site": 400, "create_study": 400}.get(
            endpoint.level, 404
        )
    role, _, where = who.partition("@")
    if RANK[role] < RANK[endpoint.role]:
        return 403  # the role's group lacks the model permission
    own = where in {"setagaya", "both"}
    if endpoint.level == "site" and not own:
        return 404
    if endpoint.level == "create_site" and not own:
        return 400
    if endpoint.whole_study and where != "both":
        return 403
    return endpoint.ok


CASES = [pytest.param(e, who, id=f"{e}-{who}") for e in ENDPOINTS for who in WHO]


@pytest.mark.parametrize(("endpoint", "who"), CASES)
def test_permission_matrix(world: World, as_user, endpoint: Endpoint, who: str) -> None:  # type: ignore[no-untyped-def]
    client = as_user(world.user(who))
    path = endpoint.path(world)
    kwargs: dict[str, Any] = {}
    if endpoint.body is not None:
        kwargs["data"] = endpoint.body(world)
        kwargs["format"] = "multipart" if endpoint.multipart else "json"
    response = getattr(client, endpoint.method)(path, **kwargs)
    want = expected(endpoint, who)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    response.close()
    assert response.status_code == want, body[:500]
    if want >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "fields"}
        assert error["code"] == {
            401: "not_authenticated",
            403: "permission_denied",
            404: "not_found",
        }.get(want, error["code"])
        # No refusal names a site the caller cannot see, beyond echoing what they sent.
        sent = _sent(kwargs.get("data"))
        for code in _unseen_site_codes(world, who):
            assert body.decode().count(code) <= sent.count(code), (code, body[:500])


def _sent(data: Any) -> str:
    if isinstance(data, dict):
        return " ".join(_sent(v) for v in data.values())
    if isinstance(data, io.BytesIO):
        return data.getvalue().decode()
    return str(data)


def _unseen_site_codes(world: World, who: str) -> list[str]:
    where = who.partition("@")[2]
    codes = {"setagaya": ["itabashi", "osaka"], "itabashi": ["setagaya", "osaka"]}
    return codes.get(where, ["setagaya", "itabashi", "osaka"] if who == "nobody" else [])
