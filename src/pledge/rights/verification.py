"""Verification proportional to risk (GDPR Art. 12(6); CCPA 11 CCR 7060–7063).

* none — opt-outs and "limit" requests (CCPA: never verify), withdrawing consent, objecting
  to direct marketing only (it stops, no questions: GDPR Art. 21(3)); an objection to
  anything else is confirmed by e-mail (anyone may type an address);
* e-mail — control of the address on file: a one-time code and link, single use, expiring,
  attempt-limited, compared in constant time;
* e-mail plus data points — for specific pieces and erasure, data already on file must match
  (California: three points and a signed declaration for specific pieces, 11 CCR 7062) — as
  many as the person has on file, at most: someone known only by their address verifies by
  the e-mail alone;
* an authorized agent — signed permission at intake plus the person's own confirmation (the
  code and link go to the person, not the agent: `letters.addressee`);
* an authorized agent with the person's power of attorney, where the law says the person
  need not confirm (rule data `power_of_attorney`: California, 11 CCR 7063(b)) — no code to
  anyone: the request waits for staff to accept the document (they check it and who the
  agent is; the reason is kept sealed). Accepted, it is verified (`power_of_attorney`) and
  the person is told at their address on file, if any (`_tell_the_person`); rejected, it
  takes the agent's path above (`workflow.reject_power_of_attorney`);
* other means — staff verified the person otherwise (seen at a desk, called back), with the
  reason kept sealed with the request.

A new code can be asked for (`workflow.resend_verification`), a few a day; wrong codes lock
the codes — each code after five, any code after ten over the request's life — never the
link the person received.

Nothing the requester types to verify is stored: only whether it matched. Challenge rows
are deleted once the request is verified or closed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.db import flush_changes_to
from pledge.core.errors import Conflict, InvalidInput, NotFound, TooManyAttempts
from pledge.core.ids import new_id, parse_id
from pledge.mail import service as mail
from pledge.rights import clock, letters, transitions
from pledge.rights import service as rights
from pledge.rights.models import (
    RequestState,
    RequestType,
    RightsRequest,
    VerificationChallenge,
)
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind, InvalidIdentity, normalise_phone

CODE_TTL = timedelta(hours=24)
MAX_ATTEMPTS = 5
# A link's tries end at twice the codes': wrong codes (anyone who has the reference can type
# them) use up the first five at most, so the person holding the link keeps five of their
# own for the details on file — still limited, as those can be guessed.
LINK_MAX_ATTEMPTS = 2 * MAX_ATTEMPTS
MAX_CHALLENGES_PER_DAY = 3  # codes sent for a request in 24 hours, the first one included
# Wrong tries over the request's whole life before no code can be typed any more: a new code
# is a second chance, not a fresh budget (anyone who has the reference may ask for one and
# guess again). The links of the e-mails still work: only their holder has those.
CODE_TRIES_PER_REQUEST = 2 * MAX_ATTEMPTS
LOCKED = "too many wrong tries; open the link in the e-mail, or ask for a new code"
OTHER_MEANS = "other_means"
POWER_OF_ATTORNEY = "power_of_attorney"
POA_WAITS = "the power of attorney waits for staff: accept or reject it first"

# Data points that must match, beyond control of the e-mail address on file.
DATA_POINTS: dict[str, dict[str, int]] = {
    "*": {
        RequestType.ACCESS.value: 1,
        RequestType.PORTABILITY.value: 1,
        RequestType.ERASURE.value: 1,
        RequestType.RECTIFICATION.value: 1,
    },
    # 11 CCR 7062: categories 2 points (address + 1), specific pieces 3 (+ declaration).
    "US-CA": {
        RequestType.ACCESS.value: 2,
        RequestType.PORTABILITY.value: 2,
        RequestType.ACCESS_CATEGORIES.value: 1,
        RequestType.ERASURE.value: 1,
        RequestType.RECTIFICATION.value: 1,
    },
}
DECLARATION_REQUIRED = {
    ("US-CA", RequestType.ACCESS.value),
    ("US-CA", RequestType.PORTABILITY.value),
}
COMPARABLE_FIELDS = (
    "phone",
    "first_name",
    "last_name",
    "postcode",
    "city",
    "date_of_birth",
    "external_id",
)


@dataclass(frozen=True)
class Requirement:
    method: str  # none | email
    data_points: int
    declaration: bool


def requirement(request: RightsRequest) -> Requirement:
    rtype = RequestType(request.type)
    if rtype in rights.NO_VERIFICATION:
        return Requirement("none", 0, False)
    table = DATA_POINTS.get(request.jurisdiction, DATA_POINTS["*"])
    return Requirement(
        "email",
        table.get(rtype.value, 0),
        (request.jurisdiction, rtype.value) in DECLARATION_REQUIRED,
    )


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Challenge:
    code: str  # six digits, for typing
    link_token: str  # for clicking: "<request id hex>.<challenge id hex>.<secret>"


def begin(
    ctx: TenantContext, request: RightsRequest, *, pending: list[audit.PendingEntry] | None = None
) -> Challenge | None:
    """Start verification: none needed (→ verified), or a code and link to the address on
    file. The caller sends the challenge (after commit, through the outbox). With `pending`,
    the transition's audit entry is added to it for the caller to record."""
    need = requirement(request)
    if need.method == "none":
        request.verification_level = "none"
        transitions.transition(
            ctx, request, RequestState.VERIFIED, "verified", {"level": "none"}, pending=pending
        )
        return None
    if request.verification_requested:  # codes sent before (a new request has none)
        since = utcnow() - timedelta(days=1)
        recent = int(
            ctx.session.scalar(
                for_tenant(
                    select(func.count()).select_from(VerificationChallenge),
                    VerificationChallenge,
                    ctx.tenant_id,
                ).where(
                    VerificationChallenge.request_id == request.id,
                    VerificationChallenge.created_at > since,
                )
            )
            or 0
        )
        if recent >= MAX_CHALLENGES_PER_DAY:
            raise TooManyAttempts("too many codes sent for this request today; try again tomorrow")
    code = f"{secrets.randbelow(10**6):06d}"
    link_secret = secrets.token_urlsafe(32)
    challenge = VerificationChallenge(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        request_id=request.id,
        method="email",
        code_digest=_digest(f"{request.id}:{code}"),
        link_digest=_digest(link_secret),
        created_at=utcnow(),
        expires_at=utcnow() + CODE_TTL,
    )
    ctx.session.add(challenge)
    request.verification_requested = True
    if RequestState(request.state) is RequestState.RECEIVED:
        transitions.transition(
            ctx,
            request,
            RequestState.AWAITING_VERIFICATION,
            "verification_sent",
            {"data_points": need.data_points, "declaration": need.declaration},
            pending=pending,
        )
    ctx.session.flush()
    return Challenge(code, f"{request.id.hex}.{challenge.id.hex}.{link_secret}")


