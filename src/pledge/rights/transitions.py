"""The state machine of a rights request: it moves only along `TRANSITIONS`.

Each move is a timeline row and an audit entry in the caller's transaction, the cached due
date refreshed, and a `request.state_changed` webhook sent after commit. Pauses, the
extension, appeals, assignment and fees are the actions on the way.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput
from pledge.core.ids import new_id
from pledge.rights.models import (
    OPEN_STATES,
    RequestChannel,
    RequestEvent,
    RequestPause,
    RequestState,
    RequestType,
    RightsRequest,
)
from pledge.rights.service import (
    Prepared,
    S,
    _event,
    deadlines,
    hold_clock_settings,
    refresh_due,
    repetitive_flags,
    rule,
    tx_memo,
)
from pledge.webhooks import service as webhooks

# Allowed transitions of the state machine. Extension and assignment are actions, not states.
# An open request is appealed only once past its due date (our failure to act, `appeal`),
# and the decision returns it to where it stood, to be answered (`decide_appeal`).
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    S.RECEIVED: frozenset({S.AWAITING_VERIFICATION, S.VERIFIED, S.DENIED, S.WITHDRAWN, S.APPEALED}),
    S.AWAITING_VERIFICATION: frozenset({S.VERIFIED, S.CLOSED_UNVERIFIED, S.WITHDRAWN, S.DENIED}),
    S.VERIFIED: frozenset(
        {S.IN_PROGRESS, S.PAUSED, S.DENIED, S.WITHDRAWN, S.COMPLETED, S.APPEALED}
    ),
    S.IN_PROGRESS: frozenset({S.PAUSED, S.COMPLETED, S.DENIED, S.WITHDRAWN, S.APPEALED}),
    S.PAUSED: frozenset({S.IN_PROGRESS, S.WITHDRAWN, S.CLOSED_UNVERIFIED, S.DENIED, S.APPEALED}),
    S.COMPLETED: frozenset({S.APPEALED}),
    S.DENIED: frozenset({S.APPEALED}),
    S.APPEALED: frozenset({S.IN_PROGRESS, S.APPEAL_DENIED, S.RECEIVED, S.VERIFIED}),
    S.WITHDRAWN: frozenset(),
    S.CLOSED_UNVERIFIED: frozenset(),
    S.APPEAL_DENIED: frozenset(),
}
FINAL = frozenset({S.COMPLETED, S.DENIED, S.WITHDRAWN, S.CLOSED_UNVERIFIED, S.APPEAL_DENIED})
RECORDS_KEPT = timedelta(days=730)  # 24 months (CCPA 11 CCR 7101(a))
# The ground of an appeal of our failure to act (seed 000, Colorado: "If we have not responded
# to your request ... within 45 days ... you have the right to appeal our failure to take
# action"), kept on the "appealed" timeline row and its audit entry.
NO_ANSWER_IN_TIME = "no_answer_in_time"
# The open states where the answer is ours to give: waiting for the requester to confirm who
# they are is their part, not our failure (a pause is counted as the law counts it: where it
# stops the clock, the due date moves on; where it does not, the request is late all the same).
LATE_APPEALABLE = frozenset({S.RECEIVED, S.VERIFIED, S.IN_PROGRESS, S.PAUSED})


def move(request: RightsRequest, to: RequestState, now: datetime) -> RequestState:
    """Set the request's state and the moments that go with it; the state it left. Conflict
    when the state machine does not allow the move."""
    before = RequestState(request.state)
    if to not in TRANSITIONS[before]:
        now_state, next_state = before.value.replace("_", " "), to.value.replace("_", " ")
        raise Conflict(f"a request that is {now_state} cannot become {next_state}")
    request.state = to.value
    if to is S.VERIFIED and request.verified_at is None:
        request.verified_at = now
    if to is S.COMPLETED:
        request.completed_at = now
    if to in FINAL:
        request.closed_at = now
        request.purge_after = now + RECORDS_KEPT
    elif before in FINAL:  # reopened by an appeal: open again, not to be purged
        request.closed_at = None
        request.purge_after = None
    return before


def state_changed(
    request: RightsRequest, before: RequestState, to: RequestState, now: datetime
) -> dict[str, Any]:
    """The payload of the `request.state_changed` webhook."""
    return {
        "request_id": str(request.id),
        "reference": request.reference,
        "type": request.type,
        "state": to.value,
        "previous_state": before.value,
        "at": now.isoformat(),
    }


def fulfilled_entry(
    request: RightsRequest, extra: dict[str, Any] | None = None
) -> audit.PendingEntry:
    """The audit entry of a request fulfilled (its outcome code set); `extra`: counts the
    fulfilment adds (never personal data)."""
    return audit.PendingEntry(
        AuditEvent.RIGHTS_FULFILLED,
        request.subject_id,
        {
            "request_id": str(request.id),
            "type": request.type,
            "outcome": request.outcome_code,
            **(extra or {}),
        },
    )


def transition(
    ctx: TenantContext,
    request: RightsRequest,
    to: RequestState,
    kind: str,
    details: dict[str, Any] | None = None,
    *,
    pending: list[audit.PendingEntry] | None = None,
) -> RightsRequest:
    """Move the request to `to`: a timeline row and its audit entry (added to `pending` when
    given, for the caller to record in this transaction), the cached due date, and the
    `request.state_changed` webhook (sent after commit). Locked first (`lock`)."""
    lock(ctx, request)
    now = utcnow()
    before = move(request, to, now)
    if before is S.PAUSED:
        _end_pause(ctx, request, now)
    if to is S.VERIFIED:
        if _reassess_repetitive(ctx, request):
            details = {**(details or {}), "repetitive": request.repetitive}
        _reassess_later(ctx, request)
    _event(ctx, request, kind, before, to, details, pending=pending)
    refresh_due(ctx, request)
    webhooks.emit(
        ctx,
        "request.state_changed",
        state_changed(request, before, to, now),
        request_id=request.id,  # purged with it
    )
    return request


def lock(ctx: TenantContext, request: RightsRequest) -> None:
    """Lock the request's row to the end of the transaction and read it again (PostgreSQL:
    SELECT … FOR UPDATE; SQLite's writers take turns already): two staff acting on it at
    once, the second waits for the first, then finds what it did — Conflict when the state
    is no longer the one it was read in (answered, withdrawn, closed meanwhile), before a
    second bundle, letter or webhook. What this transaction changed is written first. Once
    per transaction: the lock holds to its end, and what changes after is this one's."""
    seen = request.state
    if hold(ctx, request) and request.state != seen:
        now_state = request.state.replace("_", " ")
        raise Conflict(f"this request was acted on meanwhile: it is {now_state} now")


