"""Queueing, signing and delivering webhooks.

A delivery is a row written in the caller's transaction (sealed payload); it is attempted
right after the commit and retried with backoff by `pledge webhooks deliver` (run it from
cron or `pledge worker`). Once delivered, or failed for good, it keeps which event went,
when, to whom and how it went — not the payload, which may name a person (an erasure notice, a
portability transfer). One tied to a rights request goes with it at the 24-month purge, and
its failing for good is written on the request's timeline; one about no request is deleted
PLEDGE_WEBHOOK_KEEP_DAYS after (`purge_done`). An erasure cancels the person's transfer
still waiting to go (`cancel_for_erasure`). Each POST carries
`Pledge-Signature: t=<unix>,v1=<hex>` where the hex is HMAC-SHA256(secret, "<unix>.<body>")
— a receiver verifies it and rejects old stamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import ssl
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpcore2 as httpcore
import httpx2 as httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import CursorResult, Table, bindparam, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.db import after_commit, transaction, transaction_memo
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
# Claimed at a time: their posts, TIMEOUT_S each at worst, end well inside the lease.
CLAIM = 50
# How long a claimed delivery is not due for anyone else: a process that died mid-post
# leaves it to be tried again after this.
LEASE = timedelta(minutes=15)
# Time a post may still need once begun (the name's resolution, RESOLVE_TIMEOUT_S, then the
# post's POST_DEADLINE_S): no post starts closer than this to its lease's end.
LEASE_MARGIN = timedelta(minutes=1)
# A post's whole time (connect, TLS, send, answer), however each phase's TIMEOUT_S goes: a
# receiver answering a byte at a time never lets a per-read timeout fire, and would hold the
# post past its lease — and another process would post the same delivery.
POST_DEADLINE_S = 30.0
assert timedelta(seconds=POST_DEADLINE_S + targets.RESOLVE_TIMEOUT_S + TIMEOUT_S) < LEASE_MARGIN
_WRITE_CHUNK = 16_384  # the body is sent in pieces, the deadline checked between them
SYSTEM = Actor(ActorKind.SYSTEM, "webhooks")


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
    _endpoints_changed(ctx)
    audit.record(
        ctx,
        AuditEvent.WEBHOOK_ENDPOINT_ADDED,
        details={"endpoint_id": str(endpoint_id), "events": endpoint.events},
    )
    return endpoint, secret


def list_endpoints(ctx: TenantContext) -> list[WebhookEndpoint]:
    return list(
        ctx.session.scalars(for_tenant(select(WebhookEndpoint), WebhookEndpoint, ctx.tenant_id))
    )


def _endpoint(ctx: TenantContext, endpoint_id: str | uuid.UUID) -> WebhookEndpoint:
    """The tenant's endpoint, locked for the change; NotFound for another tenant's."""
    ctx.session.flush()  # the refresh below must not undo a change of this transaction's
    endpoint = get_in_tenant(
        ctx.session, WebhookEndpoint, ctx.tenant_id, endpoint_id, what="webhook endpoint"
    )
    ctx.session.refresh(endpoint, with_for_update=True)
    return endpoint


def _endpoints_changed(ctx: TenantContext) -> None:
    """The next event of this transaction reads the active endpoints again — written first:
    that read does not flush the session (`_active_endpoints`)."""
    ctx.session.flush()
    transaction_memo(ctx.session).pop(("webhook-endpoints", ctx.tenant_id), None)


def deactivate_endpoint(ctx: TenantContext, endpoint_id: str | uuid.UUID) -> WebhookEndpoint:
    """Switch an endpoint off: no event is queued for it any more, and those waiting (for
    their first post or a retry) fail for good now — their payload dropped, as a finished
    delivery's is. Switching it on again does not bring them back."""
    endpoint = _endpoint(ctx, endpoint_id)
    was_active = endpoint.active
    endpoint.active = False
    # Locked: a worker's outcome for a post under way finds it finished and leaves it.
    waiting = list(
        ctx.session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == ctx.tenant_id,
                WebhookDelivery.target_kind == "endpoint",
                WebhookDelivery.target_id == endpoint.id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
            .with_for_update()
        )
    )
    # Not on the requests' timelines (`_on_requests`): the tenant's own integration, which
    # staff have just switched off, is nothing for them to act on about a request.
    for delivery in waiting:
        _finish(delivery, DeliveryStatus.FAILED)
        delivery.last_error = "endpoint deactivated"
    _endpoints_changed(ctx)
    if was_active or waiting:
        audit.record(
            ctx,
            AuditEvent.WEBHOOK_ENDPOINT_DEACTIVATED,
            details={"endpoint_id": str(endpoint.id), "deliveries_dropped": len(waiting)},
        )
    return endpoint