_CHALLENGES = cast(Table, VerificationChallenge.__table__)
# Prebuilt: read at every confirmation.
_LIVE_CHALLENGES = (
    select(VerificationChallenge)
    .where(
        VerificationChallenge.tenant_id == bindparam("tenant_id"),
        VerificationChallenge.request_id == bindparam("request_id"),
        VerificationChallenge.expires_at > bindparam("now"),
    )
    .order_by(VerificationChallenge.created_at, VerificationChallenge.id)
    .with_for_update()
)


def _live_challenges(ctx: TenantContext, request: RightsRequest) -> list[VerificationChallenge]:
    """The request's unexpired codes, oldest first, locked: two tries at once (PostgreSQL)
    take turns, so each counts its attempt on what the other left — five wrong codes in
    parallel are five attempts, and a try after the right code finds nothing left."""
    return list(
        ctx.session.scalars(
            _LIVE_CHALLENGES,
            {"tenant_id": ctx.tenant_id, "request_id": request.id, "now": utcnow()},
        )
    )


_DELETE_CHALLENGES = delete(_CHALLENGES).where(
    _CHALLENGES.c.tenant_id == bindparam("tenant_id"),
    _CHALLENGES.c.request_id == bindparam("request_id"),
)


def _delete_challenges(ctx: TenantContext, request: RightsRequest) -> int:
    """Delete the request's codes (verification data is kept only as long as needed);
    returns how many there were. A prebuilt Core DELETE (an ORM one costs ten times as much,
    and a confirmation is on every verified request's path); the codes this session holds go
    from it with their rows."""
    session = ctx.session
    flush_changes_to(session, VerificationChallenge)
    gone = session.connection().execute(
        _DELETE_CHALLENGES, {"tenant_id": ctx.tenant_id, "request_id": request.id}
    )
    for held in [
        obj
        for obj in session.identity_map.values()
        if isinstance(obj, VerificationChallenge) and obj.request_id == request.id
    ]:
        session.expunge(held)
    return gone.rowcount


