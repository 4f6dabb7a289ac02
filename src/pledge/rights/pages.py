"""Console pages of rights requests: the queue, one request with its actions, the SLA chart.

Each action is a POST that calls the same service as the API (`pledge.rights.workflow`,
`fulfilment`, `service`), letters included, then returns to the request's page.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from pledge.access import service as access
from pledge.access.permissions import Scope
from pledge.consent import privacy_state
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput, NotFound
from pledge.purposes import service as purposes
from pledge.rights import (
    fulfilment,
    immediate,
    letters,
    reports,
    transitions,
    verification,
    workflow,
)
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.letters import TYPE_LABELS
from pledge.rights.models import (
    OPEN_STATES,
    RequestChannel,
    RequestState,
    RequestType,
    RightsRequest,
)
from pledge.rights.public import DATA_POINTS, JURISDICTIONS, OBJECTABLE, ConfirmForm
from pledge.rights.service import Requester
from pledge.subjects import importer
from pledge.subjects import service as subjects
from pledge.subjects.importer import ImportInvalid
from pledge.web.deps import PageContext, page_context
from pledge.web.limits import UPLOAD_MAX_BODY_BYTES
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[PageContext, Depends(page_context(Scope.REQUESTS_READ))]
Writer = Annotated[PageContext, Depends(page_context(Scope.REQUESTS_WRITE))]
S = RequestState
SOON_DAYS = 7
STATE_ORDER = [
    S.RECEIVED,
    S.AWAITING_VERIFICATION,
    S.VERIFIED,
    S.IN_PROGRESS,
    S.PAUSED,
    S.APPEALED,
    S.COMPLETED,
    S.DENIED,
    S.WITHDRAWN,
    S.CLOSED_UNVERIFIED,
    S.APPEAL_DENIED,
]
DENIAL_REASONS = {
    "refused": "Refused, for the reasons given",
    "identity_not_verified": "We could not verify the requester's identity",
    "manifestly_unfounded": "Manifestly unfounded or excessive",
    "exemption": "An exemption of the law applies",
    "no_right": "The law grants no such right here",
}
PAUSE_REASONS = {
    "clarification": "We need the request clarified",
    "identity": "We need proof of identity",
    "fee": "A fee is due (repetitive request)",
}
DONE = {
    "assigned": "Assignment saved.",
    "verified": "The request is verified.",
    "not_verified": "The code or the details did not match; the request is still waiting.",
    "code_resent": "A new code is on its way to the requester.",
    "started": "Work on the request has started.",
    "fulfilled": "The request is answered; the letter is on its way to the requester.",
    "denied": "The request is refused; the letter with the reasons is on its way.",
    "extended": "The deadline is extended; the requester is told why.",
    "fee": "The fee is recorded.",
    "paused": "The request waits for the requester; they are asked for what is missing.",
    "resumed": "The request is in progress again.",
    "appealed": "The appeal is recorded.",
    "appeal_decided": "The appeal is decided; the requester is told.",
    "appeal_extended": "The time to decide the appeal is extended; the requester is told why.",
    "withdrawn": "The request is withdrawn.",
    "restriction_lifted": "The restriction is lifted; the person was told why.",
    "poa_accepted": "The power of attorney is accepted: the request is verified without the "
    "person's confirmation. The person is told by e-mail when their address is on file.",
    "poa_rejected": "The power of attorney is not accepted: the person is asked to confirm, "
    "as for any agent's request.",
}


def state_label(state: str) -> str:
    return state.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Due:
    """How urgent a due date is — by colour (the class) and by words (the text)."""

    css: str
    text: str


def due_status(due_on: date | None, today: date) -> Due:
    if due_on is None:
        return Due("due-none", "No due date")
    days = (due_on - today).days
    if days < 0:
        return Due("due-overdue", f"Overdue by {-days} day{'s' if days != -1 else ''}")
    if days == 0:
        return Due("due-soon", "Due today")
    if days <= SOON_DAYS:
        return Due("due-soon", f"Due in {days} day{'s' if days != 1 else ''}")
    return Due("due-later", f"Due in {days} days")


def _staff_names(page: PageContext) -> dict[str, str]:
    """Staff members' addresses by id, to say who a request is assigned to."""
    ctx = page.ctx
    return {str(u.id): access.user_email(ctx.keystore, u) for u in access.list_users(ctx)}


