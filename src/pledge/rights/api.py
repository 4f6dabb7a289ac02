"""REST routes of rights requests: intake for integrators and staff, the queue, every action."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from pledge.access import idempotency
from pledge.access.context import TenantContext
from pledge.access.idempotency import IdempotencyKey
from pledge.access.models import User
from pledge.access.permissions import Scope
from pledge.access.scoping import get_in_tenant
from pledge.core.errors import InvalidInput
from pledge.core.ids import parse_id
from pledge.core.validation import UNCHANGED
from pledge.rights import (
    fulfilment,
    immediate,
    letters,
    recipients,
    reports,
    transitions,
    verification,
    workflow,
)
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.models import Recipient, RightsRequest
from pledge.rights.schemas import (
    AppealDecisionIn,
    AssignIn,
    BatchItemOut,
    BatchOut,
    DeadlinesOut,
    EventOut,
    FeeIn,
    FulfilIn,
    FulfilOut,
    ItemError,
    OtherMeansIn,
    PowerOfAttorneyIn,
    ReasonIn,
    RecipientChangeIn,
    RecipientIn,
    RecipientOut,
    RequestBatchIn,
    RequestIn,
    RequestOut,
    SlaOut,
    VerifyIn,
)
from pledge.rights.service import Requester, RequestInput
from pledge.web.deps import api_context
from pledge.web.problems import MALFORMED_IDEMPOTENCY_KEY, PROBLEMS, TOO_MANY_ATTEMPTS

router = APIRouter(prefix="/api/v1", tags=["rights requests"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.REQUESTS_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.REQUESTS_WRITE))]
Hooks = Annotated[TenantContext, Depends(api_context(Scope.WEBHOOKS_MANAGE))]


def request_out(ctx: TenantContext, r: RightsRequest, *, full: bool = False) -> RequestOut:
    out = RequestOut(
        id=str(r.id),
        reference=r.reference,
        type=r.type,
        jurisdiction=r.jurisdiction,
        channel=r.channel,
        requester_kind=r.requester_kind,
        state=r.state,
        subject_id=str(r.subject_id) if r.subject_id else None,
        verification_level=r.verification_level,
        received_at=r.received_at,
        verified_at=r.verified_at,
        completed_at=r.completed_at,
        closed_at=r.closed_at,
        outcome=r.outcome_code,
        due_on=r.due_on,
        repetitive=r.repetitive,
        fee_cents=r.fee_cents,
        assigned_to=str(r.assigned_to) if r.assigned_to else None,
    )
    if full:
        d = rights.deadlines(ctx, r)
        out.deadlines = DeadlinesOut(
            starts=d.starts,
            acknowledge_by=d.acknowledge_by,
            first_due=d.first_due,
            due=d.due,
            extended_due=d.extended_due,
            extended=d.extended,
            paused_days=d.paused_days,
            paused=d.paused,
            appeal_due=d.appeal_due,
            appeal_extended=r.appeal_extended,
        )
        out.timeline = [
            EventOut(
                at=e.at,
                kind=e.kind,
                from_state=e.from_state,
                to_state=e.to_state,
                actor=f"{e.actor_kind}:{e.actor_id}" if e.actor_id else e.actor_kind,
                details=e.details,
            )
            for e in rights.timeline(ctx, r)
        ]
    return out


@router.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestOut,
    responses=MALFORMED_IDEMPOTENCY_KEY,
)
def create_request(
    body: RequestIn, ctx: Write, response: Response, idempotency_key: IdempotencyKey = None
) -> RequestOut:
    """Receive a request (from an integrator, a staff member, an authorized agent…): it is
    acknowledged, verification is sent where the type needs it, opt-outs apply at once (their
    one letter says so). An objection's direct-marketing part applies at once too; one only
    about marketing is answered at once, the rest of one waits for the e-mail confirmation.
    Send an `Idempotency-Key` to make a retry safe: the same key and body within a day get
    the first answer (header `Idempotent-Replayed: true`), and the request is not received
    twice."""
    return idempotency.once(
        ctx,
        response,
        route="requests.create",
        raw_key=idempotency_key,
        body=body,
        answer=RequestOut,
        produce=lambda: request_out(
            ctx,
            workflow.receive(
                ctx, _input(body), power_of_attorney=body.requester.agent_power_of_attorney
            ).request,
            full=True,
        ),
    )


def _input(body: RequestIn) -> RequestInput:
    return RequestInput(
        type=body.type.value,
        requester=Requester(**body.requester.model_dump(exclude={"agent_power_of_attorney"})),
        jurisdiction=body.jurisdiction,
        channel=body.channel.value,
        details=body.details,
    )


@router.post("/requests/batch", response_model=BatchOut, responses=MALFORMED_IDEMPOTENCY_KEY)
def create_batch(
    body: RequestBatchIn, ctx: Write, response: Response, idempotency_key: IdempotencyKey = None
) -> BatchOut:
    """Receive many opt-outs of sale/sharing and "limit" requests in one transaction: each
    is answered at once, as `POST /requests` would (its letter, webhooks and audit entries).
    A request that cannot be received — an invalid address, a type that needs verification —
    is refused in its place with the reason, and the others go through; a body that is not
    well-formed (an unknown type, an extra field) is refused whole, with 422. With an
    `Idempotency-Key`, sending the same list again within a day returns the first answer
    and receives nobody twice."""
    return idempotency.once(
        ctx,
        response,
        route="requests.batch",
        raw_key=idempotency_key,
        body=body,
        answer=BatchOut,
        produce=lambda: _batch(ctx, body),
    )


def _batch(ctx: TenantContext, body: RequestBatchIn) -> BatchOut:
    for i, item in enumerate(body.requests):
        if item.requester.agent_power_of_attorney:
            # What is answered at once needs nobody's confirmation to replace.
            raise InvalidInput(
                f"requests[{i}]: a power of attorney is for a request the person would "
                "confirm; send it alone (POST /requests)"
            )
    results = immediate.answer_many(ctx, [_input(item) for item in body.requests])
    items = [
        BatchItemOut(position=i, request=request_out(ctx, r))
        if isinstance(r, RightsRequest)
        else BatchItemOut(position=i, error=ItemError(code=r.code, detail=r.detail))
        for i, r in enumerate(results)
    ]
    refused = sum(1 for item in items if item.error is not None)
    return BatchOut(received=len(items) - refused, refused=refused, results=items)


@router.get("/requests", response_model=list[RequestOut])
def list_requests(
    ctx: Read,
    state: Annotated[list[str] | None, Query()] = None,
    type: Annotated[list[str] | None, Query()] = None,
    open_only: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RequestOut]:
    flt = rights.QueueFilter(states=state or (), types=type or (), open_only=open_only)
    return [request_out(ctx, r) for r in rights.queue(ctx, flt, limit=limit)]


@router.get("/requests/sla", response_model=SlaOut)
def sla(ctx: Read) -> SlaOut:
    return SlaOut(**vars(reports.sla(ctx)))


@router.get("/requests/{request_id}", response_model=RequestOut)
def get_request(request_id: str, ctx: Read) -> RequestOut:
    return request_out(ctx, rights.get_request(ctx, request_id), full=True)


@router.post(
    "/requests/{request_id}/verify", response_model=RequestOut, responses=TOO_MANY_ATTEMPTS
)
def verify(request_id: str, body: VerifyIn, ctx: Write) -> RequestOut:
    """Check the code the requester received (and data points, a declaration where needed)."""
    request = rights.get_request(ctx, request_id)
    verification.confirm(
        ctx, request, code=body.code, data_points=body.data_points, declaration=body.declaration
    )
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/verify-otherwise", response_model=RequestOut)
def verify_otherwise(request_id: str, body: OtherMeansIn, ctx: Write) -> RequestOut:
    """Record that staff verified the requester by other means (identity seen at a desk, a
    call back to the number on file) — for someone the e-mail code cannot verify — and how.
    Only a request waiting for verification; the reason is kept sealed with the request
    (a file of kind `verification`); audited."""
    request = rights.get_request(ctx, request_id)
    verification.verify_otherwise(ctx, request, body.reason, declaration=body.declaration)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/power-of-attorney", response_model=RequestOut)
def decide_power_of_attorney(request_id: str, body: PowerOfAttorneyIn, ctx: Write) -> RequestOut:
    """Accept or reject the power of attorney an authorized agent's request was made under
    (California, 11 CCR 7063(b)), once you checked the document and who the agent is.
    Accepted: verified without the person's confirmation (level `power_of_attorney`); the
    person is told by a letter to the e-mail address on file, when the request matched them.
    Rejected: the person is sent the code and link to confirm, as for any agent's request.
    The reason is kept sealed with the request (a file of kind `verification`); audited.
    409 when no power of attorney waits for a decision."""
    request = rights.get_request(ctx, request_id)
    if body.accept:
        verification.accept_power_of_attorney(
            ctx, request, body.reason, declaration=body.declaration
        )
    else:
        workflow.reject_power_of_attorney(ctx, request, body.reason)
    return request_out(ctx, request, full=True)


@router.post(
    "/requests/{request_id}/resend-verification",
    response_model=RequestOut,
    responses=TOO_MANY_ATTEMPTS,
)
def resend_verification(request_id: str, ctx: Write) -> RequestOut:
    """Send the requester a new code and link — the e-mail was lost, or wrong codes locked
    the last code. Only a request waiting for verification; at most three codes a day for a
    request, the first included (429 past that); audited."""
    request = rights.get_request(ctx, request_id)
    workflow.resend_verification(ctx, request, by="staff")
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/start", response_model=RequestOut)
def start(request_id: str, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    fulfilment.start(ctx, request)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/fulfil", response_model=FulfilOut)
def fulfil(request_id: str, body: FulfilIn, ctx: Write) -> FulfilOut:
    request = rights.get_request(ctx, request_id)
    result = fulfilment.fulfil(ctx, request, StaffInput(**body.model_dump()))
    return FulfilOut(
        state=result.state,
        outcome=result.outcome,
        kept=result.kept,
        download_url=result.download_url,
    )


@router.post("/requests/{request_id}/deny", response_model=FulfilOut)
def deny(request_id: str, body: ReasonIn, ctx: Write) -> FulfilOut:
    result = fulfilment.deny(ctx, rights.get_request(ctx, request_id), body.code, body.reason)
    return FulfilOut(state=result.state, outcome=result.outcome, kept=[], download_url=None)


@router.post("/requests/{request_id}/fee", response_model=RequestOut)
def fee(request_id: str, body: FeeIn, ctx: Write) -> RequestOut:
    """Record a fee where the request's law allows one (a repetitive or excessive request;
    access in Australia). Audited; 0 clears it."""
    request = rights.get_request(ctx, request_id)
    transitions.record_fee(ctx, request, body.cents, body.reason)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/extend", response_model=RequestOut)
def extend(request_id: str, body: ReasonIn, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    workflow.extend(ctx, request, body.reason)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/pause", response_model=RequestOut)
def pause(request_id: str, body: ReasonIn, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    workflow.ask_for_information(ctx, request, body.code, body.reason)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/resume", response_model=RequestOut)
def resume(request_id: str, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    transitions.resume(ctx, request)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/withdraw", response_model=RequestOut)
def withdraw(request_id: str, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    fulfilment.withdraw(ctx, request)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/lift-restriction", response_model=RequestOut)
def lift_restriction(request_id: str, body: ReasonIn, ctx: Write) -> RequestOut:
    """Lift the restriction a completed restriction request put in place: the person is
    told first, with the reason (GDPR Art. 18(3)); their data stays restricted while a
    correction of theirs is being checked."""
    request = rights.get_request(ctx, request_id)
    fulfilment.lift_restriction(ctx, request, body.reason)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/appeal", response_model=RequestOut)
def appeal(request_id: str, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    transitions.appeal(ctx, request)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/appeal-decision", response_model=RequestOut)
def appeal_decision(request_id: str, body: AppealDecisionIn, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    workflow.decide_appeal(ctx, request, grant=body.grant, reason=body.reason)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/extend-appeal", response_model=RequestOut)
def extend_appeal(request_id: str, body: ReasonIn, ctx: Write) -> RequestOut:
    """Extend the time to decide an appeal where the law allows it (Colorado: +60 days), once,
    inside the appeal's first period: the requester is sent the reasons."""
    request = rights.get_request(ctx, request_id)
    workflow.extend_appeal(ctx, request, body.reason)
    return request_out(ctx, request, full=True)


