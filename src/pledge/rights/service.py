"""Rights requests: intake, the request and its timeline, the clock, the queue.

Every transition is a row in the request's timeline and an audit entry, in the caller's
transaction; a webhook for integrators leaves after commit. What identifies the requester is
sealed on the request; the row keeps the moments the clock needs. The state machine and the
actions on a request (pause, extension, appeal, fee) are in `transitions`.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Select, Table, bindparam, func, or_, select, true

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.db import bulk_insert, transaction_memo
from pledge.core.errors import InvalidInput, NotFound
from pledge.core.ids import new_id
from pledge.crypto.aead import blind_index, seal, unseal
from pledge.rights import clock
from pledge.rights.models import (
    OPEN_STATES,
    RequestChannel,
    RequestEvent,
    RequestPause,
    RequestState,
    RequestType,
    RightsRequest,
)
from pledge.subjects.identity import InvalidIdentity, normalise_email
from pledge.tenants.jurisdictions import Jurisdiction

S = RequestState

# Same-type requests from one address in 12 months above which a human decides, where the
# law sets no number (GDPR: "manifestly unfounded or excessive", Art. 12(5)).
EXCESSIVE_WITHOUT_LIMIT = 3
# Opt-outs need no verification (CCPA 11 CCR 7026(c)); withdrawing consent must be as easy
# as giving it (GDPR Art. 7(3)). An objection is confirmed by e-mail: it stops a use of the
# person's data that staff may otherwise keep (legitimate interests), and a stranger could
# type their address — its direct-marketing part takes effect on receipt all the same
# (`workflow.receive`: stopping marketing is always allowed, Art. 21(3)).
NO_VERIFICATION = frozenset(
    {
        RequestType.OPT_OUT_SALE,
        RequestType.LIMIT_SENSITIVE,
        RequestType.WITHDRAW_CONSENT,
    }
)
# Requests to stop a use of the data: free, never counted towards the law's free requests.
STOPPING = NO_VERIFICATION | {RequestType.OBJECTION}


AGENT_NEEDS = "an authorized agent must give their name, e-mail and signed permission"


@dataclass(frozen=True)
class Requester:
    email: str
    name: str = ""
    # For an authorized agent (CCPA 11 CCR 7063): who acts, and their signed permission.
    agent_name: str = ""
    agent_email: str = ""
    agent_permission: str = ""  # reference or text of the signed permission


@dataclass(frozen=True)
class RequestInput:
    type: str
    requester: Requester
    jurisdiction: str | None = None
    channel: str = RequestChannel.PRIVACY_CENTER.value
    # What exactly is asked: pieces, proposed values, purposes, a note. Sealed.
    details: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# A memo for one transaction


def tx_memo(ctx: TenantContext) -> dict[Any, Any]:
    """`core.db.transaction_memo` of the context's session: a request's pauses, read once
    per transaction (this package is their only writer)."""
    return transaction_memo(ctx.session)


# ---------------------------------------------------------------------------------------------
# Sealing the requester's details


def _aead(ctx: TenantContext) -> AESGCM:
    return AESGCM(ctx.keystore.derived_key(ctx.tenant_id, "rights-request"))


def _aad(ctx: TenantContext, request_id: uuid.UUID) -> bytes:
    return b"pledge:rights-request:v1|" + ctx.tenant_id.bytes + request_id.bytes


def private_part(ctx: TenantContext, request: RightsRequest) -> dict[str, Any]:
    """The requester's contact, agent and request details (decrypted)."""
    doc: dict[str, Any] = json.loads(unseal(_aead(ctx), request.sealed, _aad(ctx, request.id)))
    return doc


def _seal_private(ctx: TenantContext, request_id: uuid.UUID, doc: dict[str, Any]) -> bytes:
    return seal(_aead(ctx), json.dumps(doc, ensure_ascii=False).encode(), _aad(ctx, request_id))


def update_private(ctx: TenantContext, request: RightsRequest, **changes: Any) -> None:
    doc = private_part(ctx, request)
    doc.update(changes)
    request.sealed = _seal_private(ctx, request.id, doc)


def contact_index(ctx: TenantContext, email: str) -> bytes:
    key = ctx.keystore.derived_key(ctx.tenant_id, "blind-index")
    return blind_index(key, f"request-email:{email}")