# ---------------------------------------------------------------------------------------------
# The queue


@router.get("/requests")
def queue(
    request: Request, page: Reader, state: str = "", type: str = "", mine: str = ""
) -> Response:
    states = [state] if state in S._value2member_map_ else []
    types = [type] if type in RequestType._value2member_map_ else []
    flt = rights.QueueFilter(states=states, types=types, assigned_to=page.user.id if mine else None)
    rows = rights.queue(page.ctx, flt)
    today = utcnow().date()
    return render(
        request,
        "rights/queue.html",
        {
            "rows": rows,
            "due": {r.id: due_status(r.due_on, today) for r in rows},
            "staff": _staff_names(page),
            "me": page.user.id,
            "states": [(s.value, state_label(s.value)) for s in STATE_ORDER],
            "types": TYPE_LABELS,
            "chosen": {
                "state": state if states else "",
                "type": type if types else "",
                "mine": bool(mine),
            },
            "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            "state_label": state_label,
            "jurisdictions": JURISDICTIONS,
        },
    )


@router.get("/requests/sla")
def sla(request: Request, page: Reader) -> Response:
    report = reports.sla(page.ctx)
    bars = [
        (s.value, state_label(s.value), report.open_by_state.get(s.value, 0))
        for s in STATE_ORDER
        if s in OPEN_STATES
    ]
    top = max([n for _, _, n in bars] + [1])
    return render(
        request,
        "rights/sla.html",
        {
            "report": report,
            # Bar lengths in twentieths: a class per step (the CSP forbids inline styles).
            "bars": [(key, label, n, round(n * 20 / top)) for key, label, n in bars],
            "open_total": sum(n for _, _, n in bars),
        },
    )


# ---------------------------------------------------------------------------------------------
# One request


def allowed_actions(
    today: date,
    request: RightsRequest,
    first_due: date,
    *,
    restriction_in_force: bool = False,
    appeal_due: date | None = None,
    appealable: bool = False,
) -> set[str]:
    """The actions the state machine and the jurisdiction's rule allow now (the services
    check again; this only decides which forms to show). `restriction_in_force`: the person
    is restricted on this request's ground (an appeal refused since keeps it in force).
    `appeal_due`: when an appeal must be decided (the last day to extend it). `appealable`:
    the requester may appeal now (`transitions.appeal_refusal`: an answer, or our silence
    past the due date, where the law grants an appeal)."""
    state = S(request.state)
    nexts = transitions.TRANSITIONS[state]
    law = rights.rule(request)
    actions: set[str] = set()
    if state is S.AWAITING_VERIFICATION:
        actions.add("verify")
    if state is S.VERIFIED:
        actions.add("start")
    if state in {S.VERIFIED, S.IN_PROGRESS}:
        actions.add("fulfil")
    if S.DENIED in nexts:
        actions.add("deny")
    if S.PAUSED in nexts:
        actions.add("pause")
    if state is S.PAUSED:
        actions.add("resume")
    if S.WITHDRAWN in nexts:
        actions.add("withdraw")
    if appealable:
        actions.add("appeal")
    if request.type == RequestType.RESTRICTION.value and restriction_in_force:
        actions.add("lift_restriction")
    if state is S.APPEALED:
        actions.add("appeal_decision")
        if (
            not request.appeal_extended
            and law.appeal_extension is not None
            and appeal_due is not None
            and today <= appeal_due
        ):
            actions.add("extend_appeal")
    if state in OPEN_STATES and (
        (law.fee_allowed in ("excessive_only", "after_free") and request.repetitive)
        or (law.fee_allowed == "access_not_excessive" and request.type in transitions.ACCESS_LIKE)
    ):
        actions.add("fee")
    if (
        state in OPEN_STATES - {S.APPEALED}
        and request.extended_at is None
        and law.extension is not None
        and today <= first_due
    ):
        actions.add("extend")
    return actions