def _tries_so_far(ctx: TenantContext, request: RightsRequest) -> int:
    """Wrong tries on all the codes the request was ever sent (kept until it is verified or
    closed), expired ones included."""
    return int(
        ctx.session.scalar(
            for_tenant(
                select(func.coalesce(func.sum(VerificationChallenge.attempts), 0)),
                VerificationChallenge,
                ctx.tenant_id,
            ).where(VerificationChallenge.request_id == request.id)
        )
        or 0
    )


def _normal(name: str, value: str, region: str) -> str:
    text = unicodedata.normalize("NFKC", value).casefold().strip()
    if name == "phone":
        try:
            return normalise_phone(value, region)
        except InvalidIdentity:
            return text
    if name == "postcode":
        return text.replace(" ", "")
    return " ".join(text.split())


@dataclass(frozen=True)
class Outcome:
    verified: bool
    reason: str | None = None


@dataclass(frozen=True)
class Matched:
    matches: int  # supplied data points equal to what is on file
    on_file: int  # comparable fields the person has on file at all
    subject_id: uuid.UUID | None


def _match_data_points(
    ctx: TenantContext, request: RightsRequest, supplied: dict[str, str]
) -> Matched:
    """How many of the supplied data points match the subject's fields on file, and how many
    there are to match."""
    email = rights.private_part(ctx, request)["email"]
    subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
    if subject_id is None:
        return Matched(0, 0, None)
    on_file = {f.name: f.value for f in reading.subject_fields(ctx, subject_id)}
    region = ctx.settings.phone_region
    matches = 0
    for name in COMPARABLE_FIELDS:
        given, held = supplied.get(name), on_file.get(name)
        if (
            given
            and held
            and hmac.compare_digest(
                _normal(name, given, region).encode(), _normal(name, held, region).encode()
            )
        ):
            matches += 1
    comparable = sum(1 for name in COMPARABLE_FIELDS if on_file.get(name))
    return Matched(matches, comparable, subject_id)