# ---------------------------------------------------------------------------------------------
# Intake


def resolve_jurisdiction(ctx: TenantContext, value: str | None) -> str:
    """The jurisdiction named (the tenant's first when none is); InvalidInput if unknown."""
    chosen = value or (ctx.settings.jurisdictions[0] if ctx.settings.jurisdictions else "EU")
    if chosen not in Jurisdiction._value2member_map_:
        raise InvalidInput(f"unknown jurisdiction {chosen[:10]!r}")
    return chosen


def _reference(request_id: uuid.UUID) -> str:
    # The random part of a UUIDv7, readable over the phone.
    return "R-" + request_id.hex[-8:].upper()


# Not verified yet, and may still be: counted at intake until it ends unverified.
NOT_YET_VERIFIED = (S.RECEIVED.value, S.AWAITING_VERIFICATION.value)


_REQUESTS = cast(Table, RightsRequest.__table__)


@lru_cache(maxsize=4)
def _counted_before(*, verified_only: bool, excluding: bool) -> Select[tuple[bytes, str, int]]:
    """The count `repetitive_flags` makes, per address and type, built once per variant
    (intake, and as a request is verified): asked at every request received and verified."""
    r = _REQUESTS.c
    return (
        select(r.contact_index, r.type, func.count())
        .where(
            r.tenant_id == bindparam("tenant_id"),
            r.contact_index.in_(bindparam("indexes", expanding=True)),
            r.type.in_(bindparam("types", expanding=True)),
            r.received_at > bindparam("since"),
            r.id != bindparam("excluding") if excluding else true(),
            # As a request is verified, only those received before it (`now`: its receipt):
            # the first of two stays the free one, whichever is verified first.
            r.received_at < bindparam("now") if verified_only else true(),
            # A request never verified was never answered: one closed unverified, or a
            # stranger's with the person's address, uses up none of their free ones.
            r.verified_at.is_not(None)
            if verified_only
            else or_(r.verified_at.is_not(None), r.state.in_(NOT_YET_VERIFIED)),
        )
        .group_by(r.contact_index, r.type)
    )


def repetitive_flags(
    ctx: TenantContext,
    asked: Sequence[tuple[bytes, Prepared]],
    now: datetime,
    *,
    verified_only: bool = False,
    excluding: uuid.UUID | None = None,
) -> list[bool]:
    """For requests received together (contact index, input), in order: whether each is
    repetitive — counting the same address's requests of the 12 months before and those
    ahead of it in `asked`. The law's free requests count together (e.g. California: two
    access or portability requests a year); elsewhere requests of the same type. Counted are
    the verified ones and, at intake, those still to be verified (a request ended unverified
    never counts); `verified_only` (as a request is verified, `transitions`, with `now` its
    receipt) counts the verified received before it, `excluding` the request itself."""
    rules = [clock.rule_for(p.jurisdiction, p.type.value) for _, p in asked]
    counted = [
        frozenset(r.free_request_types if p.type.value in r.free_request_types else {p.type.value})
        for (_, p), r in zip(asked, rules, strict=True)
    ]
    counts: Counter[tuple[bytes, str]] = Counter()
    indexes = list(dict.fromkeys(index for index, _ in asked))
    types = sorted(frozenset().union(*counted)) if counted else []
    stmt = _counted_before(verified_only=verified_only, excluding=excluding is not None)
    # A Core statement does not autoflush: requests changed in this transaction count too.
    if ctx.session.autoflush:
        ctx.session.flush()
    for start in range(0, len(indexes), 400):
        rows = ctx.session.execute(
            stmt,
            {
                "tenant_id": ctx.tenant_id,
                "indexes": indexes[start : start + 400],
                "types": types,
                "since": now - timedelta(days=365),
                "now": now,
                "excluding": excluding,
            },
        )
        for index, rtype, n in rows:
            counts[(index, rtype)] += n
    flags: list[bool] = []
    for (index, p), rule, kinds in zip(asked, rules, counted, strict=True):
        earlier = sum(counts[(index, t)] for t in kinds)
        # The law's number of free requests counts the types it names (California: access
        # and portability), or every type where it names none — but never a request to stop
        # (an opt-out, a withdrawal, an objection): those are free and answered at once.
        named = p.type not in STOPPING and (
            not rule.free_request_types or p.type.value in rule.free_request_types
        )
        limit = (rule.free_requests_per_12_months if named else 0) or EXCESSIVE_WITHOUT_LIMIT
        flags.append(earlier >= limit)
        counts[(index, p.type.value)] += 1
    return flags


