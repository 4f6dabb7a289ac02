"""REST routes of the audit log: list entries, verify the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.audit import service
from pledge.core.errors import InvalidInput
from pledge.core.ids import parse_id
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.AUDIT_READ))]
# `seq` is a BIGINT: a cursor past it is no entry's, and the database could not compare it.
MAX_SEQ = 2**63 - 1


class AuditEntryOut(BaseModel):
    seq: int
    occurred_at: str
    event: str
    actor: dict[str, str | None]
    subject_id: str | None
    details: dict[str, Any]
    mac: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: int | None


class CheckpointOut(BaseModel):
    seq: int = Field(description="The entry of the chain anchored in the keystore.")
    taken_at: datetime = Field(description="When the checkpoint was taken (UTC).")


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    checkpoint: CheckpointOut | None = Field(
        description=(
            "The keystore checkpoint in force when the chain was verified (this verification's "
            "own is taken once it has been recorded). Null when none is taken yet: until the "
            "first, entries cut from the end of the chain, with its head rewound to match, "
            "cannot be detected."
        )
    )
    anchors: int | None = Field(
        description=(
            "The entry this verification anchors in the keystore once recorded, moving the "
            "checkpoint forward. Null for a broken chain (never anchored), or when no entry "
            "after the checkpoint was verified."
        )
    )


@router.get("/entries", response_model=AuditPage)
def list_entries(
    ctx: Read,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="seq of the last entry seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    subject_id: Annotated[str | None, Query(max_length=40)] = None,
) -> AuditPage:
    subject = None
    if subject_id is not None:
        subject = parse_id(subject_id)
        if subject is None:
            raise InvalidInput("subject_id is not an id")
    entries = service.list_entries(ctx, after_seq=cursor, limit=limit + 1, subject_id=subject)
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(
        items=[AuditEntryOut(**service.entry_as_dict(e)) for e in entries],
        next_cursor=entries[-1].seq if more and entries else None,
    )


@router.post("/verify", response_model=VerifyOut)
def verify(ctx: Read) -> VerifyOut:
    verification = service.verify_and_record(ctx)
    anchored = verification.checkpoint
    return VerifyOut(
        **verification.verified.as_dict(),
        checkpoint=CheckpointOut(seq=anchored.seq, taken_at=anchored.taken_at)
        if anchored
        else None,
        anchors=verification.anchors,
    )