def hold(ctx: TenantContext, request: RightsRequest) -> bool:
    """Lock the request's row to the end of the transaction and read it again, once per
    transaction (the caller checks its state); whether it was read just now. The tenant's
    clock settings are held first (`hold_clock_settings`): a change of them locks them, then
    the open requests, and the other order made each wait for the other (a deadlock)."""
    memo = tx_memo(ctx)
    if memo.get(("locked", request.id)):
        return False
    memo[("locked", request.id)] = True
    hold_clock_settings(ctx)
    if ctx.session.get_bind().dialect.name == "sqlite":
        # The writer holds the whole database from its first statement (BEGIN IMMEDIATE):
        # what this transaction read is current, and nobody else writes until it ends.
        return False
    ctx.session.flush()
    ctx.session.refresh(request, with_for_update=True)
    return True


def _reassess_repetitive(ctx: TenantContext, request: RightsRequest) -> bool:
    """Verified: whether the request is repetitive is decided again, counting the address's
    verified requests received in the 12 months before it alone (at intake, those still to
    be verified count too: a stranger's with the person's address, never verified, uses up
    none of their free ones). Whether the flag changed."""
    asked = Prepared(
        RequestType(request.type),
        RequestChannel(request.channel),
        request.jurisdiction,
        "",
        request.requester_kind == "agent",
        {},
    )
    flag = repetitive_flags(
        ctx,
        [(request.contact_index, asked)],
        request.received_at,
        verified_only=True,
        excluding=request.id,
    )[0]
    changed = flag != request.repetitive
    if changed:  # unchanged, the row is not marked for the next flush
        request.repetitive = flag
    return changed


_REQUESTS = cast(Table, RightsRequest.__table__)
# Prebuilt: asked as every request is verified, and most often it finds none.
_LATER_VERIFIED = select(_REQUESTS.c.id).where(
    _REQUESTS.c.tenant_id == bindparam("tenant_id"),
    _REQUESTS.c.contact_index == bindparam("contact_index"),
    _REQUESTS.c.received_at > bindparam("after"),
    _REQUESTS.c.received_at <= bindparam("until"),
    _REQUESTS.c.verified_at.is_not(None),
    _REQUESTS.c.state.in_(sorted(state.value for state in OPEN_STATES)),
)


