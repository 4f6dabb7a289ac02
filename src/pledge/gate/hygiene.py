"""The lawful-basis hygiene report: who do we hold with no lawful basis left for anything?

Seed 000 (controller checklist, "Lawfulness of Processing"): "Create a regular process for
removing EU contact info where you no longer have a lawful basis to process their data or if
the contact withdraws their prior consent." The report is one set-based query built from the
gate's own rules (`gate.audience.audience_conditions`), so the report and the gate cannot
disagree; the bulk erasure re-runs it and erases only those still without a basis.

A subject keeps a basis for a purpose when the gate would let the purpose use it on no
particular channel, i.e. it has
* a consent in force (consent purposes; a child's consent needs a parent's), or
* a relationship in force (contract, legitimate interest) that is not objected to, or
* a relationship recorded for a legal-obligation, vital-interest or public-task purpose: such a
  purpose applies to the people it was recorded for, not to everyone the tenant holds —
  otherwise a single "keep marketing preferences" obligation (seed 004) would justify keeping
  every contact for ever.
A child without a parent's consent, under a tenant's stricter children's policy, keeps a basis
only for a legal obligation or vital-interest purpose recorded for them (the gate's rule): the
seeds that set such a policy promise not to hold such a child's data at all.
Restricted subjects are left out: GDPR Art. 18(1)(b)-(c) restriction is what a person asks
for *instead of* erasure, so the data must be stored. Partially erased subjects hold only data
kept under a legal duty and are left out too.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import privacy_state
from pledge.consent.models import SubjectPurpose
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.purposes import service as purposes
from pledge.purposes.models import LawfulBasis, Purpose
from pledge.subjects import erasure
from pledge.subjects.models import Subject, SubjectStatus

CHUNK = 1_000
MAX_ERASE = 10_000


def _recorded(tenant_id: uuid.UUID, purpose: Purpose, now: datetime) -> ColumnElement[bool]:
    """The subject has a relationship in force recorded for the purpose."""
    sp = SubjectPurpose
    return exists().where(
        and_(
            sp.tenant_id == tenant_id,
            sp.subject_id == Subject.id,
            sp.purpose_id == purpose.id,
            sp.since <= now,
            or_(sp.until.is_(None), sp.until > now),
        )
    )


def basis_holds(tenant_id: uuid.UUID, purpose: Purpose, now: datetime) -> ColumnElement[bool]:
    """SQL: the purpose may still rely on the subject (the gate's rules, no channel)."""
    # The basis alone: an opt-out of sale (GPC) or a limit on sensitive data restricts a use
    # and must be kept to be honoured — never a deletion request (STANDARDS.md).
    conds = gate_audience.audience_conditions(tenant_id, purpose, None, None, now, use_limits=False)
    basis = purpose.lawful_basis
    if basis != LawfulBasis.CONSENT.value and basis not in gate.RELATIONSHIP_BASES:
        conds.append(_recorded(tenant_id, purpose, now))
    return and_(*conds)


def without_basis(ctx: TenantContext, now: datetime) -> Select[tuple[uuid.UUID]]:
    """The one query: active, unrestricted subjects for whom no purpose's basis holds."""
    holds = [basis_holds(ctx.tenant_id, p, now) for p in purposes.list_purposes(ctx)]
    return (
        select(Subject.id)
        .where(
            Subject.tenant_id == ctx.tenant_id,
            Subject.status == SubjectStatus.ACTIVE.value,
            Subject.restricted_at.is_(None),
            not_(or_(*holds)) if holds else not_(false()),
        )
        .order_by(Subject.id)
    )


def digest(ids: Iterable[uuid.UUID]) -> str:
    return hashlib.sha256(b"".join(i.bytes for i in sorted(ids))).hexdigest()


@dataclass(frozen=True)
class HygieneReport:
    generated_at: datetime
    subject_ids: list[uuid.UUID]
    purposes: int  # how many purposes were considered
    digest: str

    @property
    def count(self) -> int:
        return len(self.subject_ids)


def report(ctx: TenantContext) -> HygieneReport:
    """Who is held with no lawful basis left; one audit entry with the count and a digest of
    the ids (the ids themselves go to the reader, not into the trail)."""
    now = utcnow()
    ids = list(ctx.session.scalars(without_basis(ctx, now)))
    considered = len(purposes.list_purposes(ctx))
    result = HygieneReport(now, ids, considered, digest(ids))
    audit.record(
        ctx,
        AuditEvent.HYGIENE_REPORTED,
        details={"count": result.count, "purposes": considered, "digest": result.digest},
    )
    return result


@dataclass(frozen=True)
class HygieneErasure:
    erased: list[uuid.UUID]
    skipped: list[str]  # asked for, but not (or no longer) without a basis — or not ours

    @property
    def count(self) -> int:
        return len(self.erased)


def erase_without_basis(
    ctx: TenantContext,
    subject_ids: Sequence[uuid.UUID | str],
    *,
    confirm: bool,
    keep_classes: Sequence[str] = (),
) -> HygieneErasure:
    """Crypto-erase those of `subject_ids` that still have no lawful basis, re-checked now in
    this transaction: a subject who consented since the report was read is skipped, and so is
    an id that is not a subject of this tenant (answered like any other skip: no oracle).
    The classes the tenant keeps on erasure are kept, as `keep_classes` are."""
    if not confirm:
        raise InvalidInput("erasure cannot be undone: confirm it (confirm: true)")
    if len(subject_ids) > MAX_ERASE:
        raise InvalidInput(f"at most {MAX_ERASE} subjects per call")
    asked: dict[str, uuid.UUID | None] = {}
    for raw in subject_ids:
        try:
            asked[str(raw)] = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        except ValueError:
            asked[str(raw)[:40]] = None
    wanted = sorted({u for u in asked.values() if u is not None})
    # Everyone asked for is held before the first of them is erased (audited), then checked
    # again: a person's row comes before the audit chain's head (decision 0005), and a
    # restriction committed meanwhile is seen.
    privacy_state.hold_people(ctx, wanted)
    now = utcnow()
    base = without_basis(ctx, now)
    found: set[uuid.UUID] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(ctx.session.scalars(base.where(Subject.id.in_(chunk))))
    erased = sorted(found)
    kept: set[str] = set()
    for subject_id in erased:
        # The classes the tenant keeps on erasure (a legal duty) are kept here too, always.
        kept.update(erasure.erase_subject(ctx, subject_id, keep_classes=keep_classes).kept_classes)
    skipped = [text for text, u in asked.items() if u not in found]
    audit.record(
        ctx,
        AuditEvent.HYGIENE_ERASED,
        details={
            "requested": len(asked),
            "erased": len(erased),
            "skipped": len(skipped),
            "digest": digest(erased),
            "kept_classes": sorted(kept),  # those that still hold someone's data
        },
    )
    return HygieneErasure(erased, skipped)
