"""The consent ledger and the other lawful bases a subject is held under.

Every grant and withdrawal is a new ledger row with its proof, and the current state is kept
in step in the same transaction; relationships and objections (GDPR Art. 21) are the other
bases' state. The subject's own flags the gate reads are in `privacy_state`. Nothing here
commits; every change writes its audit entry.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import bindparam, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import receipts
from pledge.consent.models import (
    ConsentAction,
    ConsentMethod,
    ConsentRecord,
    ConsentState,
    Objection,
    SubjectPurpose,
)
from pledge.core.clock import utcnow
from pledge.core.db import insert_new
from pledge.core.errors import InvalidInput, NotFound, SubjectErased
from pledge.core.ids import new_id
from pledge.crypto.aead import derive
from pledge.crypto.keystore import KeyMissing, KeyShredded
from pledge.notices import service as notices
from pledge.notices.models import NoticeVersion
from pledge.purposes import service as purposes
from pledge.purposes.models import CollectionPoint, LawfulBasis, Purpose
from pledge.subjects import service as subjects
from pledge.subjects.models import STANDARD_CLASS, Subject, SubjectStatus
from pledge.webhooks import service as webhooks


@dataclass(frozen=True)
class Signals:
    """What the person's browser or the integrator tells about the request."""

    gpc: bool = False
    dnt: bool | None = None
    ip: str | None = None
    user_agent: str | None = None


NO_SIGNALS = Signals()


@dataclass(frozen=True)
class ConsentInput:
    purpose: str
    action: str
    method: str
    wording_version_id: str | uuid.UUID | None = None
    collection_point: str | None = None
    # The checkbox was ticked before the person acted on it: not consent (seed 000: "Do not
    # pre-check the consent checkboxes"; GDPR recital 32, CJEU C-673/17 Planet49).
    prechecked: bool = False


def active_subject(ctx: TenantContext, subject_id: uuid.UUID | str) -> Subject:
    subject = subjects.get_subject_row(ctx, subject_id)
    if subject.status == SubjectStatus.ERASED.value:
        raise SubjectErased("this subject has been erased")
    return subject


def _signal_mac(
    ctx: TenantContext, subject_id: uuid.UUID, what: str, value: str | None
) -> bytes | None:
    """IP and user agent as a MAC under a key derived from the subject's data key: it can
    confirm a claimed value while the subject exists and is noise once it is erased."""
    if not value:
        return None
    try:
        key = ctx.subject_key(subject_id, STANDARD_CLASS)
    except KeyShredded:
        # A partially erased subject: its standard data is gone, so is the key to MAC with.
        raise SubjectErased("this subject's data has been erased") from None
    except KeyMissing:
        # Created with fields of other retention classes only: the standard key is made on
        # first use, as for interactions.
        key = ctx.create_subject_keys([(subject_id, STANDARD_CLASS)])[(subject_id, STANDARD_CLASS)]
    mac_key = derive(key, b"pledge:consent-signal:v1")
    return hmac.new(mac_key, f"{what}:{value.strip()}".encode(), hashlib.sha256).digest()


def _wording(
    ctx: TenantContext,
    purpose: Purpose,
    point: CollectionPoint | None,
    version_id: str | uuid.UUID | None,
) -> NoticeVersion:
    if version_id is None:
        raise InvalidInput(
            "a consent needs the version of the wording that was shown (wording_version_id)"
        )
    try:
        version = notices.get_version(ctx, version_id)
    except NotFound:
        # A field of the request, not the resource addressed: invalid input, not 404.
        raise InvalidInput(
            "wording_version_id is not a version of this tenant's wordings"
        ) from None
    allowed = {purpose.consent_notice_id}
    if point is not None:
        allowed |= {
            w for p, w in purposes.collection_point_purposes(ctx, point) if p.id == purpose.id
        }
    if version.notice_id not in allowed:
        raise InvalidInput(f"that wording is not one shown for purpose {purpose.slug!r}")
    if version.effective_at > utcnow():
        raise InvalidInput("that wording version is not in effect yet")
    return version