def activate_endpoint(ctx: TenantContext, endpoint_id: str | uuid.UUID) -> WebhookEndpoint:
    """Switch an endpoint on again: the events from now on are queued for it."""
    endpoint = _endpoint(ctx, endpoint_id)
    if not endpoint.active:
        endpoint.active = True
        _endpoints_changed(ctx)
        audit.record(
            ctx, AuditEvent.WEBHOOK_ENDPOINT_ACTIVATED, details={"endpoint_id": str(endpoint.id)}
        )
    return endpoint


def rotate_secret(ctx: TenantContext, endpoint_id: str | uuid.UUID) -> tuple[WebhookEndpoint, str]:
    """A new signing secret for the endpoint (shown once); the old one signs nothing more —
    deliveries waiting for a retry are signed when they are posted, so with the new one."""
    endpoint = _endpoint(ctx, endpoint_id)
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.secret_sealed = seal_secret(ctx, secret, endpoint.id)
    audit.record(ctx, AuditEvent.WEBHOOK_SECRET_ROTATED, details={"endpoint_id": str(endpoint.id)})
    return endpoint, secret


# ---------------------------------------------------------------------------------------------
# Queueing


def _queue(
    ctx: TenantContext,
    event: str,
    payload: dict[str, Any],
    kind: str,
    target: uuid.UUID,
    request_id: uuid.UUID | None = None,
) -> WebhookDelivery:
    delivery_id = new_id()
    body = {
        "id": str(delivery_id),
        "event": event,
        "tenant": ctx.settings.slug,
        "created_at": utcnow().isoformat(),
        "data": payload,
    }
    delivery = WebhookDelivery(
        tenant_id=ctx.tenant_id,
        id=delivery_id,
        event=event,
        target_kind=kind,
        target_id=target,
        request_id=request_id,
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
    """The delivery's body (JSON), decrypted; ValueError once it is finished (not kept)."""
    if delivery.payload_sealed is None:
        raise ValueError("a finished delivery keeps no payload")
    return unseal(_aead(keystore, delivery.tenant_id), delivery.payload_sealed, delivery.id.bytes)


def _finish(delivery: WebhookDelivery, status: DeliveryStatus) -> None:
    """Delivered, or failed for good: what was sent is not kept (it may name a person, and
    is sealed with the tenant's key, not theirs — an erasure would not reach it)."""
    delivery.status = status.value
    delivery.payload_sealed = None


def purge_requests(ctx: TenantContext, request_ids: list[uuid.UUID]) -> int:
    """Delete the deliveries of these rights requests (purged 24 months after they closed)."""
    if not request_ids:
        return 0
    gone = ctx.session.execute(
        delete(WebhookDelivery)
        .where(
            WebhookDelivery.tenant_id == ctx.tenant_id,
            WebhookDelivery.request_id.in_(request_ids),
        )
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], gone).rowcount


# Erasure notices and corrections to recipients, and the tenant's state changes: what a
# person's erasure leaves to go when it cancels their requests' deliveries
# (`cancel_for_erasure`). Every other kind is cancelled, a new one too until it is named here.
OUTLIVE_ERASURE = frozenset(
    {
        # Ids, reference, type and states only: no personal data, and the integration learns
        # of the erasure request's own course from them.
        "request.state_changed",
        # GDPR Art. 17(2)/19: how the erasure reaches the recipients — an earlier one still
        # retrying is this erasure's too. A correction's notice names the old identifiers a
        # recipient may still hold the person under, which the erasure notice (naming those
        # on file now) would not find. Both name only identifiers, and drop them once sent.
        "subject.erasure_requested",
        "subject.rectified",
    }
)
ERASED = "cancelled: the person was erased"