# ---------------------------------------------------------------------------------------------
# A list of opt-outs (an authorized agent's): checked whole, then answered at once

LIST_MAX_BYTES = 5 * 1024 * 1024
LIST_MAX_LINES = 2_000  # one transaction (~2 s of the write lock on SQLite); more: the CLI or API
LIST_TYPES = [(t.value, TYPE_LABELS[t.value]) for t in immediate.TYPES_IN_ORDER]
US_JURISDICTIONS = [(code, label) for code, label in JURISDICTIONS.items() if code.startswith("US")]


def _list_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: Sequence[str] = (),
    more: int = 0,
    done: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "rights/optouts.html",
        {
            "types": LIST_TYPES,
            "jurisdictions": US_JURISDICTIONS,
            "values": {
                "type": "",
                "jurisdiction": "",
                "agent_name": "",
                "agent_email": "",
                "agent_permission": "",
                **(values or {}),
            },
            "errors": errors,
            "more": more,
            "done": done,
            "max_lines": f"{LIST_MAX_LINES:,}",
            "max_mb": LIST_MAX_BYTES // (1024 * 1024),
        },
        status_code=status_code,
    )


@router.get("/requests/opt-outs")
def opt_out_list_form(
    request: Request,
    page: Writer,
    answered: Annotated[int | None, Query(ge=0)] = None,
    matched: Annotated[int, Query(ge=0)] = 0,
    agent: bool = False,
    type: str = RequestType.OPT_OUT_SALE.value,
) -> Response:
    """The form; after a list was answered (redirected here, so that reloading the page does
    not send the list again), what became of it."""
    if type not in immediate.TYPES_VALUES:
        type = RequestType.OPT_OUT_SALE.value
    done = None
    if answered is not None:
        done = {"count": answered, "matched": min(matched, answered), "agent": agent, "type": type}
    return _list_page(request, values={"type": type}, done=done)