def _privacy_notice_version(
    ctx: TenantContext, point: CollectionPoint | None, language: str
) -> uuid.UUID | None:
    """The privacy notice in force for the record, in the consent's language where it is
    published: the point's, else the tenant's public one (what `/p/{slug}/privacy` shows) — a
    consent given by API or by phone has one too."""
    if point is not None and point.privacy_notice_id is not None:
        current = notices.current_version(ctx, point.privacy_notice_id, language)
        return current.id if current else None
    public = notices.public_notice(ctx, language)
    return public[1].id if public else None


def _locked_state(
    ctx: TenantContext,
    subject_id: uuid.UUID,
    purpose_id: uuid.UUID,
    action: ConsentAction,
    record_id: uuid.UUID,
) -> ConsentState:
    """The subject's state row for the purpose, created if missing and locked FOR UPDATE.

    The insert skips a row another worker holds or has just added (a double-submitted first
    consent must not fail on the primary key). A row it creates points at `record_id`, the
    record about to be written, and is completed by the caller."""
    values = {
        "tenant_id": ctx.tenant_id,
        "subject_id": subject_id,
        "purpose_id": purpose_id,
        "granted": action is ConsentAction.GRANT,
        "record_id": record_id,
        "updated_at": utcnow(),
    }
    ctx.session.execute(insert_new(ctx.session, ConsentState, **values))
    return ctx.session.execute(
        select(ConsentState)
        .where(
            ConsentState.tenant_id == ctx.tenant_id,
            ConsentState.subject_id == subject_id,
            ConsentState.purpose_id == purpose_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def record_consent(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    data: ConsentInput,
    signals: Signals = NO_SIGNALS,
) -> ConsentRecord:
    """Append a grant or a withdrawal to the ledger, with its proof, and update the state.

    Withdrawal is as easy as giving (GDPR Art. 7(3)): no wording needed, effective at once.
    """
    subject = active_subject(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, data.purpose)
    try:
        action = ConsentAction(data.action)
        method = ConsentMethod(data.method).value
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    point = (
        purposes.get_collection_point(ctx, data.collection_point) if data.collection_point else None
    )
    wording: NoticeVersion | None = None
    if action is ConsentAction.WITHDRAW and purpose.lawful_basis != LawfulBasis.CONSENT.value:
        # Withdrawing a consent nobody relies on would answer "done" and change nothing the
        # gate reads; a purpose whose basis changed from consent keeps its withdrawals.
        state = ctx.session.get(ConsentState, (ctx.tenant_id, subject.id, purpose.id))
        if state is None or not state.granted:
            raise InvalidInput(
                f"purpose {purpose.slug!r} is not based on consent ({purpose.lawful_basis}): "
                "record an objection or an opt-out instead"
            )
    if action is ConsentAction.GRANT:
        if point is not None and purpose.id not in {
            p.id for p, _ in purposes.collection_point_purposes(ctx, point)
        }:
            raise InvalidInput(
                f"collection point {point.slug!r} does not collect for purpose {purpose.slug!r}"
            )
        if purpose.lawful_basis != LawfulBasis.CONSENT.value:
            raise InvalidInput(
                f"purpose {purpose.slug!r} is not based on consent ({purpose.lawful_basis})"
            )
        if purpose.archived_at is not None:
            raise InvalidInput(f"purpose {purpose.slug!r} is archived")
        if data.prechecked:
            raise InvalidInput(
                "a consent presented pre-checked is not consent: the person must tick the box"
            )
        wording = _wording(ctx, purpose, point, data.wording_version_id)
    # Lock the state row before stamping the record's time: two grants or a grant and a
    # withdrawal for the same person then queue here, and the later stamp is the later write.
    record_id = new_id()
    state = _locked_state(ctx, subject.id, purpose.id, action, record_id)
    # In force before this record (a row just made for it holds this record's own answer).
    was_granted = state.granted and state.record_id != record_id
    now = utcnow()
    record = ConsentRecord(
        tenant_id=ctx.tenant_id,
        id=record_id,
        subject_id=subject.id,
        purpose_id=purpose.id,
        action=action.value,
        recorded_at=now,
        method=method,
        collection_point_id=point.id if point else None,
        wording_version_id=wording.id if wording else None,
        wording_sha256=wording.sha256 if wording else None,
        notice_version_id=_privacy_notice_version(
            ctx, point, wording.language if wording else "en"
        ),
        gpc=signals.gpc,
        dnt=signals.dnt,
        ip_mac=_signal_mac(ctx, subject.id, "ip", signals.ip),
        user_agent_mac=_signal_mac(ctx, subject.id, "ua", signals.user_agent),
        actor_kind=ctx.actor.kind.value,
        actor_id=ctx.actor.id,
    )
    if action is ConsentAction.GRANT and wording is not None:
        record.receipt_jws = receipts.issue(ctx, record, purpose, wording)
    ctx.session.add(record)
    if state.record_id == record.id or now >= state.updated_at:
        # The state is the ledger's last word: a record stamped before the one the state
        # already shows (a clock behind another worker's) joins the ledger but moves nothing.
        state.granted = action is ConsentAction.GRANT
        state.record_id = record.id
        state.updated_at = now
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.CONSENT_GRANTED
        if action is ConsentAction.GRANT
        else AuditEvent.CONSENT_WITHDRAWN,
        subject_id=subject.id,
        details={
            "purpose": purpose.slug,
            "record_id": str(record.id),
            "method": method,
            "wording_sha256": record.wording_sha256,
            "gpc": signals.gpc,
            "dnt": signals.dnt,
        },
    )
    if action is ConsentAction.WITHDRAW and was_granted and not state.granted:
        # The integrator hears of it after the commit, by ids only (DESIGN.md §5): no polling
        # needed to stop a use the person took back. A withdrawal of nothing in force (sent
        # twice, never given) is on the ledger but no event.
        webhooks.emit(
            ctx,
            "consent.withdrawn",
            {
                "subject_id": str(subject.id),
                "purpose": purpose.slug,
                "record_id": str(record.id),
                "at": now.isoformat(),
            },
        )
    return record


def withdraw_all(
    ctx: TenantContext, subject_id: uuid.UUID | str, method: str
) -> list[ConsentRecord]:
    """Withdraw every consent in force (GDPR Art. 7(3); the "withdraw consent" request)."""
    subject = active_subject(ctx, subject_id)
    granted = (
        ctx.session.execute(
            select(Purpose.slug)
            .join(
                ConsentState,
                (ConsentState.tenant_id == Purpose.tenant_id)
                & (ConsentState.purpose_id == Purpose.id),
            )
            .where(
                ConsentState.tenant_id == ctx.tenant_id,
                ConsentState.subject_id == subject.id,
                ConsentState.granted,
            )
        )
        .scalars()
        .all()
    )
    return [
        record_consent(
            ctx,
            subject.id,
            ConsentInput(purpose=slug, action=ConsentAction.WITHDRAW.value, method=method),
        )
        for slug in granted
    ]


@dataclass(frozen=True)
class TimelineEntry:
    record: ConsentRecord
    purpose: Purpose
    wording: NoticeVersion | None
    collection_point: CollectionPoint | None = None
    # The privacy notice version in force where the consent was given.
    notice_version: NoticeVersion | None = None


_Row = TypeVar("_Row", NoticeVersion, CollectionPoint)


def _by_id(
    ctx: TenantContext, model: type[_Row], ids: set[uuid.UUID | None]
) -> dict[uuid.UUID, _Row]:
    """The tenant's rows of `model` with these ids; no query when there are none (most
    subjects of an access request have no consent records to look up)."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    stmt = for_tenant(select(model), model, ctx.tenant_id).where(model.id.in_(wanted))
    return {row.id: row for row in ctx.session.scalars(stmt)}


# Prebuilt: every access request's information reads it.
_TIMELINE = (
    select(ConsentRecord, Purpose)
    .join(
        Purpose,
        (Purpose.tenant_id == ConsentRecord.tenant_id) & (Purpose.id == ConsentRecord.purpose_id),
    )
    .where(
        ConsentRecord.tenant_id == bindparam("tenant_id"),
        ConsentRecord.subject_id == bindparam("subject_id"),
    )
    .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
)


def timeline(ctx: TenantContext, subject_id: uuid.UUID | str) -> list[TimelineEntry]:
    """Every grant and withdrawal of the subject, oldest first, with the exact text shown."""
    subject = subjects.get_subject_row(ctx, subject_id)
    rows = ctx.session.execute(
        _TIMELINE, {"tenant_id": ctx.tenant_id, "subject_id": subject.id}
    ).all()
    version_ids = {r.wording_version_id for r, _ in rows} | {r.notice_version_id for r, _ in rows}
    versions = _by_id(ctx, NoticeVersion, version_ids)
    points = _by_id(ctx, CollectionPoint, {r.collection_point_id for r, _ in rows})
    return [
        TimelineEntry(
            r,
            p,
            versions.get(r.wording_version_id) if r.wording_version_id else None,
            points.get(r.collection_point_id) if r.collection_point_id else None,
            versions.get(r.notice_version_id) if r.notice_version_id else None,
        )
        for r, p in rows
    ]


@dataclass(frozen=True)
class ConsentTimeline:
    """The proof shown on a subject's page: the ledger with the words seen, and the
    subject's standing opt-out of sale/sharing (GPC shows up here when it was honoured)."""

    entries: list[TimelineEntry]
    sale_opt_out_at: datetime | None
    sale_opt_out_source: str | None


def timeline_view(ctx: TenantContext, subject_id: uuid.UUID | str) -> ConsentTimeline:
    subject = subjects.get_subject_row(ctx, subject_id)
    return ConsentTimeline(
        timeline(ctx, subject.id),
        subject.sale_opt_out_at,
        subject.sale_opt_out_source if subject.sale_opt_out_at else None,
    )


def read_timeline(ctx: TenantContext, subject_id: uuid.UUID | str) -> list[TimelineEntry]:
    """The timeline for an API or CLI reader: a read of the subject's data, audited."""
    subject = subjects.get_subject_row(ctx, subject_id)
    entries = timeline(ctx, subject.id)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_VIEWED,
        subject_id=subject.id,
        details={"part": "consents", "count": len(entries)},
    )
    return entries


