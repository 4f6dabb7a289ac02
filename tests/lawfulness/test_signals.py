"""`/.well-known/gpc.json` by Host header and by tenant path, and the signal settings."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from pledge.core.clock import frozen
from pledge.runtime import Runtime
from pledge.signals import settings
from tests.conftest import api_client, make_api_token, make_tenant
from tests.lawfulness.conftest import audit_events, ok, problem


def test_gpc_json_by_path_is_public_json(runtime: Runtime, tenant: str) -> None:
    anonymous = api_client(runtime)
    r = anonymous.get(f"/p/{tenant}/.well-known/gpc.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["gpc"] is True
    assert datetime.strptime(body["lastUpdate"], "%Y-%m-%d")  # a date, nothing more
    assert r.headers["cache-control"].startswith("public")
    assert anonymous.get("/p/nobody/.well-known/gpc.json").status_code == 404


def test_gpc_json_by_host_finds_the_tenant_that_serves_it(
    runtime: Runtime, tenant: str, client: TestClient
) -> None:
    anonymous = api_client(runtime)
    host = {"host": "privacy.acme.example"}
    problem(anonymous.get("/.well-known/gpc.json", headers=host), 404, "not_found")
    saved = ok(
        client.put(
            "/api/v1/settings/signals",
            json={"public_hosts": ["Privacy.Acme.Example", "www.acme.example."]},
        )
    )
    assert saved["public_hosts"] == ["privacy.acme.example", "www.acme.example"]
    for value in ("privacy.acme.example", "PRIVACY.acme.example:8443", "www.acme.example"):
        r = anonymous.get("/.well-known/gpc.json", headers={"host": value})
        assert r.status_code == 200 and r.json()["gpc"] is True, value
        assert r.headers["content-type"] == "application/json"
    for value in ("acme.example", "evil.example", "[::1]:80", "privacy.acme.example.evil"):
        assert anonymous.get("/.well-known/gpc.json", headers={"host": value}).status_code == 404

    # Another tenant cannot claim this tenant's site (and so speak for it).
    make_tenant(runtime, "other")
    other = api_client(runtime, make_api_token(runtime, "other"))
    problem(
        other.put("/api/v1/settings/signals", json={"public_hosts": ["privacy.acme.example"]}),
        409,
        "conflict",
    )
    ok(other.put("/api/v1/settings/signals", json={"public_hosts": ["privacy.other.example"]}))
    ok(other.put("/api/v1/settings/signals", json={"honour_gpc": False}))
    theirs = anonymous.get("/.well-known/gpc.json", headers={"host": "privacy.other.example"})
    assert theirs.json()["gpc"] is False
    ours = anonymous.get("/.well-known/gpc.json", headers={"host": "privacy.acme.example"})
    assert ours.json()["gpc"] is True


def test_signal_settings_change_what_gpc_json_says_and_when(
    runtime: Runtime, tenant: str, client: TestClient
) -> None:
    current = ok(client.get("/api/v1/settings/signals"))
    assert current["honour_gpc"] is True and current["dnt_policy"] == "record"
    assert current["signals_updated_at"] is None
    changed_on = datetime(2027, 3, 14, 9, 30, tzinfo=UTC)
    with frozen(changed_on), runtime.tenant_context(tenant) as ctx:
        settings.update_signal_settings(ctx, honour_gpc=False, dnt_policy="opt_out")
    body = ok(api_client(runtime).get(f"/p/{tenant}/.well-known/gpc.json"))
    assert body == {"gpc": False, "lastUpdate": "2027-03-14"}
    shown = ok(client.get("/api/v1/settings/signals"))
    assert shown["dnt_policy"] == "opt_out" and shown["gpc_json"] == body

    # Hosts alone do not change the stance, so lastUpdate stays.
    ok(client.put("/api/v1/settings/signals", json={"public_hosts": ["acme.example"]}))
    assert ok(api_client(runtime).get(f"/p/{tenant}/.well-known/gpc.json")) == body
    ok(client.put("/api/v1/settings/signals", json={"honour_gpc": False}))  # no change
    changes = [
        e["details"] for e in audit_events(client) if e["event"] == "signal_settings.changed"
    ]
    assert [c["changed"] for c in changes] == [["honour_gpc", "dnt_policy"], ["public_hosts"]]

    for bad in (
        {"dnt_policy": "ignore"},
        {"public_hosts": ["not a host"]},
        {"public_hosts": ["https://acme.example/"]},
        {"public_hosts": ["x.example"] * 21},
        {"honour_gpc": "perhaps"},
        {"colour": "blue"},
    ):
        problem(client.put("/api/v1/settings/signals", json=bad), 422)


def test_dnt_is_honoured_only_when_the_tenant_says_so(client: TestClient, clik_tenant: str) -> None:
    from tests.lawfulness.conftest import collect

    recorded = collect(client, "newsletter", "dnt1@example.com", signals={"dnt": True})
    state = ok(client.get(f"/api/v1/subjects/{recorded}/privacy-state"))
    assert state["sale_opt_out"] is False
    ok(client.put("/api/v1/settings/signals", json={"dnt_policy": "opt_out"}))
    honoured = collect(client, "newsletter", "dnt2@example.com", signals={"dnt": True})
    state = ok(client.get(f"/api/v1/subjects/{honoured}/privacy-state"))
    assert state["sale_opt_out"] is True and state["sale_opt_out_source"] == "dnt"


def test_dnt_does_not_override_an_explicit_opt_in_to_sale_any_more_than_gpc(
    client: TestClient, clik_tenant: str
) -> None:
    """The person said yes to sale and sharing on the preference center; their browser's DNT
    header, under an `opt_out` policy, must not turn that back into a no (GPC does not)."""
    from tests.lawfulness.conftest import collect

    ok(client.put("/api/v1/settings/signals", json={"dnt_policy": "opt_out"}))
    sid = collect(client, "newsletter", "dnt3@example.com", signals={"dnt": True})
    path = f"/api/v1/subjects/{sid}/privacy-state"
    assert ok(client.get(path))["sale_opt_out_source"] == "dnt"
    ok(client.put(path, json={"sale_opt_out": False}))  # the person's own choice
    for signals in ({"gpc": True}, {"dnt": True}, {"gpc": True, "dnt": True}):
        assert collect(client, "newsletter", "dnt3@example.com", signals=signals) == sid
        assert ok(client.get(path))["sale_opt_out"] is False, signals
    received = [e for e in audit_events(client, sid) if e["event"] == "signal.received"]
    assert received[0]["details"]["effects"] == ["dnt_opt_out"]
    # Nothing changed afterwards, and nothing is reported as if it had.
    assert all("dnt_opt_out" not in e["details"]["effects"] for e in received[1:])
