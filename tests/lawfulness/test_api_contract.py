"""The lawfulness API as a contract: every route documented with its response model and its
problems, and bad input of any shape answered with a problem, never a 500."""

from __future__ import annotations

import json
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pledge.consent import api as consent_api
from pledge.gate import api as gate_api
from pledge.notices import api as notices_api
from pledge.purposes import api as purposes_api
from pledge.signals import api as signals_api
from tests.lawfulness.conftest import collect

ROUTERS = (purposes_api, notices_api, consent_api, gate_api, signals_api)


def test_openapi_documents_every_lawfulness_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = [r for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 37
    for route in routes:
        for method in route.methods or ():
            operation = spec["paths"][route.path][method.lower()]
            assert operation.get("description") or operation.get("summary"), route.path
            success = operation["responses"][str(route.status_code or 200)]
            schema = success["content"]["application/json"]["schema"]
            assert "$ref" in json.dumps(schema), (route.path, schema)
            problem = operation["responses"]["404"]["content"]["application/problem+json"]["schema"]
            assert problem["$ref"].endswith("/Problem"), route.path
    assert {"gpc", "lastUpdate"} <= spec["components"]["schemas"]["GpcJson"]["properties"].keys()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _shaped(keys: list[str]) -> st.SearchStrategy[Any]:
    values = st.one_of(
        JSONISH,
        st.sampled_from(["newsletter", "status-updates", "email", "grant", "Consent", "web_form"]),
    )
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


BODIES: dict[tuple[str, str], list[str]] = {
    ("POST", "/api/v1/purposes"): ["slug", "name", "lawful_basis", "channels", "data_categories"],
    ("POST", "/api/v1/collection-points"): ["slug", "name", "kind", "purposes", "privacy_notice"],
    ("POST", "/api/v1/collections"): ["collection_point", "fields", "consents", "signals"],
    ("POST", "/api/v1/gate/check"): ["subject_id", "email", "purpose", "channel", "at"],
    ("POST", "/api/v1/gate/audience"): ["purpose", "channel", "topic", "subject_ids"],
    ("POST", "/api/v1/consent-receipts/verify"): ["receipt"],
    ("POST", "/api/v1/notices/privacy/versions"): ["text", "language", "effective_at"],
    ("POST", "/api/v1/subjects/{sid}/consents"): ["purpose", "action", "wording_version_id"],
    ("PUT", "/api/v1/subjects/{sid}/privacy-state"): ["restricted", "is_child", "parental_consent"],
    ("PUT", "/api/v1/settings/signals"): ["honour_gpc", "dnt_policy", "public_hosts"],
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_bad_input_anywhere_is_a_problem_never_a_500(
    client: TestClient, clik_tenant: str, data: st.DataObject
) -> None:
    sid = client.post("/api/v1/subjects/search", json={"email": "fuzz@example.com"}).json()["items"]
    subject = sid[0]["id"] if sid else collect(client, "newsletter", "fuzz@example.com")
    for (method, path), keys in BODIES.items():
        body = data.draw(st.one_of(JSONISH, _shaped(keys)), label=path)
        r = client.request(
            method,
            path.replace("{sid}", subject),
            content=json.dumps(body),
            headers={"content-type": "application/json"},
        )
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", (path, r.text)
            assert {"type", "title", "status", "detail", "code"} <= r.json().keys()