def verify_receipt(ctx: TenantContext, token: str) -> receipts.Verification:
    """Check a consent receipt presented to the tenant; the check itself is audited (its
    outcome and the receipt's id, never its claims)."""
    result = receipts.verify(ctx, token)
    claims = result.claims or {}
    audit.record(
        ctx,
        AuditEvent.CONSENT_RECEIPT_VERIFIED,
        details={
            "valid": result.valid,
            "reason": result.reason,
            "kid": (result.kid or "")[:80] or None,
            "receipt_id": str(claims.get("consentReceiptID", ""))[:40] or None,
        },
    )
    return result


def consent_states(ctx: TenantContext, subject_id: uuid.UUID) -> dict[uuid.UUID, bool]:
    rows = ctx.session.execute(
        for_tenant(
            select(ConsentState.purpose_id, ConsentState.granted), ConsentState, ctx.tenant_id
        ).where(ConsentState.subject_id == subject_id)
    ).all()
    return {p: g for p, g in rows}


# ---------------------------------------------------------------------------------------------
# Other lawful bases: relationships


def add_relationship(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    purpose_slug: str,
    *,
    collection_point: CollectionPoint | None = None,
) -> SubjectPurpose:
    """Hold a subject for a purpose on its non-consent basis (contract, legitimate interest,
    legal obligation…), e.g. because they came through a collection point that collects for it."""
    subject = active_subject(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, purpose_slug)
    if purpose.lawful_basis == LawfulBasis.CONSENT.value:
        raise InvalidInput(
            f"purpose {purpose.slug!r} is based on consent: record a consent instead"
        )
    link = ctx.session.get(SubjectPurpose, (ctx.tenant_id, subject.id, purpose.id))
    now = utcnow()
    if link is None:
        link = SubjectPurpose(
            tenant_id=ctx.tenant_id,
            subject_id=subject.id,
            purpose_id=purpose.id,
            since=now,
            collection_point_id=collection_point.id if collection_point else None,
        )
        ctx.session.add(link)
    elif link.until is None:
        return link
    link.until = None
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.RELATIONSHIP_CHANGED,
        subject_id=subject.id,
        details={"purpose": purpose.slug, "change": "started", "basis": purpose.lawful_basis},
    )
    return link


