"""A consent recorded together with the browser signals that came with it.

The ledger row keeps the signals as proof (GPC, DNT, IP and user agent as MACs); the signals
are also *honoured* — GPC as an opt-out of sale and sharing (11 CCR §7025), DNT as the
tenant's policy says — in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pledge.access.context import TenantContext
from pledge.consent import service as consent
from pledge.consent.models import ConsentRecord
from pledge.consent.service import ConsentInput, Signals
from pledge.notices import service as notices
from pledge.notices.models import NoticeVersion
from pledge.purposes import service as purposes
from pledge.signals import service as signals_service


@dataclass(frozen=True)
class Recorded:
    record: ConsentRecord
    signal_effects: list[str]


def record_with_signals(
    ctx: TenantContext, subject_id: uuid.UUID | str, data: ConsentInput, signals: Signals
) -> Recorded:
    record = consent.record_consent(ctx, subject_id, data, signals)
    effects = signals_service.apply_to_subject(ctx, record.subject_id, signals)
    return Recorded(record, effects)


def wording_in_force(
    ctx: TenantContext, purpose_slug: str, point_slug: str | None = None, language: str = "en"
) -> NoticeVersion | None:
    """The consent wording version shown now for a purpose — at a collection point, else the
    purpose's default — for recording a consent given where no form cited a version (a call,
    a letter, staff at a trade show)."""
    purpose = purposes.get_purpose(ctx, purpose_slug)
    notice_id = purpose.consent_notice_id
    if point_slug:
        point = purposes.get_collection_point(ctx, point_slug)
        notice_id = next(
            (w for p, w in purposes.collection_point_purposes(ctx, point) if p.id == purpose.id),
            notice_id,
        )
    return notices.current_version(ctx, notice_id, language) if notice_id else None