def _reassess_later(ctx: TenantContext, request: RightsRequest) -> None:
    """Verified: the address's later requests, verified already and still open, are decided
    again too — this one, received before them, counts for them now (the first stays the free
    one whichever is verified first); a change is on their timeline for staff to see."""
    # A Core statement does not autoflush: requests changed in this transaction count too.
    if ctx.session.autoflush:
        ctx.session.flush()
    found = ctx.session.scalars(
        _LATER_VERIFIED,
        {
            "tenant_id": ctx.tenant_id,
            "contact_index": request.contact_index,
            "after": request.received_at,
            "until": request.received_at + timedelta(days=365),
        },
    ).all()
    others = [
        other
        for other_id in sorted(found)
        if (other := ctx.session.get(RightsRequest, (ctx.tenant_id, other_id))) is not None
    ]
    # All held before the first of their lines is audited, in the order of their ids: the
    # lock order is request rows, then the audit chain's head. The second one's line, written
    # after the first's entry, waited for a member of staff acting on it, who waited for the
    # head (a deadlock on PostgreSQL).
    for other in others:
        hold(ctx, other)
    for other in others:
        if _reassess_repetitive(ctx, other):
            _event(
                ctx, other, "repetitive_reassessed", None, None, {"repetitive": other.repetitive}
            )


def pause(ctx: TenantContext, request: RightsRequest, reason: str) -> RightsRequest:
    """Wait on the requester (clarification, a fee, ID): where the law allows it, the clock
    stops (GDPR Art. 12(6); Utah on suspected fraud); elsewhere it keeps running."""
    ctx.session.add(
        RequestPause(
            tenant_id=ctx.tenant_id,
            id=new_id(),
            request_id=request.id,
            reason=reason[:40],
            started_at=utcnow(),
        )
    )
    ctx.session.flush()
    tx_memo(ctx).pop(("pauses", request.id), None)
    return transition(ctx, request, S.PAUSED, "paused", {"reason": reason[:40]})


def resume(ctx: TenantContext, request: RightsRequest) -> RightsRequest:
    return transition(ctx, request, S.IN_PROGRESS, "resumed")


def _end_pause(ctx: TenantContext, request: RightsRequest, now: datetime) -> None:
    tx_memo(ctx).pop(("pauses", request.id), None)
    for open_pause in ctx.session.scalars(
        for_tenant(select(RequestPause), RequestPause, ctx.tenant_id).where(
            RequestPause.request_id == request.id, RequestPause.ended_at.is_(None)
        )
    ):
        open_pause.ended_at = now
    ctx.session.flush()  # `pauses_of` reads them again without a flush of its own


def extend(ctx: TenantContext, request: RightsRequest, reason: str) -> RightsRequest:
    """Take the extension the law allows, with the reasons, inside the first period (the
    letter telling the person is sent by the caller)."""
    lock(ctx, request)  # a second extension at once finds the first
    if RequestState(request.state) not in OPEN_STATES - {S.APPEALED}:
        raise Conflict("only an open request can be extended")
    if request.extended_at is not None:
        raise Conflict("this request was already extended")
    if len(reason.strip()) < 10:
        raise InvalidInput("give the reasons for the extension (they are sent to the requester)")
    # The tenant's closing days as committed: a change of them at this moment is waited for.
    hold_clock_settings(ctx)
    now = utcnow()
    # The same moments as the request's deadlines (verification, pauses): the first period
    # is the one the console shows.
    deadlines(ctx, request, extending_on=now.date())
    request.extended_at = now
    told = ("extension_told", request.id)
    tx_memo(ctx)[told] = None
    refresh_due(ctx, request)
    # The date the letter gives, kept with the extension: a closing day removed later never
    # brings the due date before it (`clock.deadlines`).
    assert request.due_on is not None
    tx_memo(ctx)[told] = request.due_on
    details = {"reason_chars": len(reason), "due": request.due_on.isoformat()}
    _event(ctx, request, "extended", None, None, details)
    return request