def end_relationship(ctx: TenantContext, subject_id: uuid.UUID | str, purpose_slug: str) -> None:
    """The basis ended (a contract closed): the purpose no longer covers this subject."""
    subject = subjects.get_subject_row(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, purpose_slug)
    link = ctx.session.get(SubjectPurpose, (ctx.tenant_id, subject.id, purpose.id))
    if link is not None and link.until is None:
        link.until = utcnow()
        audit.record(
            ctx,
            AuditEvent.RELATIONSHIP_CHANGED,
            subject_id=subject.id,
            details={"purpose": purpose.slug, "change": "ended"},
        )


# ---------------------------------------------------------------------------------------------
# Objections (GDPR Art. 21)


def record_objection(
    ctx: TenantContext, subject_id: uuid.UUID | str, purpose_slug: str
) -> Objection:
    """Object to a purpose. Direct marketing stops at once and for good (Art. 21(3)); other
    legitimate-interest or public-task purposes stop unless staff record compelling grounds."""
    subject = active_subject(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, purpose_slug)
    objectable = {
        LawfulBasis.LEGITIMATE_INTEREST.value,
        LawfulBasis.PUBLIC_INTEREST.value,
        LawfulBasis.OFFICIAL_AUTHORITY.value,
    }
    if purpose.lawful_basis not in objectable and not purpose.is_marketing:
        raise InvalidInput(
            f"purpose {purpose.slug!r} rests on {purpose.lawful_basis}: "
            "the right to object does not apply"
        )
    objection = ctx.session.get(Objection, (ctx.tenant_id, subject.id, purpose.id))
    if objection is None:
        objection = Objection(
            tenant_id=ctx.tenant_id, subject_id=subject.id, purpose_id=purpose.id, since=utcnow()
        )
        ctx.session.add(objection)
    objection.grounds_sealed = None
    objection.overridden_at = None
    ctx.session.flush()
    audit.record(
        ctx, AuditEvent.OBJECTION_RECORDED, subject_id=subject.id, details={"purpose": purpose.slug}
    )
    if purpose.lawful_basis == LawfulBasis.CONSENT.value and consent_states(ctx, subject.id).get(
        purpose.id
    ):
        record_consent(
            ctx,
            subject.id,
            ConsentInput(purpose.slug, ConsentAction.WITHDRAW.value, ConsentMethod.API.value),
        )
    return objection