@dataclass(frozen=True)
class Prepared:
    """A request input, validated: what `new_request` builds the row from."""

    type: RequestType
    channel: RequestChannel
    jurisdiction: str
    email: str
    agent: bool
    private: dict[str, Any]  # what is sealed on the request


def agent_address(value: str) -> str:
    """An authorized agent's e-mail address, normalised; InvalidInput if it is not one."""
    try:
        return normalise_email(value)
    except InvalidIdentity:
        raise InvalidInput("the agent's e-mail address is not valid") from None


def prepare(ctx: TenantContext, data: RequestInput) -> Prepared:
    """Validate a request input (InvalidInput says what is wrong); nothing is written."""
    try:
        rtype = RequestType(data.type)
        channel = RequestChannel(data.channel)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    jurisdiction = resolve_jurisdiction(ctx, data.jurisdiction)
    try:
        email = normalise_email(data.requester.email)
    except InvalidIdentity:
        raise InvalidInput("the requester's e-mail address is not valid") from None
    agent = bool(data.requester.agent_name or data.requester.agent_email)
    if channel is RequestChannel.AUTHORIZED_AGENT and not (
        agent and data.requester.agent_permission
    ):
        raise InvalidInput(AGENT_NEEDS)
    # The letters go to the agent: refuse a bad address now, not when the first is queued.
    agent_email = agent_address(data.requester.agent_email) if data.requester.agent_email else ""
    private = {
        "email": email,
        "name": data.requester.name.strip()[:200],
        "agent": {
            "name": data.requester.agent_name[:200],
            "email": agent_email,
            "permission": data.requester.agent_permission[:5000],
        }
        if agent
        else None,
        "details": check_details(data.details),
    }
    return Prepared(rtype, channel, jurisdiction, email, agent, private)


def check_details(details: dict[str, Any]) -> dict[str, Any]:
    """The parts of `details` the fulfilment reads, checked now (a string where a list of
    purposes belongs would otherwise be read letter by letter when staff fulfil it):
    `proposed` {field: value} (a rectification), `purposes` [slug] (an objection or a
    withdrawal), `note` (text). Other keys are kept as given."""
    if not isinstance(details, dict):
        raise InvalidInput("details must be an object")
    proposed = details.get("proposed")
    if proposed is not None:
        if not isinstance(proposed, dict) or not all(
            isinstance(k, str) and 0 < len(k) <= 64 and isinstance(v, str) and len(v) <= 10_000
            for k, v in proposed.items()
        ):
            raise InvalidInput("details.proposed is an object of field names and new values")
        if len(proposed) > 200:
            raise InvalidInput("details.proposed has more than 200 fields")
    purposes = details.get("purposes")
    if purposes is not None and (
        not isinstance(purposes, list)
        or len(purposes) > 200
        or not all(isinstance(p, str) and 0 < len(p) <= 60 for p in purposes)
    ):
        raise InvalidInput("details.purposes is a list of purpose slugs")
    note = details.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 5_000):
        raise InvalidInput("details.note is a text of at most 5,000 characters")
    return details


def new_request(
    ctx: TenantContext, prepared: Prepared, index: bytes, *, now: datetime, repetitive: bool
) -> RightsRequest:
    """The request row, received `now`, with the requester sealed (not yet in the session)."""
    request_id = new_id()
    return RightsRequest(
        tenant_id=ctx.tenant_id,
        id=request_id,
        reference=_reference(request_id),
        type=prepared.type.value,
        jurisdiction=prepared.jurisdiction,
        channel=prepared.channel.value,
        requester_kind="agent" if prepared.agent else "subject",
        state=S.RECEIVED.value,
        contact_index=index,
        sealed=_seal_private(ctx, request_id, prepared.private),
        received_at=now,
        repetitive=repetitive,
    )