@router.post("/requests/opt-outs", max_body_size=UPLOAD_MAX_BODY_BYTES)
def opt_out_list(
    request: Request,
    page: Writer,
    file: Annotated[UploadFile | None, File()] = None,
    type: Annotated[str, Form()] = RequestType.OPT_OUT_SALE.value,
    jurisdiction: Annotated[str, Form()] = "US-CA",
    agent_name: Annotated[str, Form(max_length=200)] = "",
    agent_email: Annotated[str, Form(max_length=320)] = "",
    agent_permission: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    values = {
        "type": type,
        "jurisdiction": jurisdiction,
        "agent_name": agent_name,
        "agent_email": agent_email,
        "agent_permission": agent_permission,
    }
    agent = bool(agent_name.strip() or agent_email.strip())
    data = file.file.read(LIST_MAX_BYTES + 1) if file is not None and file.filename else b""
    try:
        if not data:
            raise InvalidInput("choose the list's file (a CSV with an email column)")
        if len(data) > LIST_MAX_BYTES:
            raise InvalidInput(f"the file is larger than {LIST_MAX_BYTES // (1024 * 1024)} MB")
        listed = immediate.read_list(
            page.ctx,
            importer.decode_text(data, done="received"),
            request_type=type,
            jurisdiction=jurisdiction,
            channel=RequestChannel.AUTHORIZED_AGENT.value if agent else RequestChannel.STAFF.value,
            agent=Requester("", "", agent_name.strip(), agent_email.strip(), agent_permission),
            limit=LIST_MAX_LINES,
        )
    except ImportInvalid as exc:
        shown = [str(e) for e in exc.errors[:50]]
        return _list_page(
            request, values=values, errors=shown, more=len(exc.errors) - len(shown), status_code=422
        )
    except immediate.ListTooLong as exc:
        more = f"{exc.detail} here: use `pledge rights opt-outs` or the API for longer lists"
        return _list_page(request, values=values, errors=[more], status_code=422)
    except InvalidInput as exc:
        return _list_page(request, values=values, errors=[exc.detail], status_code=422)
    answered = immediate.answer(page.ctx, listed)
    matched = sum(1 for r in answered if r.subject_id is not None)
    query = urlencode({"answered": len(answered), "matched": matched, "agent": agent, "type": type})
    return RedirectResponse(f"/requests/opt-outs?{query}", status_code=303)


@router.get("/requests/{request_id}")
def detail(request: Request, request_id: str, page: Reader, done: str = "") -> Response:
    ctx = page.ctx
    item = rights.get_request(ctx, request_id)
    private = rights.read_requester(ctx, item, via="request_page")
    details: dict[str, Any] = private.get("details") or {}
    due = rights.deadlines(ctx, item)
    today = utcnow().date()
    files = letters.list_artifacts(ctx, item)
    rtype = item.type
    fulfil_form: dict[str, Any] = {}
    if rtype == RequestType.ERASURE.value:
        exempt = {
            name: str(cls.get("exempt_on_erasure"))
            for name, cls in ctx.settings.retention_classes.items()
            if isinstance(cls, dict) and cls.get("exempt_on_erasure")
        }
        fulfil_form["exempt"] = exempt
        fulfil_form["classes"] = sorted(
            subjects.retention_classes(ctx) - {"standard"} - set(exempt)
        )
    if rtype == RequestType.OBJECTION.value:
        fulfil_form["objectable"] = [
            p
            for p in purposes.list_purposes(ctx)
            if p.lawful_basis in OBJECTABLE and not p.is_marketing
        ]
    in_force = item.type == RequestType.RESTRICTION.value and item.subject_id is not None
    if in_force:
        assert item.subject_id is not None
        try:
            grounds = subjects.get_subject_row(ctx, item.subject_id).restriction_grounds
        except NotFound:  # no row left for the person: nothing restricted to lift
            grounds = []
        in_force = privacy_state.request_ground(item.id) in grounds
    actions = (
        allowed_actions(
            today,
            item,
            due.first_due,
            restriction_in_force=in_force,
            appeal_due=due.appeal_due,
            appealable=transitions.appeal_refusal(ctx, item) is None,
        )
        if page.can(Scope.REQUESTS_WRITE)
        else set()
    )
    # An agent's power of attorney waiting for staff: no code was sent (none to type or
    # send again) — the decision is the action.
    poa_pending = (
        S(item.state) is S.AWAITING_VERIFICATION
        and ((private.get("agent") or {}).get("power_of_attorney") or {}).get("decision")
        == "pending"
    )
    if poa_pending and "verify" in actions:
        actions.add("power_of_attorney")
    return render(
        request,
        "rights/detail.html",
        {
            "item": item,
            "private": private,
            "details": details,
            "due": due,
            # The live due date, not the cache: a pause that stops the clock moves it daily.
            "due_status": due_status(
                due.appeal_due
                if item.state == S.APPEALED.value
                else due.due
                if S(item.state) in OPEN_STATES
                else None,
                today,
            ),
            "law": rights.rule(item),
            "need": verification.requirement(item),
            "timeline": rights.timeline(ctx, item),
            "letters": [f for f in files if f.kind == "letter"],
            "files": [f for f in files if f.kind != "letter"],
            "actions": actions,
            "poa_pending": poa_pending,
            "poa_law": verification.power_of_attorney_law(item.jurisdiction),
            "fulfil_form": fulfil_form,
            "staff": _staff_names(page),
            "me": page.user.id,
            "type_label": TYPE_LABELS.get(rtype, rtype),
            "jurisdiction_label": JURISDICTIONS.get(item.jurisdiction, item.jurisdiction),
            "state_label": state_label,
            "notice": DONE.get(done),
            "data_points": DATA_POINTS,
            "denial_reasons": DENIAL_REASONS,
            "pause_reasons": PAUSE_REASONS,
        },
    )


@router.get("/requests/{request_id}/artifacts/{artifact_id}")
def artifact(request: Request, request_id: str, artifact_id: str, page: Reader) -> Response:
    """A letter, shown as a page; any other file, downloaded. Audited."""
    item = rights.get_request(page.ctx, request_id)
    found, content = letters.read_artifact(page.ctx, item, artifact_id, by="staff")
    if found.kind == "letter":
        return render(
            request,
            "rights/letter.html",
            {"item": item, "artifact": found, "text": content.decode()},
        )
    return Response(
        content,
        media_type=found.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{found.name}"',
            "Cache-Control": "no-store",
        },
    )


