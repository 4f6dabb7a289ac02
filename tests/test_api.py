"""The REST API: subjects, interactions, audit, keys; problem+json; never a 500 for bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pledge.access.permissions import Scope
from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token

PERSON = {
    "fields": [
        {"name": "email", "value": "grace@example.com"},
        {"name": "first_name", "value": "Grace", "category": "user.name.first"},
        {
            "name": "plan",
            "value": "team",
            "category": "user.account.settings",
            "source": "automatic",
        },
    ]
}


def _create(client: TestClient, body: Mapping[str, object] = PERSON) -> str:
    r = client.post("/api/v1/subjects", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_create_get_rectify_export_erase(client: TestClient) -> None:
    sid = _create(client)
    r = client.get(f"/api/v1/subjects/{sid}")
    assert r.status_code == 200
    fields = {f["name"]: f for f in r.json()["fields"]}
    assert (
        fields["plan"]["source"] == "automatic"
        and fields["email"]["category"] == "user.contact.email"
    )

    r = client.put(
        f"/api/v1/subjects/{sid}/fields/first_name",
        json={"value": "Grace H.", "category": "user.name.first"},
    )
    assert r.status_code == 200 and r.json()["value"] == "Grace H."

    r = client.post(
        f"/api/v1/subjects/{sid}/interactions",
        json={
            "kind": "chat",
            "occurred_at": "2026-05-01T12:00:00Z",
            "category": "user.content.private",
            "payload": {"transcript": "hello"},
        },
    )
    assert r.status_code == 201
    assert client.get(f"/api/v1/subjects/{sid}/interactions").json()[0]["payload"] == {
        "transcript": "hello"
    }

    export = client.get(f"/api/v1/subjects/{sid}/export").json()
    assert {f["value"] for f in export["fields"]} == {"grace@example.com", "Grace H.", "team"}
    assert export["interactions"][0]["kind"] == "chat"

    r = client.delete(f"/api/v1/subjects/{sid}")
    assert r.status_code == 200 and r.json()["status"] == "erased"
    assert client.get(f"/api/v1/subjects/{sid}").json()["fields"] == []
    r = client.put(
        f"/api/v1/subjects/{sid}/fields/first_name",
        json={"value": "X", "category": "user.name.first"},
    )
    assert r.status_code == 410 and r.json()["code"] == "subject_erased"


def test_search_by_identity_and_cursor_pagination(client: TestClient) -> None:
    ids = [
        _create(client, {"fields": [{"name": "email", "value": f"p{n}@example.com"}]})
        for n in range(7)
    ]
    r = client.post("/api/v1/subjects/search", json={"email": "P3@EXAMPLE.COM"})
    assert [i["id"] for i in r.json()["items"]] == [ids[3]]
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/subjects", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids  # oldest first, each once
    r = client.get("/api/v1/subjects", params={"cursor": "%%%"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"


def test_duplicate_identity_is_a_conflict_naming_the_existing_subject(client: TestClient) -> None:
    sid = _create(client)
    r = client.post(
        "/api/v1/subjects", json={"fields": [{"name": "email", "value": "GRACE@example.com"}]}
    )
    assert r.status_code == 409
    assert r.json()["subject_id"] == sid


def test_erasure_keeping_a_retention_class(client: TestClient) -> None:
    body = {
        "fields": [
            *PERSON["fields"],
            {
                "name": "vat",
                "value": "GB123",
                "category": "user.financial",
                "retention_class": "billing",
            },
        ]
    }
    sid = _create(client, body)
    r = client.post(f"/api/v1/subjects/{sid}/erase", json={"keep_classes": ["billing"]})
    assert r.json()["status"] == "partially_erased" and r.json()["kept_classes"] == ["billing"]
    assert [f["name"] for f in client.get(f"/api/v1/subjects/{sid}").json()["fields"]] == ["vat"]
    r = client.post(f"/api/v1/subjects/{sid}/erase", json={"keep_classes": ["no_such"]})
    assert r.status_code == 422


def test_audit_entries_and_verify(client: TestClient) -> None:
    sid = _create(client)
    client.get(f"/api/v1/subjects/{sid}")
    r = client.get("/api/v1/audit/entries", params={"subject_id": sid})
    assert [e["event"] for e in r.json()["items"]] == ["subject.created", "subject.viewed"]
    r = client.post("/api/v1/audit/verify")
    assert r.json()["ok"] is True and r.json()["checked"] >= 3
    r = client.get("/api/v1/audit/entries", params={"limit": 2})
    assert len(r.json()["items"]) == 2 and r.json()["next_cursor"] == 2


def test_scopes_are_enforced_and_keys_can_be_revoked(runtime: Runtime, tenant: str) -> None:
    reader = api_client(runtime, make_api_token(runtime, tenant, frozenset({Scope.SUBJECTS_READ})))
    r = reader.post("/api/v1/subjects", json=PERSON)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert reader.get("/api/v1/subjects").status_code == 200

    # A key that manages keys grants only scopes it holds itself.
    admin = api_client(
        runtime,
        make_api_token(runtime, tenant, frozenset({Scope.APIKEYS_MANAGE, Scope.SUBJECTS_READ})),
    )
    created = admin.post(
        "/api/v1/api-keys", json={"name": "integration", "scopes": ["subjects:read"]}
    ).json()
    temp = api_client(runtime, created["token"])
    assert temp.get("/api/v1/subjects").status_code == 200
    assert all("token" not in k for k in admin.get("/api/v1/api-keys").json())
    admin.delete(f"/api/v1/api-keys/{created['id']}")
    r = temp.get("/api/v1/subjects")
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


def test_missing_or_malformed_credentials_get_401(runtime: Runtime, tenant: str) -> None:
    anon = api_client(runtime)
    r = anon.get("/api/v1/subjects")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    for token in ("plg_x", "plg_" + "0" * 32 + "_" + "0" * 32 + "_nope", "Basic abc"):
        anon.headers["Authorization"] = f"Bearer {token}"
        r = anon.get("/api/v1/subjects")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_openapi_documents_every_api_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/subjects/{subject_id}/export" in spec["paths"]
    assert "/api/v1/audit/verify" in spec["paths"]
    assert not any(p.startswith("/subjects") for p in spec["paths"])  # pages stay out


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        JSONISH,
        st.fixed_dictionaries(
            {
                "fields": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["name", "value", "category", "source", "retention_class", "x"]
                        ),
                        JSONISH,
                        max_size=5,
                    ),
                    max_size=3,
                )
            }
        ),
    )
)
def test_bad_input_is_rejected_cleanly_never_a_500(client: TestClient, body: object) -> None:
    r = client.post(
        "/api/v1/subjects", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert r.status_code in {201, 409, 422}, (r.status_code, r.text)
    if r.status_code != 201:
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert {"type", "title", "status", "detail", "code"} <= problem.keys()


def test_garbage_ids_and_bodies_are_404_or_422(client: TestClient) -> None:
    for path in (
        "/api/v1/subjects/not-an-id",
        "/api/v1/subjects/%00",
        "/api/v1/subjects/" + "9" * 300,
    ):
        assert client.get(path).status_code in {404, 422}
    r = client.post(
        "/api/v1/subjects", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = client.get("/api/v1/audit/entries", params={"subject_id": "zzz"})
    assert r.status_code == 422


def test_a_payload_that_is_not_valid_json_is_refused(client: TestClient) -> None:
    """Python's JSON reader takes NaN and Infinity; exports copy the stored payload text as
    it is, so such a payload would make every later export invalid JSON."""
    sid = client.post("/api/v1/subjects", json={"fields": [{"name": "email", "value": "n@x.io"}]})
    url = f"/api/v1/subjects/{sid.json()['id']}/interactions"
    body = (
        '{"kind": "note", "occurred_at": "2026-01-01T10:00:00Z",'
        ' "category": "user.content.private", "payload": {"score": NaN}}'
    )
    r = client.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text
    assert "finite numbers" in r.json()["detail"]
    assert client.get(url).json() == []


def test_a_body_larger_than_the_api_takes_is_refused_before_it_is_read(
    runtime: Runtime, client: TestClient
) -> None:
    from pledge.web.limits import MAX_BODY_BYTES

    one = {"type": "opt_out_sale", "requester": {"email": "ana@example.com"}}
    padding = "x" * (MAX_BODY_BYTES + 1)
    big = json.dumps({"requests": [one], "padding": padding}).encode()
    r = client.post(
        "/api/v1/requests/batch", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413, r.text  # said by its Content-Length: not even read

    # Sent in chunks, without a Content-Length: refused once the bytes pass the limit.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    r = client.post(
        "/api/v1/requests/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "body_too_large" and "4 MB" in r.json()["detail"]
    assert client.get("/api/v1/requests", params={"open_only": "false"}).json() == []