def confirm(
    ctx: TenantContext,
    request: RightsRequest,
    *,
    code: str | None = None,
    link_secret: str | None = None,
    data_points: dict[str, str] | None = None,
    declaration: bool = False,
) -> Outcome:
    """Check the code (or the link) and, where required, the data points and declaration."""
    # The request first, then its codes: the order every action on it takes (staff verifying
    # by other means, a new code asked for) — the other order deadlocked (PostgreSQL). Read
    # again once locked: verified meanwhile, it is "not waiting" below, as on SQLite.
    transitions.hold(ctx, request)
    if RequestState(request.state) is not RequestState.AWAITING_VERIFICATION:
        raise InvalidInput("this request is not waiting for verification")
    live = _live_challenges(ctx, request)
    if not live:
        return _failed(ctx, request, "expired")
    if link_secret is None:
        challenge = live[-1]  # the latest code sent is the one to type
        if (
            challenge.attempts >= MAX_ATTEMPTS
            or _tries_so_far(ctx, request) >= CODE_TRIES_PER_REQUEST
        ):
            raise TooManyAttempts(LOCKED)
        given = _digest(f"{request.id}:{(code or '').strip()}")
        if not hmac.compare_digest(challenge.code_digest, given):
            return _failed(ctx, request, "wrong_code", challenge)
    else:
        # Any live e-mail's link works: after a resend, the first e-mail may be the one
        # clicked. A link's secret is 256 bits: a wrong one is no guess to count, and wrong
        # codes do not lock it (`LINK_MAX_ATTEMPTS`).
        digest = _digest(link_secret)
        hits = [c for c in live if hmac.compare_digest(c.link_digest, digest)]
        if not hits:
            return _failed(ctx, request, "wrong_code")
        challenge = hits[0]
        if challenge.attempts >= LINK_MAX_ATTEMPTS:
            raise TooManyAttempts(LOCKED)
    need = requirement(request)
    if need.declaration and not declaration:
        return _failed(ctx, request, "declaration_missing", challenge)
    matched = (
        _match_data_points(ctx, request, data_points or {})
        if need.data_points
        else Matched(0, 0, None)
    )
    # No more than the person has on file: someone known by their address alone (or not
    # known) has nothing else to match, and the e-mail is the verification.
    required = min(need.data_points, matched.on_file)
    if matched.matches < required:
        return _failed(ctx, request, "data_points_mismatch", challenge)
    # Used once: the request's challenges go (verification data is kept only as long as
    # needed). A concurrent confirmation that got there first has deleted them: this one
    # then finds nothing to delete and fails (on PostgreSQL the DELETE waits for the other
    # transaction and sees its outcome).
    if not _delete_challenges(ctx, request):
        raise Conflict("this code has just been used")
    request.verification_level = "email" if not required else f"email+{required}"
    if need.declaration:
        request.verification_level += "+declaration"
    _match_subject(ctx, request, matched.subject_id)
    details: dict[str, Any] = {"level": request.verification_level}
    if required < need.data_points:  # staff see why fewer details were asked than the rule's
        details["details_on_file"] = matched.on_file
    entries: list[audit.PendingEntry] = []
    transitions.transition(
        ctx, request, RequestState.VERIFIED, "verified", details, pending=entries
    )
    entries.append(
        audit.PendingEntry(
            AuditEvent.RIGHTS_VERIFICATION,
            request.subject_id,
            {
                "request_id": str(request.id),
                "result": "verified",
                "level": request.verification_level,
            },
        )
    )
    audit.record_many(ctx, entries)  # in this order, one append
    return Outcome(True)


def _match_subject(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID | None = None
) -> None:
    """Verified: the request is matched to the person with its address on file (`subject_id`
    when the caller found them already)."""
    if request.subject_id is not None:
        return
    email = rights.private_part(ctx, request)["email"]
    request.subject_id = subject_id or reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
    if request.subject_id is not None:
        # Matched: what was stored before (the letters, a proof) goes under the subject's
        # key too, so that an erasure reaches it.
        letters.seal_under_subject(ctx, request.subject_id, [request.id])


def verify_otherwise(
    ctx: TenantContext, request: RightsRequest, reason: str, *, declaration: bool = False
) -> RightsRequest:
    """Staff verified the person by other means (identity seen at a desk, a call back to the
    number on file): for someone the e-mail cannot verify. The reason is kept with the
    request, sealed (a file of kind "verification"); the timeline and the audit entry say
    who did it and how long the reason is, never what it says."""
    # Locked (PostgreSQL): a confirmation at the same moment either came first — its state
    # is seen here — or waits for this one (it locks the request first too) and finds it
    # verified.
    transitions.hold(ctx, request)
    if RequestState(request.state) is not RequestState.AWAITING_VERIFICATION:
        raise Conflict("only a request waiting for verification can be verified by other means")
    reason = reason.strip()
    if len(reason) < 10:
        raise InvalidInput("say how the requester was verified (the reason is kept)")
    if requirement(request).declaration and not declaration:
        # California, specific pieces: a signed declaration whatever the way (11 CCR 7062).
        raise InvalidInput("this request needs the requester's signed declaration as well")
    level = OTHER_MEANS + ("+declaration" if declaration else "")
    _delete_challenges(ctx, request)
    request.verification_level = level
    _match_subject(ctx, request)
    letters.store_artifact(
        ctx,
        request,
        kind="verification",
        name="verified-by-other-means.txt",
        media_type="text/plain; charset=utf-8",
        content=f"Verified by other means, by {ctx.actor.label()}:\n\n{reason}\n".encode(),
    )
    entries: list[audit.PendingEntry] = []
    transitions.transition(
        ctx,
        request,
        RequestState.VERIFIED,
        "verified",
        {"level": level, "reason_chars": len(reason)},
        pending=entries,
    )
    entries.append(
        audit.PendingEntry(
            AuditEvent.RIGHTS_VERIFICATION,
            request.subject_id,
            {"request_id": str(request.id), "result": "verified", "level": level},
        )
    )
    audit.record_many(ctx, entries)
    return request


