"""Erasure by crypto-shredding: a subject's data keys are destroyed first, then its rows.

Once the keys are gone the data is unreadable in every copy of the data store — backups,
replicas, dumps — which row deletion alone can never promise (docs/decisions/0002).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, func, select, update

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import privacy_state
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.preferences.suppression import preserve_suppressions
from pledge.rights import letters as request_letters
from pledge.subjects.models import (
    Interaction,
    Subject,
    SubjectIdentity,
    SubjectRecord,
    SubjectStatus,
)
from pledge.subjects.service import get_subject_row, retention_classes
from pledge.webhooks import service as webhooks


@dataclass(frozen=True)
class ErasureResult:
    subject_id: uuid.UUID
    status: str
    shredded_classes: list[str]
    kept_classes: list[str]
    records_deleted: int
    interactions_deleted: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_id": str(self.subject_id),
            "status": self.status,
            "shredded_classes": self.shredded_classes,
            "kept_classes": self.kept_classes,
            "records_deleted": self.records_deleted,
            "interactions_deleted": self.interactions_deleted,
        }


def _deleted(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def exempt_classes(ctx: TenantContext) -> dict[str, str]:
    """The retention classes the tenant keeps on every erasure: class → the legal duty."""
    return {
        name: str(cls["exempt_on_erasure"])
        for name, cls in ctx.settings.retention_classes.items()
        if cls.get("exempt_on_erasure")
    }


def erase_subject(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    *,
    keep_classes: Iterable[str] = (),
    erase_exempt: bool = False,
    reason: str | None = None,
) -> ErasureResult:
    """Crypto-shred a subject: destroy its data keys first, then delete its rows.

    `keep_classes` names retention classes held under a legal duty (e.g. billing records for
    7 years, seed 001 §12); their key and rows survive, everything else is gone, in every copy
    of the data store. The classes the tenant declares exempt from erasure are kept too, with
    no one naming them, unless `erase_exempt` (their legal period is over). Identities are
    always removed: nobody can look the person up again. The result's `kept_classes` are
    those that still hold data. Idempotent: erasing twice, or finishing an interrupted
    erasure, is safe. `reason`: why, when no request asked (the audit entry says it).

    The subject's `erased_at` is that of the first erasure: a kept class's period runs from
    it (`subjects.retention`), and erasing again must not lengthen it.

    The person's row is held first, before anything is audited (what was reached, the
    grounds ended): a change of the privacy state holds it, then audits (decision 0005).
    """
    privacy_state.hold_person(ctx, subject_id)
    subject = get_subject_row(ctx, subject_id)
    asked = set(keep_classes)
    unknown = sorted(c for c in asked if c not in retention_classes(ctx))
    if unknown:
        raise InvalidInput(f"unknown retention class {unknown[0][:40]!r}")
    tid = ctx.tenant_id
    # Kept is what holds data: a class asked for (or exempt) that the person has nothing in
    # is not "kept" — its key goes too, and the letter, the webhook and the audit say so.
    holding = set(
        ctx.session.scalars(
            select(SubjectRecord.key_class)
            .where(SubjectRecord.tenant_id == tid, SubjectRecord.subject_id == subject.id)
            .union(
                select(Interaction.key_class).where(
                    Interaction.tenant_id == tid, Interaction.subject_id == subject.id
                )
            )
        )
    )
    wanted = asked if erase_exempt else asked | exempt_classes(ctx).keys()
    keep = sorted(wanted & holding)
    # 0. The first erasure reaches the letters and files of the person's rights requests
    #    kept under the tenant's key: re-sealed under the subject's key while it exists.
    if subject.erased_at is None:
        request_letters.reach_erasure(ctx, subject.id)
    # The person's data waiting to go out under the tenant's key (a transfer of theirs still
    # retrying) is not sent after the erasure: at every erasure, as one may be queued since.
    webhooks.cancel_for_erasure(ctx, subject.id)
    # 1. Keys first: from this moment the data is unreadable everywhere, backups included.
    shredded = ctx.shred_subject(subject.id, keep=keep)
    # 2. Then the rows (of every class not kept, whether or not its key still existed).
    records = _deleted(
        ctx.session.execute(
            delete(SubjectRecord).where(
                SubjectRecord.tenant_id == tid,
                SubjectRecord.subject_id == subject.id,
                SubjectRecord.key_class.not_in(keep),
            )
        )
    )
    interactions = _deleted(
        ctx.session.execute(
            delete(Interaction).where(
                Interaction.tenant_id == tid,
                Interaction.subject_id == subject.id,
                Interaction.key_class.not_in(keep),
            )
        )
    )
    # Keep the keyed hash of an address that said no to marketing (docs/decisions/0008).
    preserve_suppressions(ctx, subject.id)
    ctx.session.execute(
        delete(SubjectIdentity).where(
            SubjectIdentity.tenant_id == tid, SubjectIdentity.subject_id == subject.id
        )
    )
    kept = keep  # their rows are all still there
    now = utcnow()
    status = SubjectStatus.PARTIALLY_ERASED if kept else SubjectStatus.ERASED
    ctx.session.execute(
        update(Subject)
        .where(Subject.tenant_id == tid, Subject.id == subject.id)
        .values(
            status=status.value, erased_at=func.coalesce(Subject.erased_at, now), updated_at=now
        )
    )
    if status is SubjectStatus.ERASED:
        # Nothing of the person is left to restrict. What a partial erasure keeps stays
        # restricted on the grounds the person has (Art. 18 outlives a legal duty to keep).
        privacy_state.end_restriction_grounds(ctx, subject.id, "erased")
    result = ErasureResult(subject.id, status.value, sorted(shredded), kept, records, interactions)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_ERASED,
        subject_id=subject.id,
        details={k: v for k, v in result.as_dict().items() if k != "subject_id"}
        | ({"reason": reason} if reason else {}),
    )
    return result
