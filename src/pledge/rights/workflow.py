"""The steps around the state machine that every channel shares: receive (acknowledge, start
verification, answer opt-outs at once, stop direct marketing at once), verify, and the
periodic jobs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import delete, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import privacy_state
from pledge.consent import service as consent
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.errors import Conflict, InvalidInput
from pledge.mail import service as mail
from pledge.purposes import service as purposes
from pledge.rights import fulfilment, immediate, letters, transitions, verification
from pledge.rights import service as rights
from pledge.rights.models import Recipient, RequestState, RequestType, RightsRequest
from pledge.rights.service import RequestInput
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject, SubjectStatus
from pledge.webhooks import service as webhooks


@dataclass(frozen=True)
class Received:
    request: RightsRequest
    verification_link: str | None  # for the privacy center's "check your e-mail" page in dev


def receive(ctx: TenantContext, data: RequestInput, *, power_of_attorney: str = "") -> Received:
    """Take a request in: acknowledge it (California: within 10 business days — we do it at
    once) and send the verification the type needs — or, for an opt-out or a "limit"
    request, answer it at once (`immediate`): its one letter says it is done (an
    acknowledgement beside it would only repeat the news).

    An authorized agent's request made under the person's `power_of_attorney` (the
    document, or a reference to it; only where the law provides for it: InvalidInput
    otherwise, nothing written) sends no code: it waits for staff to accept the document
    (`verification.accept_power_of_attorney`, `reject_power_of_attorney`).

    An objection's direct-marketing part takes effect on receipt, on the address given
    (GDPR Art. 21(3), seed 004: no questions; stopping marketing harms nobody): one only
    about marketing is answered at once, its one letter the answer; the rest of one (a
    legitimate interest, which staff may keep for compelling grounds) waits for the person
    to confirm by e-mail."""
    power_of_attorney = power_of_attorney.strip()
    if power_of_attorney:
        verification.check_power_of_attorney(ctx, data)
    if data.type in immediate.TYPES_VALUES:
        return Received(immediate.answer(ctx, [immediate.prepare(ctx, data)])[0], None)
    # Receipt, acknowledgement, verification: audited in this order, in one append.
    entries: list[audit.PendingEntry] = []
    request = rights.submit(ctx, data, pending=entries)
    holder: uuid.UUID | None = None
    marketing: list[str] = []
    if request.type == RequestType.OBJECTION.value:
        holder, marketing, only = _objection_parts(ctx, request)
        if holder is not None and marketing:
            # Their objections are written after the receipt's entries: the person first.
            privacy_state.hold_person(ctx, holder)
        if only:
            return Received(_answer_objection(ctx, request, holder, entries), None)
    # Under a power of attorney, the acknowledgement promises the person no code: staff
    # check the document first.
    needs_verification = (
        verification.requirement(request).method != "none" and not power_of_attorney
    )
    letters.send_pending(
        ctx,
        request,
        "acknowledgement",
        entries,
        needs_verification=needs_verification,
        marketing_stopped=stops_marketing(ctx, request),
    )
    request.acknowledged_at = utcnow()
    challenge = None if power_of_attorney else verification.begin(ctx, request, pending=entries)
    link = None
    if power_of_attorney:
        verification.claim_power_of_attorney(ctx, request, power_of_attorney, pending=entries)
        audit.record_many(ctx, entries)
    elif challenge is not None:
        link = _send_challenge(ctx, request, challenge, entries)
        audit.record_many(ctx, entries)
    else:
        audit.record_many(ctx, entries)
        # No verification (withdrawing consent): match by the address given.
        email = rights.private_part(ctx, request)["email"]
        request.subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
    if holder is not None and marketing:
        # The person is matched only once verified; the marketing stops now all the same.
        for slug in marketing:
            consent.record_objection(ctx, holder, slug)
        transitions.record_event(ctx, request, "marketing_stopped", {"purposes": marketing})
    return Received(request, link)


def stops_marketing(ctx: TenantContext, request: RightsRequest) -> bool:
    """Whether the request stopped direct marketing on receipt, as its letters and page say:
    an objection naming no purpose or a marketing one — told from what was asked, the same
    whether or not the address is known."""
    if request.type != RequestType.OBJECTION.value:
        return False
    asked = (rights.private_part(ctx, request).get("details") or {}).get("purposes") or []
    return not asked or any(
        p is not None and p.is_marketing for p in map(partial(purposes.find_purpose, ctx), asked)
    )


def _objection_parts(
    ctx: TenantContext, request: RightsRequest
) -> tuple[uuid.UUID | None, list[str], bool]:
    """The live person the objection's address names (None: nobody, or erased), its
    direct-marketing purposes and whether they are all it asks (`immediate.objection_parts`)."""
    private = rights.private_part(ctx, request)
    holder = reading.find_subject_id(ctx, IdentityKind.EMAIL, private["email"])
    if holder is not None:
        row = reading.get_subject_rows(ctx, [holder]).get(holder)
        if row is None or row.status == SubjectStatus.ERASED.value:
            holder = None
    asked = list((private.get("details") or {}).get("purposes") or [])
    marketing, only = immediate.objection_parts(ctx, asked, holder)
    return holder, marketing, only


def _answer_objection(
    ctx: TenantContext,
    request: RightsRequest,
    holder: uuid.UUID | None,
    entries: list[audit.PendingEntry],
) -> RightsRequest:
    """Answer an objection only to direct marketing at once, as staff would (the
    fulfilment's `_objection`): verified with none needed, matched by the address given,
    completed with its one letter."""
    request.verification_level = "none"
    request.subject_id = holder
    transitions.transition(
        ctx, request, RequestState.VERIFIED, "verified", {"level": "none"}, pending=entries
    )
    audit.record_many(ctx, entries)
    request.acknowledged_at = utcnow()  # by the answer
    fulfilment.fulfil(ctx, request)
    return request


def _send_challenge(
    ctx: TenantContext,
    request: RightsRequest,
    challenge: verification.Challenge,
    entries: list[audit.PendingEntry],
) -> str:
    """Send the `verify` letter with the challenge's code and link (to the person the
    request is about, even when an agent acts: `letters.addressee`); the link."""
    base = get_settings().base_url.rstrip("/")
    link = f"{base}/p/{ctx.settings.slug}/requests/verify/{challenge.link_token}"
    need = verification.requirement(request)
    letters.send_pending(
        ctx,
        request,
        "verify",
        entries,
        code=challenge.code,
        link=link,
        data_points=need.data_points,
        declaration=need.declaration,
        marketing_stopped=stops_marketing(ctx, request),
    )
    return link


def resend_verification(ctx: TenantContext, request: RightsRequest, *, by: str) -> str:
    """A new code and link for a request waiting for verification — the e-mail was lost,
    or five wrong codes locked the last one — `by` the requester or staff; audited. At most
    `verification.MAX_CHALLENGES_PER_DAY` codes a day for a request, the first included
    (TooManyAttempts past that). The new code replaces the one to type; the links of the
    e-mails still live keep working. The link."""
    # Locked (PostgreSQL): two asks at once count the codes sent one after the other.
    transitions.hold(ctx, request)
    if RequestState(request.state) is not RequestState.AWAITING_VERIFICATION:
        raise Conflict("only a request waiting for verification can be sent a new code")
    if verification.power_of_attorney_pending(ctx, request):
        # No code was ever sent: one now would bypass staff's decision on the document.
        raise Conflict(verification.POA_WAITS)
    entries: list[audit.PendingEntry] = [
        audit.PendingEntry(
            AuditEvent.RIGHTS_VERIFICATION,
            request.subject_id,
            {"request_id": str(request.id), "result": "code_sent", "by": by},
        )
    ]
    challenge = verification.begin(ctx, request, pending=entries)
    assert challenge is not None  # a request waiting for verification needs one
    link = _send_challenge(ctx, request, challenge, entries)
    audit.record_many(ctx, entries)
    return link


def reject_power_of_attorney(
    ctx: TenantContext, request: RightsRequest, reason: str
) -> RightsRequest:
    """Staff do not accept the agent's power of attorney (`reason` kept sealed, audited):
    the request takes the normal agent's path — the person it is about is sent the code and
    link, naming the agent, and nothing happens until they confirm (decision 0010)."""
    entries: list[audit.PendingEntry] = []
    verification.reject_power_of_attorney(ctx, request, reason, pending=entries)
    challenge = verification.begin(ctx, request, pending=entries)
    assert challenge is not None  # an agent's request the person confirms needs one
    _send_challenge(ctx, request, challenge, entries)
    audit.record_many(ctx, entries)
    return request


def verify_link(
    ctx: TenantContext,
    token: str,
    *,
    data_points: dict[str, str] | None = None,
    declaration: bool = False,
) -> tuple[RightsRequest, verification.Outcome]:
    request, secret = verification.request_for_link(ctx, token)
    return request, verification.confirm(
        ctx, request, link_secret=secret, data_points=data_points, declaration=declaration
    )


# ---------------------------------------------------------------------------------------------
# Staff actions that write to the requester (the API and the console share them)


def extend(ctx: TenantContext, request: RightsRequest, reason: str) -> RightsRequest:
    """Take the extension and tell the requester why, inside the first period."""
    transitions.extend(ctx, request, reason)
    letters.send(ctx, request, "extended", reason=reason)
    return request


def extend_appeal(ctx: TenantContext, request: RightsRequest, reason: str) -> RightsRequest:
    """Take the appeal's extension and tell the requester why, inside the appeal's first
    period (CPA 6-1-1306(3): the consumer is told of it, with the reasons)."""
    transitions.extend_appeal(ctx, request, reason)
    letters.send(
        ctx,
        request,
        "appeal_extended",
        reason=reason.strip(),
        appeal_due=rights.deadlines(ctx, request).appeal_due,
    )
    return request


def ask_for_information(
    ctx: TenantContext, request: RightsRequest, code: str, reason: str
) -> RightsRequest:
    """Pause the request (`code` names why) and ask the requester for what is missing."""
    transitions.pause(ctx, request, code)
    letters.send(ctx, request, "need_information", reason=reason)
    return request


def decide_appeal(
    ctx: TenantContext, request: RightsRequest, *, grant: bool, reason: str
) -> RightsRequest:
    if not grant and len(reason.strip()) < 10:
        raise InvalidInput("give the reasons for refusing the appeal (they are sent)")
    if grant:
        # The request, then the person a correction restricts again, then the entry.
        transitions.lock(ctx, request)
        fulfilment.hold_person(ctx, request)
    transitions.decide_appeal(ctx, request, grant=grant, reason=reason.strip())
    if grant:
        fulfilment.restrict_for_checking(ctx, request)  # a correction to check again
    letters.send(ctx, request, "appeal_decision", granted=grant, reason=reason)
    return request


def close_unverified(ctx: TenantContext) -> int:
    """Close the requests never verified in time, each with its letter. How many closed."""
    after = verification.unverified_close_after()
    # Lock them first (PostgreSQL; SQLite's writers take turns): a second worker at once
    # waits here, then finds them closed — not a second closing, letter and webhook.
    # Waiting, not skipping: what is skipped here would still be read below. The tenant's
    # clock settings first, as every action on a request holds them (`transitions.hold`).
    rights.hold_clock_settings(ctx)
    ctx.session.execute(
        for_tenant(select(RightsRequest.id), RightsRequest, ctx.tenant_id)
        .where(verification.unverified_since(utcnow() - after))
        .with_for_update(of=RightsRequest)
    ).all()
    closed = verification.close_unverified(ctx, after)
    for request in closed:
        letters.send(ctx, request, "closed_unverified", days=after.days)
    return len(closed)


def refresh_paused_due(ctx: TenantContext) -> int:
    """While a pause stops the clock the due date moves every day, and no transition comes
    to refresh the cached one (the queue and the overdue list read it): refreshed here, by
    the worker and `pledge rights jobs`. How many moved."""
    paused = list(
        ctx.session.scalars(
            for_tenant(select(RightsRequest), RightsRequest, ctx.tenant_id).where(
                RightsRequest.state == RequestState.PAUSED.value
            )
        )
    )
    moved = 0
    for request in paused:
        before = request.due_on
        rights.refresh_due(ctx, request)
        moved += request.due_on != before
    return moved


def delivery_failed(ctx: TenantContext, delivery: webhooks.GivenUp) -> None:
    """A delivery about the request failed for good (every retry, or its target gone): a
    portability transfer the person was told is being sent, or a recipient's erasure or
    rectification notice (GDPR Art. 19). On the request's timeline, with its audit entry,
    for staff to act on — send it another way, tell the person. No URL or payload: the
    event, the recipient's slug, the attempts and the error (a status or a class)."""
    request = ctx.session.get(RightsRequest, (ctx.tenant_id, delivery.request_id))
    if request is None:
        return  # purged since
    details: dict[str, Any] = {
        "event": delivery.event,
        "delivery_id": str(delivery.id),
        "attempts": delivery.attempts,
        "error": delivery.last_error,
    }
    if delivery.target_kind == "recipient":
        recipient = ctx.session.get(Recipient, (ctx.tenant_id, delivery.target_id))
        if recipient is not None:
            details["recipient"] = recipient.slug
    transitions.record_event(ctx, request, "delivery_failed", details)