# ---------------------------------------------------------------------------------------------
# An agent's power of attorney (CCPA 11 CCR 7063(b))


def power_of_attorney_law(jurisdiction: str) -> str | None:
    """The law a power of attorney rests on in `jurisdiction` (rule data, `data/deadlines.toml`:
    key `power_of_attorney`); None where it cannot be claimed."""
    return clock.rule_for(jurisdiction, "access").power_of_attorney or None


def _power_of_attorney_places() -> list[str]:
    return [j for j in clock.jurisdictions() if power_of_attorney_law(j)]


def check_power_of_attorney(ctx: TenantContext, data: rights.RequestInput) -> None:
    """InvalidInput unless `data` may be received under a power of attorney: an authorized
    agent's, in a jurisdiction whose law provides for it, of a type the person would
    otherwise confirm. Nothing is written."""
    try:
        rtype = RequestType(data.type)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if rtype in rights.NO_VERIFICATION:
        raise InvalidInput(
            "a power of attorney is for a request the person would confirm; this one needs "
            "no confirmation"
        )
    if not (data.requester.agent_name or data.requester.agent_email):
        raise InvalidInput(
            "only an authorized agent acts under a power of attorney: give the agent's name "
            "and e-mail"
        )
    if power_of_attorney_law(rights.resolve_jurisdiction(ctx, data.jurisdiction)) is None:
        places = ", ".join(_power_of_attorney_places()).replace("US-CA", "California")
        raise InvalidInput(
            f"a power of attorney replaces the person's confirmation only in {places}; "
            "send the agent's signed permission instead (the person confirms)"
        )


def power_of_attorney(ctx: TenantContext, request: RightsRequest) -> dict[str, Any] | None:
    """The agent's power of attorney sealed with the request — {"document", "decision":
    "pending" | "accepted" | "rejected"} — or None."""
    agent = rights.private_part(ctx, request).get("agent") or {}
    found = agent.get("power_of_attorney")
    return found if isinstance(found, dict) else None


def power_of_attorney_pending(ctx: TenantContext, request: RightsRequest) -> bool:
    """Whether the request waits for staff to decide on its power of attorney."""
    if request.requester_kind != "agent":
        return False  # nothing to unseal
    found = power_of_attorney(ctx, request)
    return found is not None and found.get("decision") == "pending"


def claim_power_of_attorney(
    ctx: TenantContext,
    request: RightsRequest,
    document: str,
    *,
    pending: list[audit.PendingEntry],
) -> None:
    """A new agent's request made under a power of attorney (`check_power_of_attorney`
    passed): the document is sealed with the agent's details, and the request waits for
    staff — no code is sent to anyone. The entries go to `pending`."""
    private = rights.private_part(ctx, request)
    agent = dict(private.get("agent") or {})
    agent["power_of_attorney"] = {"document": document[:5000], "decision": "pending"}
    rights.update_private(ctx, request, agent=agent)
    law = power_of_attorney_law(request.jurisdiction)
    transitions.transition(
        ctx,
        request,
        RequestState.AWAITING_VERIFICATION,
        "power_of_attorney_received",
        {"law": law},
        pending=pending,
    )
    pending.append(_poa_entry(request, "power_of_attorney_received"))