def received_details(request: RightsRequest) -> dict[str, Any]:
    """The details of a request's "received" event."""
    return {
        "type": request.type,
        "jurisdiction": request.jurisdiction,
        "channel": request.channel,
        "repetitive": request.repetitive,
    }


def submit(
    ctx: TenantContext, data: RequestInput, *, pending: list[audit.PendingEntry] | None = None
) -> RightsRequest:
    """Receive a request: validate, seal what identifies the requester, start the clock.
    With `pending`, the audit entry is added to that list for the caller to record (in this
    transaction, in order, with the entries that follow it)."""
    prepared = prepare(ctx, data)
    now = utcnow()
    index = contact_index(ctx, prepared.email)
    repetitive = repetitive_flags(ctx, [(index, prepared)], now)[0]
    request = new_request(ctx, prepared, index, now=now, repetitive=repetitive)
    ctx.session.add(request)
    ctx.session.flush()
    tx_memo(ctx)[("pauses", request.id)] = []  # a new request has none
    _event(ctx, request, "received", None, S.RECEIVED, received_details(request), pending=pending)
    refresh_due(ctx, request)
    return request


# ---------------------------------------------------------------------------------------------
# The request, its requester and its timeline (the state machine is in `transitions`)


def get_request(ctx: TenantContext, request_id: uuid.UUID | str) -> RightsRequest:
    return get_in_tenant(ctx.session, RightsRequest, ctx.tenant_id, request_id, what="request")


def get_by_reference(
    ctx: TenantContext, reference: str, *, state: RequestState | None = None
) -> RightsRequest:
    """The newest request with this reference (what the requester quotes), in `state` if
    given. References are short: two requests may share one, the state narrows it down."""
    stmt = for_tenant(select(RightsRequest), RightsRequest, ctx.tenant_id).where(
        RightsRequest.reference == reference.strip().upper()[:16]
    )
    if state is not None:
        stmt = stmt.where(RightsRequest.state == state.value)
    found = ctx.session.scalars(stmt.order_by(RightsRequest.received_at.desc()).limit(1)).first()
    if found is None:
        raise NotFound("no such request")
    return found


def read_requester(ctx: TenantContext, request: RightsRequest, *, via: str) -> dict[str, Any]:
    """The requester's contact, agent and request details, decrypted for a staff member to
    read: a read of personal data, audited like a subject view."""
    doc = private_part(ctx, request)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_VIEWED,
        subject_id=request.subject_id,
        details={"request_id": str(request.id), "part": "requester", "via": via},
    )
    return doc


def event_parts(
    ctx: TenantContext,
    request: RightsRequest,
    kind: str,
    before: RequestState | None,
    after: RequestState | None,
    details: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], audit.PendingEntry]:
    """A timeline row (the `RequestEvent` columns) and its audit entry, for the caller to
    insert and record."""
    info = details or {}
    row = {
        "tenant_id": ctx.tenant_id,
        "id": new_id(),
        "request_id": request.id,
        "at": utcnow(),
        "kind": kind,
        "from_state": before.value if before else None,
        "to_state": after.value if after else None,
        "actor_kind": ctx.actor.kind.value,
        "actor_id": ctx.actor.id,
        "details": info,
    }
    entry = audit.PendingEntry(
        AuditEvent.RIGHTS_REQUEST_CHANGED,
        request.subject_id,
        {
            "request_id": str(request.id),
            "kind": kind,
            "from": before.value if before else None,
            "to": after.value if after else None,
            **info,
        },
    )
    return row, entry


def _event(
    ctx: TenantContext,
    request: RightsRequest,
    kind: str,
    before: RequestState | None,
    after: RequestState | None,
    details: dict[str, Any] | None = None,
    *,
    pending: list[audit.PendingEntry] | None = None,
) -> None:
    row, entry = event_parts(ctx, request, kind, before, after, details)
    # Written now, not at the next flush: nobody reads the row back as an object, and the
    # ORM's unit of work cost more than the insert. The request's row is in the data store
    # already (`submit` flushes it).
    bulk_insert(ctx.session, RequestEvent, [row])
    if pending is None:
        audit.record_many(ctx, [entry])
    else:
        pending.append(entry)


# ---------------------------------------------------------------------------------------------
# The clock, per request