def cancel_for_erasure(ctx: TenantContext, subject_id: uuid.UUID) -> int:
    """In the erasure's transaction: the deliveries still waiting about the person's rights
    requests that carry their data — a portability transfer, their whole copy — fail for good
    now, their payload dropped: sealed under the tenant's key, not the person's, the
    erasure's shredding would not reach them, and they would still go after it. Each is
    written on its request's timeline (`workflow.delivery_failed`): staff and the person were
    told the copy is being sent. A post already under way (claimed before this committed)
    cannot be called back. How many were cancelled.

    The lines are written once the erasure has committed, each in a transaction of its own
    (as the worker's, `_on_requests`; a failure there loses the line, never the
    cancellation): the erasure may hold the audit chain's head already (its request started,
    what it reached audited), and on PostgreSQL a line waits for a member of staff holding
    its request, who goes on to the head — each waited for the other (a deadlock)."""
    from pledge.rights.models import RightsRequest

    theirs = for_tenant(select(RightsRequest.id), RightsRequest, ctx.tenant_id).where(
        RightsRequest.subject_id == subject_id
    )
    # Locked: a worker's outcome for a post under way finds it finished and leaves it.
    waiting = list(
        ctx.session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == ctx.tenant_id,
                WebhookDelivery.request_id.in_(theirs),
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.event.not_in(OUTLIVE_ERASURE),
            )
            .with_for_update()
        )
    )
    for delivery in waiting:
        _finish(delivery, DeliveryStatus.FAILED)
        delivery.last_error = ERASED
    cancelled = _to_tell(waiting)
    if cancelled:
        sessions = sessionmaker(bind=ctx.session.get_bind(), expire_on_commit=False)
        keystore, actor = ctx.keystore, ctx.actor

        def tell() -> None:
            _on_requests(sessions, keystore, cancelled, actor)

        after_commit(ctx.session, tell)
    return len(waiting)


def purge_done(sessions: sessionmaker[Session], done_before: datetime) -> int:
    """Delete the deliveries about no rights request finished (delivered, or failed for
    good) before `done_before` (PLEDGE_WEBHOOK_KEEP_DAYS ago), across tenants as they are
    sent: their payload is gone already, but what went to whom and when is no archive to
    keep for ever. Those about a request go with its record (24 months after it closed,
    `purge_requests`); one waiting for its retry is never deleted here. A failed one's last
    lease or scheduled retry stands for when it finished (the row keeps no such time). How
    many were deleted."""
    done = (DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value)
    stmt = delete(WebhookDelivery).where(
        WebhookDelivery.status.in_(done),
        WebhookDelivery.next_attempt_at < done_before,  # `ix_webhook_deliveries_due`
        WebhookDelivery.created_at < done_before,
        WebhookDelivery.request_id.is_(None),
        WebhookDelivery.delivered_at.is_(None) | (WebhookDelivery.delivered_at < done_before),
    )
    with transaction(sessions) as session:
        gone = session.execute(stmt.execution_options(synchronize_session=False))
        return int(cast(CursorResult[Any], gone).rowcount or 0)


_ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
# Prebuilt (every state change of a request asks, in each of its transactions): the ids and
# events alone, no endpoint loaded. On the session's connection, with no autoflush: the
# endpoints' writers flush their change themselves (`_endpoints_changed`).
_ACTIVE_ENDPOINTS = select(_ENDPOINTS.c.id, _ENDPOINTS.c.events).where(
    _ENDPOINTS.c.tenant_id == bindparam("tenant_id"), _ENDPOINTS.c.active.is_(True)
)


def _active_endpoints(ctx: TenantContext) -> list[tuple[uuid.UUID, frozenset[str]]]:
    """(id, events) of the tenant's active endpoints, read once per transaction: a request
    emits an event at each of its transitions. Adding, activating or deactivating an
    endpoint drops it (`_endpoints_changed`)."""
    memo = transaction_memo(ctx.session)
    key = ("webhook-endpoints", ctx.tenant_id)
    found: list[tuple[uuid.UUID, frozenset[str]]] | None = memo.get(key)
    if found is None:
        rows = ctx.session.connection().execute(_ACTIVE_ENDPOINTS, {"tenant_id": ctx.tenant_id})
        found = [(endpoint_id, frozenset(events)) for endpoint_id, events in rows]
        memo[key] = found
    return found


def emit(
    ctx: TenantContext,
    event: str,
    payload: dict[str, Any],
    *,
    request_id: uuid.UUID | None = None,
) -> int:
    """Queue `event` for every active endpoint subscribed to it; sent after commit.
    `request_id`: the rights request it is about (purged with it)."""
    endpoints = [
        endpoint_id
        for endpoint_id, events in _active_endpoints(ctx)
        if event in events or "*" in events
    ]
    ids = [_queue(ctx, event, payload, "endpoint", e, request_id).id for e in endpoints]
    if ids:
        _deliver_after_commit(ctx, ids)
    return len(ids)