def _poa_entry(request: RightsRequest, result: str, **details: Any) -> audit.PendingEntry:
    return audit.PendingEntry(
        AuditEvent.RIGHTS_VERIFICATION,
        request.subject_id,
        {"request_id": str(request.id), "result": result, **details},
    )


def _still_pending(ctx: TenantContext, request: RightsRequest) -> None:
    """Conflict unless the request waits for a decision on its power of attorney. Locked
    first, as every verification action (PostgreSQL): a second decision at once waits, then
    finds it decided."""
    transitions.hold(ctx, request)
    waiting = RequestState(request.state) is RequestState.AWAITING_VERIFICATION
    if not (waiting and power_of_attorney_pending(ctx, request)):
        raise Conflict("no power of attorney waits for a decision on this request")


def _decide_power_of_attorney(
    ctx: TenantContext, request: RightsRequest, decision: str, reason: str
) -> str:
    """Checks common to accepting and rejecting; the decision sealed with the document and
    the reason kept as a file of kind "verification". The reason, stripped."""
    _still_pending(ctx, request)
    reason = reason.strip()
    if len(reason) < 10:
        raise InvalidInput(
            "say how you checked the power of attorney and the agent (the reason is kept)"
        )
    private = rights.private_part(ctx, request)
    agent = dict(private["agent"])
    agent["power_of_attorney"] = {**agent["power_of_attorney"], "decision": decision}
    rights.update_private(ctx, request, agent=agent)
    letters.store_artifact(
        ctx,
        request,
        kind="verification",
        name=f"power-of-attorney-{decision}.txt",
        media_type="text/plain; charset=utf-8",
        content=f"Power of attorney {decision} by {ctx.actor.label()}:\n\n{reason}\n".encode(),
    )
    return reason


def accept_power_of_attorney(
    ctx: TenantContext, request: RightsRequest, reason: str, *, declaration: bool = False
) -> RightsRequest:
    """Staff accept the agent's power of attorney — they checked the document and who the
    agent is, and say how (`reason`, kept sealed): the request is verified without the
    person's confirmation (11 CCR 7063(b)). California specific pieces still need the
    signed declaration (11 CCR 7062). Timeline and audit say who and how long the reason
    is, never what it says."""
    _still_pending(ctx, request)
    if requirement(request).declaration and not declaration:
        raise InvalidInput("this request needs the requester's signed declaration as well")
    reason = _decide_power_of_attorney(ctx, request, "accepted", reason)
    level = POWER_OF_ATTORNEY + ("+declaration" if declaration else "")
    request.verification_level = level
    _match_subject(ctx, request)
    # Every entry recorded at the end, none before the move: verified, the request holds the
    # address's later requests to decide again whether they are repetitive
    # (`transitions._reassess_later`), and the lock order on PostgreSQL is request rows, then
    # the audit chain's head — audited first, the acceptance waited for staff acting on one
    # of them, who waited for the head (a deadlock).
    entries: list[audit.PendingEntry] = []
    transitions.record_event(
        ctx,
        request,
        "power_of_attorney_accepted",
        {"reason_chars": len(reason)},
        pending=entries,
    )
    entries.append(_poa_entry(request, "power_of_attorney_accepted", reason_chars=len(reason)))
    transitions.transition(
        ctx, request, RequestState.VERIFIED, "verified", {"level": level}, pending=entries
    )
    entries.append(_poa_entry(request, "verified", level=level))
    _tell_the_person(ctx, request, entries)
    audit.record_many(ctx, entries)
    return request


def _tell_the_person(
    ctx: TenantContext, request: RightsRequest, pending: list[audit.PendingEntry]
) -> None:
    """The person a request accepted under a power of attorney is about is told at once, so
    that a false one is noticed while the request can still be stopped: they were never
    asked to confirm it. Written to the address on file in the vault — never one the agent
    gave — and so only when the request matched a person with an e-mail on file: nobody
    matched (or no e-mail left on file), no letter. Stored sealed and queued like every
    letter (it leaves after commit); the entries go to `pending`."""
    if request.subject_id is None:
        return
    on_file = mail.contacts(ctx, [request.subject_id])[request.subject_id]
    if not on_file.email:
        return
    letters.send_pending(
        ctx,
        request,
        "power_of_attorney_accepted",
        pending,
        to=on_file.email,
        name=on_file.first_name,
        accepted_on=utcnow(),
    )