def override_objection(
    ctx: TenantContext, subject_id: uuid.UUID | str, purpose_slug: str, grounds: str
) -> Objection:
    """Staff record compelling legitimate grounds that override the objection (Art. 21(1)).
    Never for direct marketing."""
    subject = active_subject(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, purpose_slug)
    if purpose.is_marketing:
        raise InvalidInput(
            "an objection to direct marketing cannot be overridden (GDPR Art. 21(3))"
        )
    objection = ctx.session.get(Objection, (ctx.tenant_id, subject.id, purpose.id))
    if objection is None:
        raise InvalidInput("there is no objection to override")
    note = grounds.strip()
    if len(note) < 10:
        raise InvalidInput("state the compelling grounds (at least a sentence)")
    objection.grounds_sealed = subjects.seal_note(ctx, subject.id, f"objection:{purpose.id}", note)
    objection.overridden_at = utcnow()
    audit.record(
        ctx,
        AuditEvent.OBJECTION_OVERRIDDEN,
        subject_id=subject.id,
        details={"purpose": purpose.slug},
    )
    return objection


_OBJECTABLE = (
    LawfulBasis.LEGITIMATE_INTEREST.value,
    LawfulBasis.PUBLIC_INTEREST.value,
    LawfulBasis.OFFICIAL_AUTHORITY.value,
)