def notify(
    ctx: TenantContext,
    event: str,
    payload: dict[str, Any],
    recipients: list[tuple[uuid.UUID, str]],
    *,
    request_id: uuid.UUID | None = None,
) -> int:
    """Queue `event` for recipients (id, url) — erasure and rectification notices."""
    ids = [_queue(ctx, event, payload, "recipient", rid, request_id).id for rid, _url in recipients]
    if ids:
        _deliver_after_commit(ctx, ids)
    return len(ids)


def send_to_url(
    ctx: TenantContext,
    event: str,
    url: str,
    jws_token: str,
    *,
    request_id: uuid.UUID | None = None,
) -> uuid.UUID:
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
            request_id=request_id,
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
    sessions = sessionmaker(bind=ctx.session.get_bind(), expire_on_commit=False)
    keystore, tenant_id = ctx.keystore, ctx.tenant_id

    def send() -> None:
        deliver(sessions, keystore, tenant_id=tenant_id, only=ids, failing_targets=False)

    after_commit(ctx.session, send, lane="webhooks")


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


@dataclass(frozen=True)
class Claimed:
    """A delivery this process has claimed, with what its post needs."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    event: str
    attempts: int  # its attempts with this one: the claim is still ours while they match
    target_kind: str
    target_id: uuid.UUID
    target: Target


@dataclass(frozen=True)
class GivenUp:
    """A delivery about a rights request that failed for good, as it stood then."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    request_id: uuid.UUID
    event: str
    attempts: int
    last_error: str | None
    target_kind: str
    target_id: uuid.UUID


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False  # no retry (the target is not a public address)


def deliver(
    sessions: sessionmaker[Session],
    keystore: KeyStore,
    *,
    tenant_id: uuid.UUID | None = None,
    only: list[uuid.UUID] | None = None,
    now: datetime | None = None,
    limit: int = CLAIM * 10,
    failing_targets: bool = True,
) -> tuple[int, int]:
    """Attempt the deliveries that are due, at most `limit`; returns (delivered, still
    failing). Errors are recorded without personal data (status code or exception type).

    `failing_targets=False` (the delivery right after a commit, which the person who acted
    waits for): not to a target with a failed delivery waiting for its retry — a receiver
    that is down would hold every page and form that emits an event for TIMEOUT_S; the
    worker's next cycle posts them, in turn with the retries.

    No transaction is open while a receiver is called — on SQLite an open writer stops every
    other writer, and a dead endpoint takes TIMEOUT_S a post. Deliveries are claimed CLAIM at
    a time in a short transaction (their next attempt moved a LEASE ahead; those another
    process holds are skipped), posted, then their outcomes written in a second one. Two
    workers, or the delivery right after a commit beside a worker's cycle, never post the
    same delivery twice; a process that dies mid-post leaves its claims due again once their
    lease is over (at least once). A call runs for as long as its posts take: each batch's
    lease, signatures and outcomes are dated when they happen, and a claim whose lease is
    nearly over before its turn comes is left for the next claimer, not posted. `now`
    (tests): the call's start, the clock running on from it."""
    started = time.monotonic()

    def clock() -> datetime:
        return utcnow() if now is None else now + timedelta(seconds=time.monotonic() - started)

    moment = clock()  # due by the call's start: what falls due while it runs waits a cycle
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        WebhookDelivery.next_attempt_at <= moment,
    )
    if tenant_id is not None:
        stmt = stmt.where(WebhookDelivery.tenant_id == tenant_id)
    if only is not None:
        stmt = stmt.where(WebhookDelivery.id.in_(only))
    if not failing_targets:
        failed = aliased(WebhookDelivery)
        stmt = stmt.where(
            ~select(failed.id)
            .where(
                failed.tenant_id == WebhookDelivery.tenant_id,
                failed.status == DeliveryStatus.PENDING.value,
                failed.last_error.is_not(None),
                failed.target_kind == WebhookDelivery.target_kind,
                failed.target_id == WebhookDelivery.target_id,
            )
            .exists()
        )
    stmt = stmt.order_by(WebhookDelivery.next_attempt_at).with_for_update(skip_locked=True)
    delivered = failing = tried = 0
    verify = httpx.create_ssl_context()  # read once; each post has its own connection
    while tried < limit:
        with transaction(sessions) as session:
            rows = session.scalars(stmt.limit(min(CLAIM, limit - tried))).all()
            claimed_at = clock()
            claimed, unusable, given_up = _claim(session, keystore, rows, claimed_at)
        _on_requests(sessions, keystore, given_up)
        tried += len(rows)
        failing += unusable
        if not rows:
            break
        outcomes: list[tuple[Claimed, Outcome]] = []
        for claim in claimed:
            if clock() > claimed_at + LEASE - LEASE_MARGIN:
                break  # the rest may be another process's before their posts end
            try:
                outcome = _attempt(verify, claim, clock())
            except Exception as exc:  # this post's trouble: the batch's outcomes stand
                log.error("webhook delivery %s failed: %s", claim.id, type(exc).__name__)
                outcome = Outcome(ok=False, error=type(exc).__name__)
            outcomes.append((claim, outcome))
        with transaction(sessions) as session:
            ok, bad, given_up = _record(session, outcomes, clock())
        _on_requests(sessions, keystore, given_up)
        delivered, failing = delivered + ok, failing + bad
    return delivered, failing