@router.post("/requests/{request_id}/assign", response_model=RequestOut)
def assign(request_id: str, body: AssignIn, ctx: Write) -> RequestOut:
    request = rights.get_request(ctx, request_id)
    user = parse_id(body.user_id) if body.user_id else None
    if body.user_id and user is None:
        raise InvalidInput("user_id is not an id")
    if user is not None:
        get_in_tenant(ctx.session, User, ctx.tenant_id, user, what="user")
    transitions.assign(ctx, request, user)
    return request_out(ctx, request, full=True)


@router.get(
    "/requests/{request_id}/artifacts/{artifact_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The file, as an attachment",
            "content": {
                "application/zip": {},
                "text/plain": {},
                "application/pdf": {},
                "image/png": {},
                "image/jpeg": {},
            },
        }
    },
)
def artifact(request_id: str, artifact_id: str, ctx: Read) -> Response:
    """A letter or file of the request, for staff (audited)."""
    request = rights.get_request(ctx, request_id)
    item, content = letters.read_artifact(ctx, request, artifact_id, by="staff")
    return Response(
        content,
        media_type=item.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{item.name}"',
            "Cache-Control": "no-store",
        },
    )


def _recipient_out(ctx: TenantContext, r: Recipient, secret: str | None = None) -> RecipientOut:
    return RecipientOut(
        id=str(r.id),
        slug=r.slug,
        name=r.name,
        kind=r.kind,
        country=r.country,
        transfer_mechanism=r.transfer_mechanism,
        warning=recipients.transfer_warning(ctx, r),
        webhook_url=r.webhook_url,
        active=r.active,
        secret=secret,
    )


