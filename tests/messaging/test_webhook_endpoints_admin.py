"""Webhook endpoints can be switched off and on, and their signing secret rotated — by API
and CLI, in the tenant only, audited; and a portability transfer names its receiver and
expires."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import OKPKey
from sqlalchemy import select

from pledge.access.permissions import Scope
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.core.clock import utcnow
from pledge.rights import downloads
from pledge.rights import service as rights
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.cli.test_cli import run
from tests.conftest import api_client, make_api_token, make_tenant
from tests.rights.test_api_and_webhooks import Receiver as SharedReceiver

EVENT = "request.state_changed"


class Receiver(SharedReceiver):
    """The shared receiver (records what it is sent, answers `status`), checking signatures."""

    def verifies(self, hit: dict[str, Any], secret: str) -> bool:
        # A retry is posted by a worker run two days ahead (`_retry_all`), and stamped then.
        return webhooks.verify_signature(
            secret,
            hit["headers"]["Pledge-Signature"],
            hit["body"],
            now=int(utcnow().timestamp()),
            tolerance_s=3 * 86_400,
        )


@pytest.fixture
def receiver(private_targets: None) -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _emit(runtime: Runtime, tenant: str, n: int) -> int:
    """An event, committed (its delivery is attempted right after); how many were queued."""
    with runtime.tenant_context(tenant) as ctx:
        return webhooks.emit(ctx, EVENT, {"n": n})


def _retry_all(runtime: Runtime) -> None:
    """The worker's cycle once every retry has come due."""
    webhooks.deliver(runtime.sessions, runtime.keystore, now=utcnow() + timedelta(days=2))


def _add(client: TestClient, url: str) -> tuple[str, str]:
    r = client.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["secret"]


def _deliveries(runtime: Runtime, tenant: str) -> list[WebhookDelivery]:
    with runtime.tenant_context(tenant) as ctx:
        return list(
            ctx.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
        )


def _audit(runtime: Runtime, tenant: str) -> list[tuple[str, dict[str, Any]]]:
    with runtime.tenant_context(tenant) as ctx:
        return [
            (e.event, e.details)
            for e in ctx.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.tenant_id == ctx.tenant_id)
                .order_by(AuditEntry.seq)
            )
            if e.event.startswith("webhook.")
        ]


def test_a_deactivated_endpoint_receives_nothing_more_until_activated(
    runtime: Runtime, tenant: str, client: TestClient, receiver: Receiver
) -> None:
    endpoint_id, secret = _add(client, receiver.url)
    _emit(runtime, tenant, 1)
    assert len(receiver.received) == 1

    receiver.status = 503  # down: the next event waits for its retry
    _emit(runtime, tenant, 2)
    assert len(receiver.received) == 2
    (waiting,) = [d for d in _deliveries(runtime, tenant) if d.status == "pending"]

    r = client.post(f"/api/v1/webhooks/{endpoint_id}/deactivate")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": endpoint_id,
        "url": receiver.url,
        "events": ["*"],
        "active": False,
        "secret": None,
    }
    assert client.get("/api/v1/webhooks").json()[0]["active"] is False
    # The delivery waiting for its retry failed for good, saying why, its payload dropped.
    (gone,) = [d for d in _deliveries(runtime, tenant) if d.id == waiting.id]
    assert gone.status == "failed" and gone.payload_sealed is None
    assert gone.last_error == "endpoint deactivated"

    receiver.status = 200
    _retry_all(runtime)
    assert _emit(runtime, tenant, 3) == 0  # nothing queued for it
    _retry_all(runtime)
    assert len(receiver.received) == 2  # nothing more arrived

    r = client.post(f"/api/v1/webhooks/{endpoint_id}/activate")
    assert r.status_code == 200 and r.json()["active"] is True
    _emit(runtime, tenant, 4)
    assert len(receiver.received) == 3
    hit = receiver.received[-1]
    assert json.loads(hit["body"])["data"] == {"n": 4}
    assert receiver.verifies(hit, secret)  # the secret is the one it had


