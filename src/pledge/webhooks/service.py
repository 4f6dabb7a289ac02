"""Queueing, signing and delivering webhooks.

A delivery is a row written in the caller's transaction (sealed payload); it is attempted
right after the commit and retried with backoff by `pledge webhooks deliver` (run it from
cron or `pledge worker`). Each POST carries `Pledge-Signature: t=<unix>,v1=<hex>` where the
hex is HMAC-SHA256(secret, "<unix>.<body>") — a receiver verifies it and rejects old stamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.core.clock import utcnow
from pledge.core.db import after_commit, transaction_memo
from pledge.core.errors import InvalidInput
from pledge.core.ids import new_id
from pledge.crypto.aead import seal, unseal
from pledge.crypto.keystore import KeyStore
from pledge.webhooks import targets
from pledge.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

BACKOFF = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
    timedelta(hours=24),
]
TIMEOUT_S = 5.0


def _aead(keystore: KeyStore, tenant_id: uuid.UUID) -> AESGCM:
    return AESGCM(keystore.derived_key(tenant_id, "webhooks"))


def seal_secret(ctx: TenantContext, secret: str, owner: uuid.UUID) -> bytes:
    return seal(
        _aead(ctx.keystore, ctx.tenant_id), secret.encode(), b"webhook-secret|" + owner.bytes
    )


def open_secret(keystore: KeyStore, tenant_id: uuid.UUID, sealed: bytes, owner: uuid.UUID) -> str:
    return unseal(_aead(keystore, tenant_id), sealed, b"webhook-secret|" + owner.bytes).decode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300
) -> bool:
    """What a receiver does: check the MAC and refuse a stale timestamp (replay)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        stamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), header)


# ---------------------------------------------------------------------------------------------
# Endpoints


def add_endpoint(ctx: TenantContext, url: str, events: list[str]) -> tuple[WebhookEndpoint, str]:
    """Subscribe a URL; returns the endpoint and its signing secret (shown once)."""
    url = targets.check_url(url, "a webhook URL")
    if not events:
        raise InvalidInput("subscribe to at least one event (or '*')")
    endpoint_id = new_id()
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        tenant_id=ctx.tenant_id,
        id=endpoint_id,
        url=url[:500],
        events=sorted(set(events)),
        secret_sealed=seal_secret(ctx, secret, endpoint_id),
        active=True,
        created_at=utcnow(),
    )
    ctx.session.add(endpoint)
    ctx.session.flush()
    transaction_memo(ctx.session).pop(("webhook-endpoints", ctx.tenant_id), None)
    return endpoint, secret


def list_endpoints(ctx: TenantContext) -> list[WebhookEndpoint]:
    return list(
        ctx.session.scalars(for_tenant(select(WebhookEndpoint), WebhookEndpoint, ctx.tenant_id))
    )


# ---------------------------------------------------------------------------------------------
# Queueing


