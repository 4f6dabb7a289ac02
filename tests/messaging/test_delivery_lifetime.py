"""How long a webhook delivery's data lives (DESIGN.md §4): an erasure reaches the person's
transfer still waiting for its retry, and finished deliveries about no request are deleted
after PLEDGE_WEBHOOK_KEEP_DAYS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge import worker
from pledge.core.clock import frozen, utcnow
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.messaging.test_webhooks_review12 import _fulfilled as fulfilled_by_api
from tests.rights.test_api_and_webhooks import Receiver, clik_with_wanda

EMAIL = "wanda.lifetime@example.com"
CANCELLED = "cancelled: the person was erased"


@pytest.fixture
def with_person(runtime: Runtime, tenant: str) -> str:
    return clik_with_wanda(runtime, tenant, EMAIL)


@pytest.fixture
def crm(private_targets: None) -> Iterator[Receiver]:
    """A recipient's receiver, up."""
    with Receiver() as r:
        yield r


@pytest.fixture
def other_org(private_targets: None) -> Iterator[Receiver]:
    """The organisation the person sends their copy to (and the tenant's integration), down."""
    with Receiver() as r:
        r.status = 503
        yield r


def _fulfilled(
    runtime: Runtime, tenant: str, client: TestClient, kind: str, fulfil: dict[str, Any]
) -> str:
    return fulfilled_by_api(runtime, tenant, client, kind, fulfil, EMAIL)


def _transfer(runtime: Runtime, tenant: str) -> WebhookDelivery:
    with runtime.tenant_context(tenant) as ctx:
        return ctx.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event == "portability.transfer")
        ).one()


def _add_recipient(client: TestClient, url: str) -> None:
    r = client.post(
        "/api/v1/recipients",
        json={
            "slug": "crm",
            "name": "CRM",
            "kind": "recipient",
            "country": "US",
            "webhook_url": url,
        },
    )
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------------------------------------
# 1. An erasure reaches the person's transfer still waiting for its retry


def test_an_erasure_cancels_the_person_s_transfer_waiting_for_its_retry(
    runtime: Runtime, with_person: str, client: TestClient, crm: Receiver, other_org: Receiver
) -> None:
    """The person sent their copy to another organisation, whose server was down, then asked
    to be erased: the copy (sealed under the tenant's key, outside the erasure's reach) is
    not sent when that server is back. The erasure's own notice to a recipient goes, and so
    do the tenant's integration's state changes (ids only)."""
    _add_recipient(client, crm.url)
    with runtime.tenant_context(with_person) as ctx:
        webhooks.add_endpoint(ctx, other_org.url, ["request.state_changed"])
    portability = _fulfilled(
        runtime, with_person, client, "portability", {"transfer_url": other_org.url}
    )
    waiting = _transfer(runtime, with_person)
    assert waiting.status == "pending" and waiting.payload_sealed is not None  # tried: 503

    _fulfilled(runtime, with_person, client, "erasure", {})
    # The erasure's notice to the recipient left right after its commit, naming the person.
    assert [hit["headers"]["Pledge-Event"] for hit in crm.received] == ["subject.erasure_requested"]
    assert EMAIL.encode() in crm.received[0]["body"]
    cancelled = _transfer(runtime, with_person)
    assert (cancelled.status, cancelled.last_error) == ("failed", CANCELLED)
    assert cancelled.payload_sealed is None

    # The other organisation's server is back; the worker runs after every retry time.
    other_org.status = 200
    other_org.received.clear()
    with frozen(utcnow() + timedelta(days=2)):
        report = worker.run_once(runtime)
    assert report.errors == []
    events = [hit["headers"]["Pledge-Event"] for hit in other_org.received]
    assert "portability.transfer" not in events
    assert events and set(events) == {"request.state_changed"}  # the integration's, kept
    assert EMAIL.encode() not in b"".join(hit["body"] for hit in other_org.received)

    # Staff see on the request that the copy never went, and why.
    timeline = client.get(f"/api/v1/requests/{portability}").json()["timeline"]
    failed = [e["details"] for e in timeline if e["kind"] == "delivery_failed"]
    assert [(d["event"], d["error"]) for d in failed] == [("portability.transfer", CANCELLED)]