def test_switching_off_the_tenants_integration_puts_nothing_on_its_requests(
    runtime: Runtime, tenant: str, client: TestClient, receiver: Receiver
) -> None:
    """Staff switched it off: its dropped events are nothing for them to act on."""
    endpoint_id, _secret = _add(client, receiver.url)
    receiver.status = 503
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester("r@example.com"), "EU"))
        request_id = str(request.id)
        webhooks.emit(ctx, EVENT, {"n": 1}, request_id=request.id)
    assert client.post(f"/api/v1/webhooks/{endpoint_id}/deactivate").status_code == 200
    assert [d.last_error for d in _deliveries(runtime, tenant)] == ["endpoint deactivated"]
    timeline = client.get(f"/api/v1/requests/{request_id}").json()["timeline"]
    assert [e["kind"] for e in timeline if e["kind"] == "delivery_failed"] == []


def test_an_endpoint_switched_within_a_transaction_gets_that_transactions_next_events(
    runtime: Runtime, tenant: str, receiver: Receiver
) -> None:
    """The endpoints read for a transaction's events are read again after a change."""
    with runtime.tenant_context(tenant) as ctx:
        endpoint, _secret = webhooks.add_endpoint(ctx, receiver.url, [EVENT])
        endpoint_id = endpoint.id
        webhooks.deactivate_endpoint(ctx, str(endpoint_id))
    with runtime.tenant_context(tenant) as ctx:
        assert webhooks.emit(ctx, EVENT, {"n": 1}) == 0
        webhooks.activate_endpoint(ctx, str(endpoint_id))
        assert webhooks.emit(ctx, EVENT, {"n": 2}) == 1
        webhooks.deactivate_endpoint(ctx, str(endpoint_id))
        assert webhooks.emit(ctx, EVENT, {"n": 3}) == 0
    # The one queued while it was on was dropped when it was switched off in the same
    # transaction: nothing reached the receiver.
    assert receiver.received == []
    assert [(d.status, d.last_error) for d in _deliveries(runtime, tenant)] == [
        ("failed", "endpoint deactivated")
    ]


def test_a_rotated_secret_signs_the_next_delivery_and_the_old_one_no_longer_verifies(
    runtime: Runtime, tenant: str, client: TestClient, receiver: Receiver
) -> None:
    endpoint_id, old = _add(client, receiver.url)
    receiver.status = 503
    _emit(runtime, tenant, 1)  # waiting for its retry, signed when it is posted
    assert receiver.verifies(receiver.received[0], old)

    r = client.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret")
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old and r.json()["active"] is True
    assert all(e["secret"] is None for e in client.get("/api/v1/webhooks").json())  # once

    receiver.status = 200
    _retry_all(runtime)  # the delivery queued before the rotation
    _emit(runtime, tenant, 2)
    retried, latest = receiver.received[1:]
    assert json.loads(retried["body"])["data"] == {"n": 1}
    for hit in (retried, latest):
        assert receiver.verifies(hit, new)
        assert not receiver.verifies(hit, old)
    # A second rotation revokes the first's secret too.
    newer = client.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret").json()["secret"]
    _emit(runtime, tenant, 3)
    assert receiver.verifies(receiver.received[-1], newer)
    assert not receiver.verifies(receiver.received[-1], new)