def reject_power_of_attorney(
    ctx: TenantContext,
    request: RightsRequest,
    reason: str,
    *,
    pending: list[audit.PendingEntry],
) -> None:
    """Staff do not accept the power of attorney (`reason`, kept sealed): the request stays
    waiting for verification — the caller sends the person the code, as for any agent's
    request (`workflow.reject_power_of_attorney`). The entries go to `pending`."""
    reason = _decide_power_of_attorney(ctx, request, "rejected", reason)
    transitions.record_event(
        ctx, request, "power_of_attorney_rejected", {"reason_chars": len(reason)}
    )
    pending.append(_poa_entry(request, "power_of_attorney_rejected", reason_chars=len(reason)))


def _failed(
    ctx: TenantContext,
    request: RightsRequest,
    reason: str,
    challenge: VerificationChallenge | None = None,
) -> Outcome:
    """A failed try: it counts against the challenge's attempts, and is audited."""
    if challenge is not None:
        challenge.attempts += 1
    audit.record(
        ctx,
        AuditEvent.RIGHTS_VERIFICATION,
        subject_id=request.subject_id,
        details={"request_id": str(request.id), "result": reason},
    )
    return Outcome(False, reason)


def request_for_link(ctx: TenantContext, token: str) -> tuple[RightsRequest, str]:
    """The request a verification link is for, and the link's secret. Any malformed or
    foreign token answers NotFound."""
    parts = token.split(".")
    if len(parts) != 3:
        raise NotFound("no such verification link")
    request_id = parse_id(parts[0])
    if request_id is None:
        raise NotFound("no such verification link")
    return rights.get_request(ctx, request_id), parts[2]


def unverified_close_after() -> timedelta:
    """How long a request may wait for verification (setting `PLEDGE_UNVERIFIED_CLOSE_DAYS`)."""
    return timedelta(days=get_settings().unverified_close_days)


def unverified_since(cutoff: datetime) -> ColumnElement[bool]:
    """The condition of a request waiting for the person's confirmation since before `cutoff`:
    counted from when they were first asked — the request's first code, which a request made
    under a power of attorney is sent only once staff reject the document, maybe weeks after
    it was received — or, no code sent, from when it was received."""
    first_code = (
        select(func.min(VerificationChallenge.created_at))
        .where(
            VerificationChallenge.tenant_id == RightsRequest.tenant_id,
            VerificationChallenge.request_id == RightsRequest.id,
        )
        .correlate(RightsRequest)
        .scalar_subquery()
    )
    return and_(
        RightsRequest.state == RequestState.AWAITING_VERIFICATION.value,
        # Received before the cutoff first: only those have their codes looked at.
        RightsRequest.received_at < cutoff,
        func.coalesce(first_code, RightsRequest.received_at) < cutoff,
    )


def close_unverified(
    ctx: TenantContext, older_than: timedelta | None = None
) -> list[RightsRequest]:
    """Requests never verified close themselves, with a reason, `older_than` (by default the
    configured period) after the person was first asked to confirm (`unverified_since`)."""
    older_than = older_than or unverified_close_after()
    cutoff = utcnow() - older_than
    stale = list(
        ctx.session.scalars(
            for_tenant(select(RightsRequest), RightsRequest, ctx.tenant_id).where(
                unverified_since(cutoff)
            )
        )
    )
    # One waiting for staff to decide on its power of attorney waits for them, not for the
    # requester: it stays open (its due date shows in the queue).
    stale = [r for r in stale if not power_of_attorney_pending(ctx, r)]
    for request in stale:
        transitions.transition(
            ctx,
            request,
            RequestState.CLOSED_UNVERIFIED,
            "closed_unverified",
            {"reason": "not_verified_in_time", "days": older_than.days},
        )
        request.outcome_code = "not_verified"
        _delete_challenges(ctx, request)
    return stale