def rule(request: RightsRequest) -> clock.Rule:
    return clock.rule_for(request.jurisdiction, request.type)


_PAUSES = cast(Table, RequestPause.__table__)
# Prebuilt (each transaction that moves a request counts its due date), on the session's
# connection with no autoflush: `pause` and `_end_pause`, the only writers, flush theirs.
_PAUSES_OF = (
    select(_PAUSES.c.started_at, _PAUSES.c.ended_at)
    .where(
        _PAUSES.c.tenant_id == bindparam("tenant_id"),
        _PAUSES.c.request_id == bindparam("request_id"),
    )
    .order_by(_PAUSES.c.started_at)
)


def pauses_of(ctx: TenantContext, request: RightsRequest) -> list[clock.Pause]:
    """The request's pauses, read once per transaction (`pause` and `_end_pause`, the only
    writers, drop the memo)."""
    memo = tx_memo(ctx)
    found: list[clock.Pause] | None = memo.get(("pauses", request.id))
    if found is None:
        rows = ctx.session.connection().execute(
            _PAUSES_OF, {"tenant_id": ctx.tenant_id, "request_id": request.id}
        )
        found = [
            clock.Pause(started.date(), ended.date() if ended else None) for started, ended in rows
        ]
        memo[("pauses", request.id)] = found
    return list(found)


def tenant_promise(ctx: TenantContext, request_type: str) -> clock.Promise | None:
    """A tenant's own, faster promise (tenant setting `rights_promises`: type or "*" →
    {"respond": "1 months", "restart_on_information": true})."""
    promises: dict[str, Any] = dict(ctx.settings.rights_promises or {})
    entry = promises.get(request_type) or promises.get("*")
    if not entry:
        return None
    respond = clock.Duration.parse(str(entry.get("respond", "")))
    if respond is None:
        return None
    return clock.Promise(respond, bool(entry.get("restart_on_information", False)))


def closing_days(ctx: TenantContext) -> frozenset[date]:
    """The tenant's closing days (tenant setting `closing_days`, ISO dates): holidays besides
    the jurisdiction's, for every rule that counts business days."""
    return _parsed_days(tuple(ctx.settings.closing_days or ()))


@lru_cache(maxsize=256)
def _parsed_days(days: tuple[str, ...]) -> frozenset[date]:
    # Parsed once per list, not per deadline asked for: the list is read from the tenant row
    # already loaded, so a change in this transaction is seen at once.
    return frozenset(date.fromisoformat(day) for day in days)


def extension_told(ctx: TenantContext, request: RightsRequest) -> date | None:
    """The due date the extension's letter gave the requester (its "extended" event; None
    before the extension, and for one granted before the date was kept), read once per
    transaction (`transitions.extend`, the only writer, sets the memo)."""
    if request.extended_at is None:
        return None
    memo = tx_memo(ctx)
    key = ("extension_told", request.id)
    if key not in memo:
        details = ctx.session.scalar(
            for_tenant(select(RequestEvent.details), RequestEvent, ctx.tenant_id)
            .where(RequestEvent.request_id == request.id, RequestEvent.kind == "extended")
            .order_by(RequestEvent.at.desc())
            .limit(1)
        )
        told = (details or {}).get("due")
        memo[key] = date.fromisoformat(told) if isinstance(told, str) else None
    found: date | None = memo[key]
    return found


def hold_clock_settings(ctx: TenantContext) -> None:
    """Read the tenant's clock settings (closing days, promises) again under a lock held to
    the end of the transaction, once per transaction, before a due date is counted to be
    kept: a change of them (`tenants.set_closing_days`, `set_rights_promise`: the tenant row
    FOR UPDATE, then the open requests' due dates) waits for this transaction and then
    counts its requests too, or this one waits for the change and counts with what it set.
    Without it, settings read before the change committed counted a due date from the old
    ones. FOR KEY SHARE: the lock an insert of any of the tenant's rows takes already (their
    foreign key), so it waits for nothing more than that insert would; SQLite's writers
    take turns. Taken before any request row is locked (`transitions.hold`, the worker's
    selects): the change holds the tenant first, then the requests, and a transaction that
    held a request first and then waited here was waited for in turn (a deadlock). It is the
    lock an audit append takes before the chain's head, so the append does not take it again."""
    memo = tx_memo(ctx)
    if memo.get("clock_settings_held"):
        return
    memo["clock_settings_held"] = True
    if ctx.session.get_bind().dialect.name == "sqlite":
        return
    ctx.session.flush()
    ctx.session.refresh(ctx.tenant, with_for_update={"read": True, "key_share": True})
    audit.tenant_held(ctx.session, ctx.tenant_id)