def objected_purposes(
    ctx: TenantContext, subject_id: uuid.UUID, at: datetime | None = None
) -> set[uuid.UUID]:
    """The purposes an objection of the subject stops at `at`, as the gate reads it: direct
    marketing for any objection (Art. 21(3)), another objectable purpose unless overridden."""
    rows = ctx.session.scalars(
        select(Objection.purpose_id)
        .join(
            Purpose,
            (Purpose.tenant_id == Objection.tenant_id) & (Purpose.id == Objection.purpose_id),
        )
        .where(
            Objection.tenant_id == ctx.tenant_id,
            Objection.subject_id == subject_id,
            Objection.since <= (at or utcnow()),
            Purpose.is_marketing.is_(True)
            | (Objection.overridden_at.is_(None) & Purpose.lawful_basis.in_(_OBJECTABLE)),
        )
    )
    return set(rows)


def lift_objection_by_consent(
    ctx: TenantContext, subject_id: uuid.UUID, record: ConsentRecord, source: str
) -> bool:
    """The person gave the purpose a fresh consent themselves (`record`, a grant in the
    ledger): their objection to it is lifted — the later, explicit choice stands. Audited
    with the consent record it rests on. False when there was no objection."""
    if record.action != ConsentAction.GRANT.value or record.subject_id != subject_id:
        raise InvalidInput("only the subject's own consent lifts their objection")
    objection = ctx.session.get(Objection, (ctx.tenant_id, subject_id, record.purpose_id))
    if objection is None:
        return False
    purpose = ctx.session.get(Purpose, (ctx.tenant_id, record.purpose_id))
    assert purpose is not None  # a foreign key
    ctx.session.delete(objection)
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.PREFERENCE_CHANGED,
        subject_id=subject_id,
        details={
            "purpose": purpose.slug,
            "change": "objection_lifted",
            "objected_since": objection.since.isoformat(),
            "consent_record_id": str(record.id),
            "source": source[:24],
        },
    )
    return True


def objection_for(
    ctx: TenantContext, subject_id: uuid.UUID, purpose_id: uuid.UUID
) -> Objection | None:
    return ctx.session.get(Objection, (ctx.tenant_id, subject_id, purpose_id))


def relationship_for(
    ctx: TenantContext, subject_id: uuid.UUID, purpose_id: uuid.UUID
) -> SubjectPurpose | None:
    return ctx.session.get(SubjectPurpose, (ctx.tenant_id, subject_id, purpose_id))


def state_for(
    ctx: TenantContext, subject_id: uuid.UUID, purpose_id: uuid.UUID
) -> ConsentState | None:
    return ctx.session.get(ConsentState, (ctx.tenant_id, subject_id, purpose_id))


def is_in_force(at: datetime, since: datetime, until: datetime | None) -> bool:
    return since <= at and (until is None or at < until)