def _queue(
    ctx: TenantContext, event: str, payload: dict[str, Any], kind: str, target: uuid.UUID
) -> WebhookDelivery:
    delivery_id = new_id()
    body = {
        "id": str(delivery_id),
        "event": event,
        "tenant": ctx.tenant.slug,
        "created_at": utcnow().isoformat(),
        "data": payload,
    }
    delivery = WebhookDelivery(
        tenant_id=ctx.tenant_id,
        id=delivery_id,
        event=event,
        target_kind=kind,
        target_id=target,
        payload_sealed=seal(
            _aead(ctx.keystore, ctx.tenant_id), json.dumps(body).encode(), delivery_id.bytes
        ),
        status=DeliveryStatus.PENDING.value,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    ctx.session.add(delivery)
    return delivery


def payload(keystore: KeyStore, delivery: WebhookDelivery) -> bytes:
    """The delivery's body (JSON), decrypted."""
    return unseal(_aead(keystore, delivery.tenant_id), delivery.payload_sealed, delivery.id.bytes)


def _active_endpoints(ctx: TenantContext) -> list[tuple[uuid.UUID, frozenset[str]]]:
    """(id, events) of the tenant's active endpoints, read once per transaction: a request
    emits an event at each of its transitions. `add_endpoint`, the only writer, drops it."""
    memo = transaction_memo(ctx.session)
    key = ("webhook-endpoints", ctx.tenant_id)
    found: list[tuple[uuid.UUID, frozenset[str]]] | None = memo.get(key)
    if found is None:
        found = [
            (e.id, frozenset(e.events))
            for e in ctx.session.scalars(
                for_tenant(select(WebhookEndpoint), WebhookEndpoint, ctx.tenant_id).where(
                    WebhookEndpoint.active.is_(True)
                )
            )
        ]
        memo[key] = found
    return found


def emit(ctx: TenantContext, event: str, payload: dict[str, Any]) -> int:
    """Queue `event` for every active endpoint subscribed to it; sent after commit."""
    endpoints = [
        endpoint_id
        for endpoint_id, events in _active_endpoints(ctx)
        if event in events or "*" in events
    ]
    ids = [_queue(ctx, event, payload, "endpoint", e).id for e in endpoints]
    if ids:
        _deliver_after_commit(ctx, ids)
    return len(ids)


def notify(
    ctx: TenantContext, event: str, payload: dict[str, Any], recipients: list[tuple[uuid.UUID, str]]
) -> int:
    """Queue `event` for recipients (id, url) — erasure and rectification notices."""
    ids = [_queue(ctx, event, payload, "recipient", rid).id for rid, _url in recipients]
    if ids:
        _deliver_after_commit(ctx, ids)
    return len(ids)


def send_to_url(ctx: TenantContext, event: str, url: str, jws_token: str) -> uuid.UUID:
    """Queue a self-signed document (a JWS) for a one-off URL, e.g. a portability transfer."""
    delivery_id = new_id()
    envelope = {"url": url, "body": jws_token}
    ctx.session.add(
        WebhookDelivery(
            tenant_id=ctx.tenant_id,
            id=delivery_id,
            event=event,
            target_kind="url",
            target_id=delivery_id,
            payload_sealed=seal(
                _aead(ctx.keystore, ctx.tenant_id), json.dumps(envelope).encode(), delivery_id.bytes
            ),
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
    )
    _deliver_after_commit(ctx, [delivery_id])
    return delivery_id


def _deliver_after_commit(ctx: TenantContext, ids: list[uuid.UUID]) -> None:
    bind = ctx.session.get_bind()
    keystore, tenant_id = ctx.keystore, ctx.tenant_id

    def send() -> None:
        with Session(bind=bind, expire_on_commit=False) as session:
            deliver(session, keystore, tenant_id=tenant_id, only=ids)
            session.commit()

    after_commit(ctx.session, send)


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class Target:
    url: str
    secret: str | None  # None: the body signs itself (a JWS sent to a URL)
    body: bytes
    content_type: str = "application/json"


def _target(session: Session, keystore: KeyStore, delivery: WebhookDelivery) -> Target | None:
    from pledge.rights.models import Recipient  # recipients live with rights requests

    body = payload(keystore, delivery)
    if delivery.target_kind == "url":  # `send_to_url`: the URL and the JWS travel sealed
        envelope = json.loads(body)
        return Target(envelope["url"], None, envelope["body"].encode(), "application/jose")
    if delivery.target_kind == "endpoint":
        endpoint = session.get(WebhookEndpoint, (delivery.tenant_id, delivery.target_id))
        if endpoint is None or not endpoint.active:
            return None
        return Target(
            endpoint.url,
            open_secret(keystore, delivery.tenant_id, endpoint.secret_sealed, endpoint.id),
            body,
        )
    recipient = session.get(Recipient, (delivery.tenant_id, delivery.target_id))
    if recipient is None or not recipient.webhook_url or recipient.secret_sealed is None:
        return None
    return Target(
        recipient.webhook_url,
        open_secret(keystore, delivery.tenant_id, recipient.secret_sealed, recipient.id),
        body,
    )


def deliver(
    session: Session,
    keystore: KeyStore,
    *,
    tenant_id: uuid.UUID | None = None,
    only: list[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Attempt the deliveries that are due; returns (delivered, still failing). The caller
    commits. Errors are recorded without personal data (status code or exception type).

    The deliveries are locked until the caller commits, and those another process holds are
    skipped (PostgreSQL; SQLite's writers take turns): the delivery right after a commit and
    a worker's cycle, or two workers, never post the same one twice. A process that dies
    mid-post leaves its deliveries as they were, due again."""
    moment = now or utcnow()
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        WebhookDelivery.next_attempt_at <= moment,
    )
    if tenant_id is not None:
        stmt = stmt.where(WebhookDelivery.tenant_id == tenant_id)
    if only is not None:
        stmt = stmt.where(WebhookDelivery.id.in_(only))
    delivered = failing = 0
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
        for delivery in session.scalars(
            stmt.order_by(WebhookDelivery.next_attempt_at)
            .limit(500)
            .with_for_update(skip_locked=True)
        ).all():
            try:
                target = _target(session, keystore, delivery)
            except SQLAlchemyError:
                raise  # the data store's trouble, not this delivery's: the batch stops
            except Exception as exc:
                # Undecryptable (damaged at rest), or its target's secret: raised, it would
                # roll back the batch's outcomes after their posts, posted again each cycle.
                # The class only: an exception's text may carry personal data.
                log.error("webhook delivery %s cannot be read: %s", delivery.id, type(exc).__name__)
                delivery.attempts += 1
                delivery.status = DeliveryStatus.FAILED.value
                delivery.last_error = f"unreadable: {type(exc).__name__}"[:200]
                failing += 1
                continue
            delivery.attempts += 1
            if target is None:
                delivery.status, delivery.last_error = DeliveryStatus.FAILED.value, "target gone"
                continue
            try:
                # Resolved here, and called at the address checked (`targets.pin`).
                pinned: targets.Pinned | None = targets.pin(target.url)
            except targets.BlockedTarget:
                delivery.status = DeliveryStatus.FAILED.value
                delivery.last_error = "blocked: not a public address"
                failing += 1
                continue
            except targets.Unresolved:  # tried again later, as a refused connection is
                pinned = None
                delivery.last_error = "host name does not resolve"
            ok = pinned is not None and _post(client, delivery, target, pinned, moment)
            if ok:
                delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED.value, moment
                delivered += 1
            elif delivery.attempts > len(BACKOFF):
                delivery.status = DeliveryStatus.FAILED.value
                failing += 1
            else:
                delivery.next_attempt_at = moment + BACKOFF[delivery.attempts - 1]
                failing += 1
    return delivered, failing


def _post(
    client: httpx.Client,
    delivery: WebhookDelivery,
    target: Target,
    pinned: targets.Pinned,
    moment: datetime,
) -> bool:
    """One attempt; its outcome recorded on the delivery (status code or error class)."""
    headers = {
        "host": pinned.host_header,
        "content-type": target.content_type,
        "Pledge-Event": delivery.event,
        "Pledge-Delivery": str(delivery.id),
    }
    if target.secret is not None:
        headers["Pledge-Signature"] = sign(target.secret, int(moment.timestamp()), target.body)
    try:
        response = client.post(
            pinned.url,
            content=target.body,
            headers=headers,
            extensions={"sni_hostname": pinned.server_name},
        )
    except httpx.HTTPError as exc:
        delivery.last_error = type(exc).__name__
        return False
    delivery.last_status = response.status_code
    ok = 200 <= response.status_code < 300
    delivery.last_error = None if ok else f"HTTP {response.status_code}"
    return ok