def test_an_erasure_by_the_subjects_api_cancels_the_waiting_transfer_too(
    runtime: Runtime, with_person: str, client: TestClient, other_org: Receiver
) -> None:
    _fulfilled(runtime, with_person, client, "portability", {"transfer_url": other_org.url})
    with runtime.tenant_context(with_person) as ctx:
        subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
    r = client.delete(f"/api/v1/subjects/{subject_id}")
    assert r.status_code == 200, r.text
    cancelled = _transfer(runtime, with_person)
    assert (cancelled.status, cancelled.last_error) == ("failed", CANCELLED)
    assert cancelled.payload_sealed is None
    other_org.status = 200
    other_org.received.clear()
    webhooks.deliver(runtime.sessions, runtime.keystore, now=utcnow() + timedelta(days=2))
    assert other_org.received == []


# ---------------------------------------------------------------------------------------------
# 2. Finished deliveries about no request are deleted after PLEDGE_WEBHOOK_KEEP_DAYS


def _statuses(runtime: Runtime, tenant: str) -> dict[str, str]:
    with runtime.tenant_context(tenant) as ctx:
        return {d.event: d.status for d in ctx.session.scalars(select(WebhookDelivery))}


def test_finished_deliveries_about_no_request_leave_after_the_keep_days(
    runtime: Runtime, tenant: str, crm: Receiver, other_org: Receiver
) -> None:
    start = utcnow()
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(
            ctx, crm.url, ["old.delivered", "old.of_a_request", "newer.delivered"]
        )
        webhooks.add_endpoint(ctx, other_org.url, ["old.waiting"])
        dropped, _ = webhooks.add_endpoint(ctx, other_org.url, ["old.dropped"])
    with runtime.tenant_context(tenant) as ctx:
        webhooks.emit(ctx, "old.delivered", {"subject_id": str(uuid.uuid4())})
        webhooks.emit(ctx, "old.of_a_request", {"x": 1}, request_id=uuid.uuid4())
        webhooks.emit(ctx, "old.waiting", {"x": 2})  # the receiver is down: retried
        webhooks.emit(ctx, "old.dropped", {"x": 3})
    with runtime.tenant_context(tenant) as ctx:
        webhooks.deactivate_endpoint(ctx, dropped.id)  # failed for good
    with frozen(start + timedelta(days=60)), runtime.tenant_context(tenant) as ctx:
        webhooks.emit(ctx, "newer.delivered", {"x": 4})
    assert _statuses(runtime, tenant) == {
        "old.delivered": "delivered",
        "old.of_a_request": "delivered",
        "old.waiting": "pending",
        "old.dropped": "failed",
        "newer.delivered": "delivered",
    }

    with frozen(start + timedelta(days=89)):
        assert worker.run_once(runtime).webhooks_purged == 0  # not yet
    with frozen(start + timedelta(days=91)):
        report = worker.run_once(runtime)
        again = worker.run_once(runtime)
    assert report.errors == [] and (report.webhooks_purged, again.webhooks_purged) == (2, 0)
    assert "2 old deliveries deleted" in report.summary()
    # Kept: one about a request (it goes with the request's record), a newer one, and one
    # still being retried.
    assert _statuses(runtime, tenant) == {
        "old.of_a_request": "delivered",
        "old.waiting": "pending",
        "newer.delivered": "delivered",
    }


def test_the_keep_days_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from pledge.core.config import Settings

    assert Settings().webhook_keep_days == Settings().mail_keep_days == 90
    for bad in ("0", "3651", "soon"):
        monkeypatch.setenv("PLEDGE_WEBHOOK_KEEP_DAYS", bad)
        with pytest.raises(ValidationError):
            Settings()
    monkeypatch.setenv("PLEDGE_WEBHOOK_KEEP_DAYS", "30")
    assert Settings().webhook_keep_days == 30