def _back(request_id: uuid.UUID, done: str) -> RedirectResponse:
    return RedirectResponse(f"/requests/{request_id}?done={done}", status_code=303)


class ReasonForm(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    code: str = Field(default="refused", max_length=40)


Reason = Annotated[ReasonForm, Form()]


@router.post("/requests/{request_id}/assign")
def assign(
    request_id: str,
    page: Writer,
    to: Annotated[str, Form(max_length=10)] = "me",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    item = rights.get_request(page.ctx, request_id)
    transitions.assign(page.ctx, item, page.user.id if to == "me" else None)
    # Back where the form was, if that was a page of the queue (never an outside address).
    if next.startswith("/requests") and "//" not in next:
        return RedirectResponse(next, status_code=303)
    return _back(item.id, "assigned")


@router.post("/requests/{request_id}/verify")
def verify(request_id: str, page: Writer, form: Annotated[ConfirmForm, Form()]) -> Response:
    """Staff type the code the requester read to them (a phone call, a letter)."""
    item = rights.get_request(page.ctx, request_id)
    outcome = verification.confirm(
        page.ctx,
        item,
        code=form.code,
        data_points=form.supplied(),
        declaration=form.declaration == "yes",
    )
    return _back(item.id, "verified" if outcome.verified else "not_verified")


class OtherMeansForm(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    declaration: str = Field(default="", max_length=10)


@router.post("/requests/{request_id}/verify-otherwise")
def verify_otherwise(
    request_id: str, page: Writer, form: Annotated[OtherMeansForm, Form()]
) -> Response:
    """Staff verified the requester another way (at a desk, by calling them back)."""
    item = rights.get_request(page.ctx, request_id)
    verification.verify_otherwise(
        page.ctx, item, form.reason, declaration=form.declaration == "yes"
    )
    return _back(item.id, "verified")


class PowerOfAttorneyForm(BaseModel):
    decision: str = Field(pattern="^(accept|reject)$")
    reason: str = Field(min_length=1, max_length=2000)
    declaration: str = Field(default="", max_length=10)


@router.post("/requests/{request_id}/power-of-attorney")
def power_of_attorney(
    request_id: str, page: Writer, form: Annotated[PowerOfAttorneyForm, Form()]
) -> Response:
    """Accept the agent's power of attorney (verified without the person's confirmation)
    or reject it (the person is sent the code to confirm)."""
    item = rights.get_request(page.ctx, request_id)
    if form.decision == "accept":
        verification.accept_power_of_attorney(
            page.ctx, item, form.reason, declaration=form.declaration == "yes"
        )
        return _back(item.id, "poa_accepted")
    workflow.reject_power_of_attorney(page.ctx, item, form.reason)
    return _back(item.id, "poa_rejected")


@router.post("/requests/{request_id}/resend-verification")
def resend_verification(request_id: str, page: Writer) -> Response:
    """A new code and link to the requester (lost, or locked by wrong codes)."""
    item = rights.get_request(page.ctx, request_id)
    workflow.resend_verification(page.ctx, item, by="staff")
    return _back(item.id, "code_resent")


@router.post("/requests/{request_id}/start")
def start(request_id: str, page: Writer) -> Response:
    item = rights.get_request(page.ctx, request_id)
    fulfilment.start(page.ctx, item)
    return _back(item.id, "started")


def _staff_input(form: dict[str, str]) -> StaffInput:
    """The fulfil form: holds `hold:<class>`, grounds `grounds:<purpose>`, the rest by name."""
    decision = form.get("decision", "approve")
    if decision not in {"approve", "reject"}:
        raise InvalidInput("decide to approve or reject the correction")
    return StaffInput(
        approve=decision == "approve",
        holds={
            k.removeprefix("hold:"): v.strip()
            for k, v in form.items()
            if k.startswith("hold:") and v.strip()
        },
        compelling_grounds={
            k.removeprefix("grounds:"): v.strip()
            for k, v in form.items()
            if k.startswith("grounds:") and v.strip()
        },
        note=form.get("note", "").strip()[:5000],
        transfer_url=form.get("transfer_url", "").strip()[:500],
    )


@router.post("/requests/{request_id}/fulfil")
async def fulfil(request: Request, request_id: str, page: Writer) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    staff = _staff_input(form)
    item = rights.get_request(page.ctx, request_id)
    fulfilment.fulfil(page.ctx, item, staff)
    return _back(item.id, "fulfilled")


@router.post("/requests/{request_id}/deny")
def deny(request_id: str, page: Writer, form: Reason) -> Response:
    item = rights.get_request(page.ctx, request_id)
    code = form.code if form.code in DENIAL_REASONS else "refused"
    fulfilment.deny(page.ctx, item, code, form.reason)
    return _back(item.id, "denied")


@router.post("/requests/{request_id}/lift-restriction")
def lift_restriction(request_id: str, page: Writer, form: Reason) -> Response:
    """Lift a restriction the person asked for: they are told first, with the reason."""
    item = rights.get_request(page.ctx, request_id)
    fulfilment.lift_restriction(page.ctx, item, form.reason)
    return _back(item.id, "restriction_lifted")


@router.post("/requests/{request_id}/extend")
def extend(request_id: str, page: Writer, form: Reason) -> Response:
    item = rights.get_request(page.ctx, request_id)
    workflow.extend(page.ctx, item, form.reason)
    return _back(item.id, "extended")


class FeeForm(BaseModel):
    amount: Decimal = Field(ge=0, le=1000, decimal_places=2)
    reason: str = Field(default="", max_length=2000)


@router.post("/requests/{request_id}/fee")
def fee(request_id: str, page: Writer, form: Annotated[FeeForm, Form()]) -> Response:
    item = rights.get_request(page.ctx, request_id)
    transitions.record_fee(page.ctx, item, int(form.amount * 100), form.reason)
    return _back(item.id, "fee")


@router.post("/requests/{request_id}/pause")
def pause(request_id: str, page: Writer, form: Reason) -> Response:
    item = rights.get_request(page.ctx, request_id)
    code = form.code if form.code in PAUSE_REASONS else "clarification"
    workflow.ask_for_information(page.ctx, item, code, form.reason.strip())
    return _back(item.id, "paused")


@router.post("/requests/{request_id}/resume")
def resume(request_id: str, page: Writer) -> Response:
    item = rights.get_request(page.ctx, request_id)
    transitions.resume(page.ctx, item)
    return _back(item.id, "resumed")


@router.post("/requests/{request_id}/appeal")
def appeal(request_id: str, page: Writer) -> Response:
    """Record an appeal the requester sent by letter or e-mail."""
    item = rights.get_request(page.ctx, request_id)
    transitions.appeal(page.ctx, item)
    return _back(item.id, "appealed")


@router.post("/requests/{request_id}/appeal-decision")
def appeal_decision(
    request_id: str,
    page: Writer,
    decision: Annotated[str, Form(max_length=10)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if decision not in {"grant", "refuse"}:
        raise InvalidInput("decide to grant or refuse the appeal")
    item = rights.get_request(page.ctx, request_id)
    workflow.decide_appeal(page.ctx, item, grant=decision == "grant", reason=reason.strip())
    return _back(item.id, "appeal_decided")


@router.post("/requests/{request_id}/extend-appeal")
def extend_appeal(request_id: str, page: Writer, form: Reason) -> Response:
    item = rights.get_request(page.ctx, request_id)
    workflow.extend_appeal(page.ctx, item, form.reason)
    return _back(item.id, "appeal_extended")


@router.post("/requests/{request_id}/withdraw")
def withdraw(request_id: str, page: Writer) -> Response:
    """The requester withdrew the request (they said so by e-mail, on the phone)."""
    item = rights.get_request(page.ctx, request_id)
    fulfilment.withdraw(page.ctx, item)
    return _back(item.id, "withdrawn")