def test_another_tenants_endpoint_is_not_found_and_left_as_it_was(
    runtime: Runtime, tenant: str, client: TestClient, receiver: Receiver
) -> None:
    endpoint_id, secret = _add(client, receiver.url)
    make_tenant(runtime, "other")
    other = api_client(runtime, make_api_token(runtime, "other"))
    for action in ("deactivate", "activate", "rotate-secret"):
        r = other.post(f"/api/v1/webhooks/{endpoint_id}/{action}")
        assert r.status_code == 404, (action, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "secret" not in r.text
        r = client.post(f"/api/v1/webhooks/not-an-id/{action}")
        assert r.status_code == 404, (action, r.text)
    # A key without the scope adding needs cannot either.
    reader = api_client(runtime, make_api_token(runtime, tenant, frozenset({Scope.REPORTS_READ})))
    assert reader.post(f"/api/v1/webhooks/{endpoint_id}/deactivate").status_code == 403
    _emit(runtime, tenant, 1)
    assert len(receiver.received) == 1 and receiver.verifies(receiver.received[0], secret)
    assert [e for e, _ in _audit(runtime, "other")] == []


def test_each_change_is_audited_without_the_secret(
    runtime: Runtime, tenant: str, client: TestClient, receiver: Receiver
) -> None:
    endpoint_id, secret = _add(client, receiver.url)
    receiver.status = 503
    _emit(runtime, tenant, 1)
    client.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret")
    client.post(f"/api/v1/webhooks/{endpoint_id}/deactivate")
    client.post(f"/api/v1/webhooks/{endpoint_id}/deactivate")  # already off: no change
    client.post(f"/api/v1/webhooks/{endpoint_id}/activate")
    entries = _audit(runtime, tenant)
    assert [e for e, _ in entries] == [
        AuditEvent.WEBHOOK_ENDPOINT_ADDED.value,
        AuditEvent.WEBHOOK_SECRET_ROTATED.value,
        AuditEvent.WEBHOOK_ENDPOINT_DEACTIVATED.value,
        AuditEvent.WEBHOOK_ENDPOINT_ACTIVATED.value,
    ]
    assert all(d["endpoint_id"] == endpoint_id for _, d in entries)
    assert entries[2][1]["deliveries_dropped"] == 1
    assert "whsec_" not in json.dumps([d for _, d in entries]) and secret not in str(entries)


def test_the_cli_switches_an_endpoint_and_rotates_its_secret(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], receiver: Receiver
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        endpoint, old = webhooks.add_endpoint(ctx, receiver.url, ["*"])
        endpoint_id = str(endpoint.id)

    code, out = run("webhooks", "deactivate", "--tenant", tenant, endpoint_id)
    assert code == 0 and f"Endpoint {endpoint_id} deactivated" in out, out
    assert _emit(runtime, tenant, 1) == 0

    code, out = run("webhooks", "rotate-secret", "--tenant", tenant, endpoint_id)
    assert code == 0, out
    (new,) = [word for word in out.split() if word.startswith("whsec_")]
    assert new != old

    code, out = run("webhooks", "activate", "--tenant", tenant, endpoint_id)
    assert code == 0 and f"Endpoint {endpoint_id} activated" in out, out
    _emit(runtime, tenant, 2)
    (hit,) = receiver.received
    assert receiver.verifies(hit, new) and not receiver.verifies(hit, old)

    code, out = run("webhooks", "deactivate", "--tenant", tenant, "no-such-endpoint")
    assert code == 1 and "no such webhook endpoint" in out, out
    assert [e for e, _ in _audit(runtime, tenant)] == [
        AuditEvent.WEBHOOK_ENDPOINT_ADDED.value,
        AuditEvent.WEBHOOK_ENDPOINT_DEACTIVATED.value,
        AuditEvent.WEBHOOK_SECRET_ROTATED.value,
        AuditEvent.WEBHOOK_ENDPOINT_ACTIVATED.value,
    ]


def test_a_transfer_names_its_receiver_and_expires(
    runtime: Runtime, tenant: str, receiver: Receiver
) -> None:
    """A receiver can refuse a transfer meant for another organisation, or replayed late."""
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("portability", Requester("t@example.com"), "EU"))
        downloads.transfer(ctx, request, receiver.url, {"fields": []})
    (hit,) = receiver.received
    token = hit["body"].decode()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    published = api_client(runtime).get(f"/p/{tenant}/.well-known/jwks.json").json()["keys"]
    (jwk,) = [k for k in published if k["kid"] == header["kid"]]
    claims = json.loads(
        jws.deserialize_compact(token, OKPKey.import_key(jwk), algorithms=[jwk["alg"]]).payload
    )
    assert claims["aud"] == receiver.url
    expires = claims["exp"] - utcnow().timestamp()
    assert timedelta(days=6, hours=23) < timedelta(seconds=expires) <= timedelta(days=7)