def purge_expired(ctx: TenantContext) -> int:
    """Delete request records 24 months after they closed (CCPA 11 CCR 7101(a)): the request,
    its timeline, letters and files, and the letters' copies in the mail outbox. The audit
    chain keeps that they existed, by id. A request its person is still restricted on (a
    ground naming it: a restriction not yet lifted, whatever its outcome since) is kept: it
    is what holds the person's data restricted, and what staff lift it from (the person told
    first). Rights letters in the outbox linked to no request
    (`mail.purge_unlinked_rights_letters`: a routing letter, letters queued before migration
    0008) go 24 months after they were written. How many requests were purged."""
    now = utcnow()
    # Only the letter's date is known; 24 months from it never keeps a letter longer than
    # its request's record, which closes after the letter was written.
    unlinked = mail.purge_unlinked_rights_letters(ctx, now - transitions.RECORDS_KEPT)
    # Locked, skipping those another worker is purging (PostgreSQL; SQLite's writers take
    # turns): the audit entry names only what this run deleted, never the same ones twice.
    # The tenant's clock settings first, in the order every action on a request takes.
    rights.hold_clock_settings(ctx)
    expired = ctx.session.execute(
        for_tenant(select(RightsRequest.id, RightsRequest.subject_id), RightsRequest, ctx.tenant_id)
        .where(RightsRequest.purge_after.is_not(None), RightsRequest.purge_after < now)
        .with_for_update(skip_locked=True)
    ).all()
    held, busy = _grounds_of(
        ctx, {subject_id for _, subject_id in expired if subject_id is not None}
    )
    ids = [
        request_id
        for request_id, subject_id in expired
        if subject_id not in busy
        and privacy_state.request_ground(request_id) not in held
        and privacy_state.accuracy_ground(request_id) not in held
    ]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        mail.purge_requests(ctx, chunk)
        webhooks.purge_requests(ctx, chunk)
        ctx.session.execute(
            delete(RightsRequest).where(
                RightsRequest.tenant_id == ctx.tenant_id, RightsRequest.id.in_(chunk)
            )
        )
    if ids or unlinked:
        details: dict[str, object] = {
            "requests": len(ids),
            "request_ids": [str(i) for i in ids[:1000]],
        }
        if unlinked:
            details["unlinked_letters"] = unlinked
        audit.record(ctx, AuditEvent.RIGHTS_PURGED, details=details)
    return len(ids)