def last_appeal(ctx: TenantContext, request: RightsRequest) -> RequestEvent | None:
    """The request's latest "appealed" timeline row (its ground, the state it left)."""
    return ctx.session.scalar(
        for_tenant(select(RequestEvent), RequestEvent, ctx.tenant_id)
        .where(RequestEvent.request_id == request.id, RequestEvent.kind == "appealed")
        .order_by(RequestEvent.at.desc(), RequestEvent.id.desc())
        .limit(1)
    )


def _of_failure_to_act(event: RequestEvent | None) -> bool:
    return event is not None and (event.details or {}).get("ground") == NO_ANSWER_IN_TIME


def _statutory_due(ctx: TenantContext, request: RightsRequest) -> date:
    """The due date the law sets (extension and pauses included): a tenant's faster promise
    is no legal deadline, and being late on it opens no appeal."""
    due = deadlines(ctx, request)
    return due.statutory_due or due.due


def late_since(ctx: TenantContext, request: RightsRequest, today: date) -> date | None:
    """The due date the law set, when it has passed without an answer from us (None: not
    late, answered, or waiting on the requester to confirm)."""
    if RequestState(request.state) not in LATE_APPEALABLE:
        return None
    due = _statutory_due(ctx, request)
    return due if today > due else None


def appeal_refusal(ctx: TenantContext, request: RightsRequest) -> str | None:
    """Why the requester cannot appeal now, or None when they can (where the law grants an
    appeal): an answer (completed or refused), once; our failure to answer in time (the
    request open past its due date), once — and the answer given after it, once more."""
    law = rule(request)
    if law.appeal is None:
        return f"{law.name} grants no appeal; a complaint goes to {law.complaint}"
    already = f"this request was appealed already; a further complaint goes to {law.complaint}"
    state = RequestState(request.state)
    if state in (S.COMPLETED, S.DENIED):
        # An appeal of our silence left the answer to come open to an appeal of its own.
        if request.appeal_received_at is None or _of_failure_to_act(last_appeal(ctx, request)):
            return None
        return already
    if request.appeal_received_at is not None:
        return already
    if state is S.AWAITING_VERIFICATION:
        return (
            "this request waits for the requester to confirm who they are: "
            "it cannot be appealed as unanswered"
        )
    if state not in LATE_APPEALABLE:
        return "a closed request that was not answered cannot be appealed"
    due = _statutory_due(ctx, request)
    if utcnow().date() <= due:
        return (
            f"the time to answer runs until {due.isoformat()}: "
            "our failure to answer can be appealed after that day"
        )
    return None


def appeal(ctx: TenantContext, request: RightsRequest) -> RightsRequest:
    """The requester appeals a denial or an answer, or our failure to answer in time, where
    the state grants an appeal. An appeal of our failure to act leaves the duty to answer in
    place (`decide_appeal`)."""
    law = rule(request)
    if law.appeal is None:
        raise InvalidInput(f"{law.name} grants no appeal; a complaint goes to {law.complaint}")
    lock(ctx, request)  # a second appeal at once finds the first
    refusal = appeal_refusal(ctx, request)
    if refusal is not None:
        raise Conflict(refusal)
    details: dict[str, Any] | None = None
    if RequestState(request.state) in LATE_APPEALABLE:
        due = _statutory_due(ctx, request)
        details = {"ground": NO_ANSWER_IN_TIME, "due": due.isoformat()}
    request.appeal_received_at = utcnow()
    request.appeal_extended = False  # an extension of an earlier appeal (of our silence)
    request.appeal_decided_at = None
    return transition(ctx, request, S.APPEALED, "appealed", details)


def extend_appeal(ctx: TenantContext, request: RightsRequest, reason: str) -> RightsRequest:
    """Take the appeal's extension where the law has one (Colorado: +60 days, CPA
    6-1-1306(3)), once, with the reasons, inside the appeal's first period (the letter
    telling the person is sent by the caller)."""
    lock(ctx, request)  # a second extension at once finds the first
    if RequestState(request.state) is not S.APPEALED:
        raise Conflict("only an appealed request's appeal can be extended")
    if request.appeal_extended:
        raise Conflict("this appeal was already extended")
    law = rule(request)
    if law.appeal_extension is None:
        raise InvalidInput(f"{law.name} allows no extension of the time to decide an appeal")
    if len(reason.strip()) < 10:
        raise InvalidInput("give the reasons for the extension (they are sent to the requester)")
    first_due = deadlines(ctx, request).appeal_due
    if first_due is None or utcnow().date() > first_due:
        raise Conflict(
            "the appeal period ended"
            + (f" on {first_due.isoformat()}" if first_due else "")
            + ": it can no longer be extended"
        )
    request.appeal_extended = True
    _event(ctx, request, "appeal_extended", None, None, {"reason_chars": len(reason)})
    refresh_due(ctx, request)
    return request


