"""REST routes of the gate, audiences and the lawful-basis hygiene report (under /api/v1)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.core.errors import NotFound
from pledge.gate import audience as gate_audience
from pledge.gate import hygiene
from pledge.gate import service as gate
from pledge.gate.schemas import (
    REASON_TEXT,
    AudienceIn,
    AudienceOut,
    DecisionOut,
    GateCheckIn,
    HygieneErasedOut,
    HygieneEraseIn,
    HygieneOut,
)
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1", tags=["gate"], responses=PROBLEMS)

Check = Annotated[TenantContext, Depends(api_context(Scope.GATE_CHECK))]
Reports = Annotated[TenantContext, Depends(api_context(Scope.REPORTS_READ))]
Erase = Annotated[TenantContext, Depends(api_context(Scope.SUBJECTS_ERASE))]


def decision_out(decision: gate.Decision) -> DecisionOut:
    return DecisionOut(
        allowed=decision.allowed,
        subject_id=str(decision.subject_id),
        purpose=decision.purpose,
        lawful_basis=decision.basis,
        channel=decision.channel,
        topic=decision.topic,
        at=decision.at,
        reasons=decision.reasons,
        explanations=[REASON_TEXT[r] for r in decision.reasons],
    )


def subject_by_email(ctx: TenantContext, email: str) -> uuid.UUID:
    found = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
    if found is None:
        raise NotFound("no subject with that e-mail")
    return found


@router.post("/gate/check", response_model=DecisionOut)
def check(body: GateCheckIn, ctx: Check) -> DecisionOut:
    """May this subject's data be used for this purpose on this channel now (or `at`)? The
    answer lists every reason against, as codes and in words. Audited."""
    subject_id = body.subject_id or subject_by_email(ctx, body.email or "")
    decision = gate.may(
        ctx,
        subject_id,
        body.purpose,
        body.channel.value if body.channel else None,
        topic=body.topic,
        at=body.at,
    )
    return decision_out(decision)


@router.post("/gate/audience", response_model=AudienceOut)
def audience(body: AudienceIn, ctx: Check) -> AudienceOut:
    """Everyone the gate allows for a purpose and channel — among `subject_ids`, or the whole
    tenant — in one query, with a digest of the list. Audited with the counts and digest."""
    result = gate_audience.audience(
        ctx,
        body.purpose,
        body.channel.value if body.channel else None,
        topic=body.topic,
        subject_ids=body.subject_ids,
    )
    return AudienceOut(
        purpose=result.purpose,
        channel=result.channel,
        topic=result.topic,
        candidates=result.candidates,
        allowed_count=len(result.allowed),
        denied=result.denied,
        digest=result.digest,
        allowed_ids=[str(i) for i in result.allowed],
    )


@router.get("/reports/lawful-basis", response_model=HygieneOut)
def lawful_basis_report(ctx: Reports) -> HygieneOut:
    """Active subjects held with no lawful basis left for any purpose (seed 000: "a regular
    process for removing EU contact info where you no longer have a lawful basis")."""
    result = hygiene.report(ctx)
    return HygieneOut(
        generated_at=result.generated_at,
        count=result.count,
        purposes_considered=result.purposes,
        digest=result.digest,
        subject_ids=[str(i) for i in result.subject_ids],
    )


@router.post("/reports/lawful-basis/erase", response_model=HygieneErasedOut)
def erase_without_basis(body: HygieneEraseIn, ctx: Erase) -> HygieneErasedOut:
    """Crypto-erase those of the given subjects that still have no lawful basis (re-checked
    now); the others are listed as skipped. Needs `confirm: true`."""
    result = hygiene.erase_without_basis(
        ctx, body.subject_ids, confirm=body.confirm, keep_classes=body.keep_classes
    )
    return HygieneErasedOut(
        erased_count=result.count,
        erased=[str(i) for i in result.erased],
        skipped=result.skipped,
    )