def hold_clock_settings_for_change(ctx: TenantContext) -> None:
    """The caller (`tenants`' clock settings) locked the tenant row FOR UPDATE: what it reads
    is current, and the shared lock is not taken again (a refresh would drop its change),
    nor by an audit append."""
    tx_memo(ctx)["clock_settings_held"] = True
    audit.tenant_held(ctx.session, ctx.tenant_id)


def deadlines(
    ctx: TenantContext, request: RightsRequest, *, extending_on: date | None = None
) -> clock.Deadlines:
    """The request's deadlines from its stored moments; with `extending_on`, as they would be
    with an extension notified that day (InvalidInput when the law does not allow it). An
    extension granted already stays granted, at no earlier date than its letter gave,
    whatever the tenant's closing days became since."""
    return clock.deadlines(
        rule(request),
        received=request.received_at.date(),
        today=utcnow().date(),
        verification_requested=request.verification_requested,
        verified=clock.as_date(request.verified_at),
        pauses=pauses_of(ctx, request),
        extended_on=extending_on or clock.as_date(request.extended_at),
        appeal_received=clock.as_date(request.appeal_received_at),
        appeal_extended=request.appeal_extended,
        promise=tenant_promise(ctx, request.type),
        extra_closing_days=closing_days(ctx),
        extension_granted=extending_on is None and request.extended_at is not None,
        extension_told=None if extending_on else extension_told(ctx, request),
    )


def refresh_due(ctx: TenantContext, request: RightsRequest) -> None:
    """Cache the current due date for the queue (the truth stays the stored moments). Every
    change refreshes it; while a pause stops the clock the due date moves day by day, so the
    worker refreshes paused requests each cycle (`pledge.worker`). Counted from the tenant's
    settings as they are committed (`hold_clock_settings`)."""
    hold_clock_settings(ctx)
    state = RequestState(request.state)
    if state is S.APPEALED:
        due = deadlines(ctx, request).appeal_due
    elif state in OPEN_STATES:
        due = deadlines(ctx, request).due
    else:
        due = None
    if due != request.due_on:  # unchanged, the row is not marked for the next flush
        request.due_on = due


# ---------------------------------------------------------------------------------------------
# The queue


@dataclass(frozen=True)
class QueueFilter:
    states: Sequence[str] = ()
    types: Sequence[str] = ()
    assigned_to: uuid.UUID | None = None
    due_before: date | None = None
    open_only: bool = True


def queue(
    ctx: TenantContext, flt: QueueFilter = QueueFilter(), *, limit: int = 200
) -> list[RightsRequest]:
    stmt = for_tenant(select(RightsRequest), RightsRequest, ctx.tenant_id)
    if flt.open_only and not flt.states:
        stmt = stmt.where(RightsRequest.state.in_([s.value for s in OPEN_STATES]))
    if flt.states:
        stmt = stmt.where(RightsRequest.state.in_(list(flt.states)))
    if flt.types:
        stmt = stmt.where(RightsRequest.type.in_(list(flt.types)))
    if flt.assigned_to is not None:
        stmt = stmt.where(RightsRequest.assigned_to == flt.assigned_to)
    if flt.due_before is not None:
        stmt = stmt.where(RightsRequest.due_on <= flt.due_before)
    return list(
        ctx.session.scalars(
            stmt.order_by(
                RightsRequest.due_on.is_(None), RightsRequest.due_on, RightsRequest.received_at
            ).limit(limit)
        )
    )


def timeline(ctx: TenantContext, request: RightsRequest) -> list[RequestEvent]:
    return list(
        ctx.session.scalars(
            for_tenant(select(RequestEvent), RequestEvent, ctx.tenant_id)
            .where(RequestEvent.request_id == request.id)
            .order_by(RequestEvent.at, RequestEvent.id)
        )
    )