def _claim(
    session: Session, keystore: KeyStore, rows: Sequence[WebhookDelivery], moment: datetime
) -> tuple[list[Claimed], int, list[GivenUp]]:
    """Count the attempt and take the lease on each row; those that cannot be sent fail here.
    Returns the claims, how many failed for good, and those of them to tell a request of."""
    claimed: list[Claimed] = []
    unusable = 0
    given_up: list[WebhookDelivery] = []
    for delivery in rows:
        delivery.attempts += 1
        try:
            target = _target(session, keystore, delivery)
        except SQLAlchemyError:
            raise  # the data store's trouble, not this delivery's: nothing is claimed
        except Exception as exc:
            # Undecryptable (damaged at rest), or its target's secret: raised, it would undo
            # the batch's claims, and fail the same way each cycle. The class only: an
            # exception's text may carry personal data.
            log.error("webhook delivery %s cannot be read: %s", delivery.id, type(exc).__name__)
            _finish(delivery, DeliveryStatus.FAILED)
            delivery.last_error = f"unreadable: {type(exc).__name__}"[:200]
            given_up.append(delivery)
            unusable += 1
            continue
        if target is None:
            _finish(delivery, DeliveryStatus.FAILED)
            delivery.last_error = "target gone"
            given_up.append(delivery)
            continue
        # Leased: not a failure waiting for its retry while it is being tried (the
        # after-commit delivery's test, and a success's call to the target's backlog).
        delivery.next_attempt_at, delivery.last_error = moment + LEASE, None
        claimed.append(
            Claimed(
                delivery.tenant_id,
                delivery.id,
                delivery.event,
                delivery.attempts,
                delivery.target_kind,
                delivery.target_id,
                target,
            )
        )
    return claimed, unusable, _to_tell(given_up)


def _to_tell(given_up: Sequence[WebhookDelivery]) -> list[GivenUp]:
    """Of the deliveries failed for good, those a rights request must show: a portability
    transfer or a recipient's erasure or rectification notice — for staff to act on (send it
    another way, tell the person). Not the tenant's own endpoint's copy of a state change:
    an integration down for a day would write on every request's timeline."""
    return [
        GivenUp(
            d.tenant_id,
            d.id,
            d.request_id,
            d.event,
            d.attempts,
            d.last_error,
            d.target_kind,
            d.target_id,
        )
        for d in given_up
        if d.request_id is not None and d.target_kind in ("url", "recipient")
    ]


def _on_requests(
    sessions: sessionmaker[Session],
    keystore: KeyStore,
    given_up: Sequence[GivenUp],
    actor: Actor = SYSTEM,
) -> None:
    """On each request's timeline, with its audit entry (by `actor`): in a transaction of its
    own, after the deliveries' (which hold row locks of several tenants and must not wait for
    one tenant's audit chain). A failure here loses the note, never the outcomes."""
    from pledge.rights import workflow  # rights requests sit above webhooks

    for failed in given_up:
        try:
            with transaction(sessions) as session:
                ctx = TenantContext.lazy(session, keystore, failed.tenant_id, actor)
                workflow.delivery_failed(ctx, failed)
        except SQLAlchemyError as exc:
            log.error("webhook delivery %s: request not told: %s", failed.id, type(exc).__name__)