def decide_appeal(
    ctx: TenantContext, request: RightsRequest, *, grant: bool, reason: str
) -> RightsRequest:
    """Decide the appeal. An appeal of our failure to answer in time is decided by answering:
    granted, the request returns to where it stood (still to be verified, verified, or in
    progress; a pause it was in is over — the requester came back), never closed
    unanswered; refusing it is a Conflict."""
    lock(ctx, request)
    if RequestState(request.state) is not S.APPEALED:
        raise Conflict("only an appealed request's appeal can be decided")
    made = last_appeal(ctx, request)
    if _of_failure_to_act(made):
        assert made is not None
        if not grant:
            raise Conflict(
                "an appeal of our failure to answer in time is decided by answering the "
                "request: grant it, then answer"
            )
        request.appeal_decided_at = utcnow()
        left = RequestState(made.from_state) if made.from_state else S.IN_PROGRESS
        back = left if left in (S.RECEIVED, S.VERIFIED) else S.IN_PROGRESS
        return transition(ctx, request, back, "appeal_granted", {"ground": NO_ANSWER_IN_TIME})
    request.appeal_decided_at = utcnow()
    if grant:
        return transition(ctx, request, S.IN_PROGRESS, "appeal_granted")
    request.outcome_code = "appeal_denied"
    return transition(ctx, request, S.APPEAL_DENIED, "appeal_denied", {"reason": reason[:60]})


def record_event(
    ctx: TenantContext,
    request: RightsRequest,
    kind: str,
    details: dict[str, Any] | None = None,
    *,
    pending: list[audit.PendingEntry] | None = None,
) -> None:
    """A timeline row (and its audit entry, added to `pending` when given) for what happened
    to a request without a change of state, e.g. a restriction lifted. The request is not
    held here: the row's insert waits for a transaction holding it (its foreign key), so the
    caller holds it first (`hold`) or has not locked the audit head yet — the order is the
    tenant row, request rows, then the head (a request of this transaction's own waits for
    nobody)."""
    _event(ctx, request, kind, None, None, details, pending=pending)


def assign(ctx: TenantContext, request: RightsRequest, user_id: uuid.UUID | None) -> RightsRequest:
    hold(ctx, request)  # in the order every action on it takes
    request.assigned_to = user_id
    _event(ctx, request, "assigned", None, None, {"user_id": str(user_id) if user_id else None})
    return request


ACCESS_LIKE = frozenset({RequestType.ACCESS.value, RequestType.ACCESS_CATEGORIES.value})
MAX_FEE_CENTS = 100_000


def record_fee(
    ctx: TenantContext, request: RightsRequest, cents: int, reason: str
) -> RightsRequest:
    """Record a fee where the request's law allows one (rule `fee_allowed`): `excessive_only`
    and `after_free` — only for a request flagged repetitive or excessive, a human's decision
    (GDPR Art. 12(5), CCPA 1798.145(h)); `access_not_excessive` — a reasonable fee for giving
    access (Australia APP 12.8); `never` — refused. A fee of 0 clears it."""
    hold(ctx, request)  # in the order every action on it takes
    if RequestState(request.state) in FINAL:
        raise Conflict("the request is closed")
    if not 0 <= cents <= MAX_FEE_CENTS:
        raise InvalidInput(f"a fee is between 0 and {MAX_FEE_CENTS} cents")
    reason = reason.strip()
    if cents and len(reason) < 10:
        raise InvalidInput("say why a fee is charged (at least 10 characters)")
    allowed = rule(request).fee_allowed
    if cents and not (
        (allowed in ("excessive_only", "after_free") and request.repetitive)
        or (allowed == "access_not_excessive" and request.type in ACCESS_LIKE)
    ):
        raise Conflict(
            "the law of this request allows no fee here"
            + (" unless it is repetitive or excessive" if allowed != "never" else "")
        )
    request.fee_cents = cents or None
    _event(ctx, request, "fee_recorded", None, None, {"cents": cents, "reason": reason})
    return request