@router.get("/recipients", response_model=list[RecipientOut])
def list_recipients(ctx: Hooks) -> list[RecipientOut]:
    return [_recipient_out(ctx, r) for r in recipients.list_recipients(ctx)]


@router.post("/recipients", status_code=status.HTTP_201_CREATED, response_model=RecipientOut)
def add_recipient(body: RecipientIn, ctx: Hooks) -> RecipientOut:
    r, secret = recipients.add_recipient(
        ctx,
        slug=body.slug,
        name=body.name,
        kind=body.kind,
        country=body.country,
        webhook_url=body.webhook_url,
        transfer_mechanism=body.transfer_mechanism,
    )
    return _recipient_out(ctx, r, secret)


@router.patch("/recipients/{recipient_slug}", response_model=RecipientOut)
def change_recipient(recipient_slug: str, body: RecipientChangeIn, ctx: Hooks) -> RecipientOut:
    """Change what the body gives of a recipient; a new webhook URL's secret is shown once."""
    given = body.model_fields_set
    # null removes the mechanism or the URL; a name or a state is never removed.
    for field in ("name", "active"):
        if field in given and getattr(body, field) is None:
            raise InvalidInput(f"{field} cannot be null")
    r, secret = recipients.update_recipient(
        ctx,
        recipient_slug,
        name=body.name if body.name is not None else UNCHANGED,
        transfer_mechanism=(
            body.transfer_mechanism if "transfer_mechanism" in given else UNCHANGED
        ),
        webhook_url=body.webhook_url if "webhook_url" in given else UNCHANGED,
        active=body.active if body.active is not None else UNCHANGED,
    )
    return _recipient_out(ctx, r, secret)