def _attempt(verify: ssl.SSLContext, claim: Claimed, moment: datetime) -> Outcome:
    """One post, outside any transaction (the address is resolved and checked here)."""
    try:
        # Resolved here, and called at the address checked (`targets.pin`).
        pinned = targets.pin(claim.target.url)
    except targets.BlockedTarget:
        return Outcome(ok=False, error="blocked: not a public address", final=True)
    except targets.Unresolved:  # tried again later, as a refused connection is
        return Outcome(ok=False, error="host name does not resolve")
    # A client, and so a connection, for this post only: a pool keyed by the address would
    # hand a second name at the same address the connection (SNI, certificate) opened for
    # the first — and a host routing by server name, its payload to the first's receiver.
    with _client(verify, time.monotonic() + POST_DEADLINE_S) as client:
        return _post(client, claim, pinned, moment)


def _client(verify: ssl.SSLContext, deadline: float) -> httpx.Client:
    """A client whose connection ends every read, write and handshake by `deadline`."""
    transport = httpx.HTTPTransport(verify=verify)
    # httpx takes no network backend; its pool does (the transport only passes requests).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=verify,
        max_keepalive_connections=0,
        network_backend=_DeadlineBackend(deadline),
    )
    return httpx.Client(transport=transport, timeout=TIMEOUT_S, follow_redirects=False)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation waits at most its own timeout and what is left
    until the deadline; none starts after it."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream, self._deadline = stream, deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the post took longer than POST_DEADLINE_S")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_CHUNK):
            piece = buffer[start : start + _WRITE_CHUNK]
            self._stream.write(piece, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        try:
            left = self._left(timeout, httpcore.ConnectTimeout)
        except httpcore.ConnectTimeout:
            self._stream.close()  # httpcore does not close a stream whose TLS never began
            raise
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the post took longer than POST_DEADLINE_S")
        stream = self._backend.connect_tcp(
            host,
            port,
            left if timeout is None else min(timeout, left),
            local_address,
            socket_options,
        )
        return _DeadlineStream(stream, self._deadline)


def _record(
    session: Session,
    outcomes: Sequence[tuple[Claimed, Outcome]],
    moment: datetime,
) -> tuple[int, int, list[GivenUp]]:
    """Write the outcomes of claimed deliveries; (delivered, still failing). A delivery
    whose lease ran out and that another process claimed since (its attempts moved on) is
    theirs: left as it is. A target that took a post is up: its failed deliveries waiting
    for their retry (hours away, after several failures) are due at once."""
    delivered = failing = 0
    up: set[tuple[uuid.UUID, str, uuid.UUID]] = set()
    given_up: list[WebhookDelivery] = []
    for claim, outcome in outcomes:
        delivery = session.get(WebhookDelivery, (claim.tenant_id, claim.id), with_for_update=True)
        if (
            delivery is None
            or delivery.status != DeliveryStatus.PENDING.value
            or delivery.attempts != claim.attempts
        ):
            continue
        delivery.last_status, delivery.last_error = outcome.status_code, outcome.error
        if outcome.ok:
            _finish(delivery, DeliveryStatus.DELIVERED)
            delivery.delivered_at = moment
            delivered += 1
            up.add((claim.tenant_id, claim.target_kind, claim.target_id))
        elif outcome.final or delivery.attempts > len(BACKOFF):
            _finish(delivery, DeliveryStatus.FAILED)
            given_up.append(delivery)
            failing += 1
        else:
            delivery.next_attempt_at = moment + BACKOFF[delivery.attempts - 1]
            failing += 1
    for tenant_id, kind, target_id in up:
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == tenant_id,
                WebhookDelivery.target_kind == kind,
                WebhookDelivery.target_id == target_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.last_error.is_not(None),  # waiting for a retry, not leased
                WebhookDelivery.next_attempt_at > moment,
            )
            .values(next_attempt_at=moment)
            .execution_options(synchronize_session=False)
        )
    return delivered, failing, _to_tell(given_up)


def _post(
    client: httpx.Client, claim: Claimed, pinned: targets.Pinned, moment: datetime
) -> Outcome:
    """One attempt; its outcome is the status code or the error's class."""
    target = claim.target
    headers = {
        "host": pinned.host_header,
        "content-type": target.content_type,
        "Pledge-Event": claim.event,
        "Pledge-Delivery": str(claim.id),
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
        return Outcome(ok=False, error=type(exc).__name__)
    ok = 200 <= response.status_code < 300
    return Outcome(ok, response.status_code, None if ok else f"HTTP {response.status_code}")