def _grounds_of(ctx: TenantContext, subject_ids: set[uuid.UUID]) -> tuple[set[str], set[uuid.UUID]]:
    """The restriction grounds the subjects hold, all together, and the subjects another
    transaction is changing (their requests are kept this run, purged by a later one).

    Their rows are locked to the end of the transaction, as a ground is added or ended under
    the same lock (`privacy_state.add_restriction_ground`, a lift): none changes between this read
    and the delete. Locked ones are skipped, not waited for: a later run purges their
    requests, and this one does not keep the requests it holds locked while another
    transaction changes the person (PostgreSQL; SQLite's writers take turns). Not restricted
    is sorted out here, not in the query: a row its snapshot leaves out would be neither
    locked nor seen as busy."""
    held: set[str] = set()
    seen: set[uuid.UUID] = set()
    ordered = sorted(subject_ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for subject_id, restricted_at, grounds in ctx.session.execute(
            for_tenant(
                select(Subject.id, Subject.restricted_at, Subject.restriction_grounds),
                Subject,
                ctx.tenant_id,
            )
            .where(Subject.id.in_(chunk))
            .with_for_update(skip_locked=True)
        ):
            seen.add(subject_id)
            if restricted_at is not None:
                held.update(grounds)
    missing = subject_ids - seen
    if not missing:
        return held, set()
    # Not returned: locked by another transaction, or no such row (nothing to hold).
    present = ctx.session.scalars(
        for_tenant(select(Subject.id), Subject, ctx.tenant_id).where(Subject.id.in_(missing))
    )
    return held, set(present)


def due_soon(ctx: TenantContext, within: timedelta = timedelta(days=7)) -> list[RightsRequest]:
    today = utcnow().date()
    return rights.queue(ctx, rights.QueueFilter(due_before=today + within))


def overdue(ctx: TenantContext) -> list[RightsRequest]:
    today = utcnow().date()
    return [
        r
        for r in rights.queue(ctx, rights.QueueFilter(due_before=today))
        if r.due_on and r.due_on < today
    ]


OPEN = [
    s.value
    for s in (
        RequestState.RECEIVED,
        RequestState.AWAITING_VERIFICATION,
        RequestState.VERIFIED,
        RequestState.IN_PROGRESS,
        RequestState.PAUSED,
        RequestState.APPEALED,
    )
]
