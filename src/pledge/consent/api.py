"""REST routes of consent (under /api/v1): the ledger with its receipts, intake through a
collection point, relationships, objections and the privacy state; and the tenant's public
receipt keys (JWKS) for anyone to verify a receipt with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.permissions import Scope
from pledge.consent import intake, privacy_state, receipts, recording
from pledge.consent import service as consent
from pledge.consent.intake import ConsentChoice
from pledge.consent.models import ConsentRecord, Objection, SubjectPurpose
from pledge.consent.schemas import (
    CollectedOut,
    CollectionIn,
    ConsentIn,
    ConsentRecordOut,
    Jwks,
    NoticeInForce,
    ObjectionOut,
    OverrideIn,
    PrivacyStateIn,
    PrivacyStateOut,
    PurposeConsent,
    ReceiptCheck,
    ReceiptIn,
    RelationshipIn,
    RelationshipOut,
    RestrictionGroundOut,
    SignalsIn,
    TimelineEntryOut,
    TimelineOut,
    WithdrawAllIn,
    WordingShown,
)
from pledge.consent.service import ConsentInput, Signals
from pledge.core.clock import utcnow
from pledge.core.errors import NotFound
from pledge.notices import service as notices
from pledge.purposes import service as purposes
from pledge.purposes.models import Purpose
from pledge.signals import service as signals_service
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.tenants.service import get_tenant_by_slug
from pledge.web.deps import DbSession, RuntimeDep, api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(tags=["consent"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.CONSENT_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.CONSENT_WRITE))]
Collect = Annotated[TenantContext, Depends(api_context(Scope.SUBJECTS_WRITE))]
SUBJECT = "/api/v1/subjects/{subject_id}"


def signals_of(request: Request, given: SignalsIn | None) -> Signals:
    """The body's signals, plus a `Sec-GPC: 1` / `DNT` header forwarded on the API call. The
    call's own IP and user agent are the integrator's server, never the person's: only the
    body names those."""
    body = given or SignalsIn()
    header_gpc = signals_service.parse_gpc(request.headers.getlist("sec-gpc"))
    header_dnt = signals_service.parse_dnt(request.headers.getlist("dnt"))
    return Signals(
        gpc=body.gpc or header_gpc,
        dnt=body.dnt if body.dnt is not None else header_dnt,
        ip=body.ip,
        user_agent=body.user_agent,
    )


def record_out(
    ctx: TenantContext, record: ConsentRecord, purpose: Purpose, effects: list[str] | None = None
) -> ConsentRecordOut:
    point = (
        purposes.find_collection_point(ctx, record.collection_point_id)
        if record.collection_point_id
        else None
    )
    return ConsentRecordOut(
        id=str(record.id),
        subject_id=str(record.subject_id),
        purpose=purpose.slug,
        action=record.action,
        recorded_at=record.recorded_at,
        method=record.method,
        collection_point=point.slug if point else None,
        wording_version_id=str(record.wording_version_id) if record.wording_version_id else None,
        wording_sha256=record.wording_sha256,
        notice_version_id=str(record.notice_version_id) if record.notice_version_id else None,
        gpc=record.gpc,
        dnt=record.dnt,
        receipt=record.receipt_jws,
        signal_effects=effects or [],
    )


@router.post(
    SUBJECT + "/consents", status_code=status.HTTP_201_CREATED, response_model=ConsentRecordOut
)
def record_consent(
    subject_id: str, body: ConsentIn, request: Request, ctx: Write
) -> ConsentRecordOut:
    """Grant or withdraw a consent. A grant cites the wording version shown and is refused if
    the box was pre-checked; it returns a signed receipt for the person. Withdrawal needs
    nothing and takes effect at once. GPC sent with it is recorded and honoured."""
    done = recording.record_with_signals(
        ctx,
        subject_id,
        ConsentInput(
            purpose=body.purpose,
            action=body.action.value,
            method=body.method.value,
            wording_version_id=body.wording_version_id,
            collection_point=body.collection_point,
            prechecked=body.prechecked,
        ),
        signals_of(request, body.signals),
    )
    purpose = purposes.get_purpose_by_id(ctx, done.record.purpose_id)
    return record_out(ctx, done.record, purpose, done.signal_effects)


@router.get(SUBJECT + "/consents", response_model=TimelineOut)
def consent_timeline(subject_id: str, ctx: Read) -> TimelineOut:
    """Every grant and withdrawal, oldest first, with the exact wording shown and its hash,
    the privacy notice in force, how and where, and the signals sent."""
    entries = consent.read_timeline(ctx, subject_id)
    subject = subjects.get_subject_row(ctx, subject_id)
    out = []
    for e in entries:
        base = record_out(ctx, e.record, e.purpose).model_dump()
        base["collection_point"] = e.collection_point.slug if e.collection_point else None
        wording = e.wording
        notice = e.notice_version
        out.append(
            TimelineEntryOut(
                **base,
                purpose_name=e.purpose.name,
                collection_point_name=e.collection_point.name if e.collection_point else None,
                wording=WordingShown(
                    version_id=str(wording.id),
                    notice=notices.get_notice(ctx, wording.notice_id).slug,
                    version=wording.version,
                    language=wording.language,
                    sha256=wording.sha256,
                    text=wording.text,
                )
                if wording
                else None,
                privacy_notice=NoticeInForce(
                    version_id=str(notice.id),
                    notice=notices.get_notice(ctx, notice.notice_id).slug,
                    version=notice.version,
                    language=notice.language,
                    sha256=notice.sha256,
                )
                if notice
                else None,
            )
        )
    return TimelineOut(
        subject_id=str(subject.id),
        sale_opt_out=subject.sale_opt_out_at is not None,
        sale_opt_out_source=subject.sale_opt_out_source if subject.sale_opt_out_at else None,
        entries=out,
    )


@router.post(SUBJECT + "/consents/withdraw-all", response_model=list[ConsentRecordOut])
def withdraw_all(
    subject_id: str, ctx: Write, body: Annotated[WithdrawAllIn | None, Body()] = None
) -> list[ConsentRecordOut]:
    """Withdraw every consent in force, each as its own ledger entry (GDPR Art. 7(3))."""
    method = (body or WithdrawAllIn()).method.value
    records = consent.withdraw_all(ctx, subject_id, method)
    return [record_out(ctx, r, purposes.get_purpose_by_id(ctx, r.purpose_id)) for r in records]


@router.post("/api/v1/consent-receipts/verify", response_model=ReceiptCheck)
def verify_receipt(body: ReceiptIn, ctx: Read) -> ReceiptCheck:
    """Is this a receipt this tenant signed, unaltered? (The check is audited.)"""
    result = consent.verify_receipt(ctx, body.receipt)
    return ReceiptCheck(
        valid=result.valid, reason=result.reason, kid=result.kid, claims=result.claims
    )


@router.get("/p/{tenant_slug}/.well-known/jwks.json", response_model=Jwks, tags=["public"])
def receipt_keys(
    tenant_slug: str, session: DbSession, runtime: RuntimeDep, response: Response
) -> dict[str, Any]:
    """The tenant's public consent-receipt keys (current and retired), as a JWK set. Public:
    a person verifies their receipt without an account."""
    tenant = get_tenant_by_slug(session, tenant_slug)
    ctx = TenantContext(session, runtime.keystore, tenant, Actor(ActorKind.ANONYMOUS))
    response.headers["Cache-Control"] = "public, max-age=300"
    return receipts.jwks(ctx)


# ---------------------------------------------------------------------------------------------
# Intake


@router.post(
    "/api/v1/collections", status_code=status.HTTP_201_CREATED, response_model=CollectedOut
)
def collect(body: CollectionIn, request: Request, ctx: Collect) -> CollectedOut:
    """A submission through a collection point: the person's fields, the purposes the point
    collects for, the boxes they ticked and their browser's signals — all or nothing. A box
    presented pre-checked refuses the whole submission. Needs subjects:write and
    consent:write."""
    ctx.require(Scope.CONSENT_WRITE)
    result = intake.collect(
        ctx,
        body.collection_point,
        [
            FieldInput(f.name, f.value, f.category, f.source.value, f.retention_class)
            for f in body.fields
        ],
        [ConsentChoice(c.purpose, c.checked, c.prechecked) for c in body.consents],
        signals_of(request, body.signals),
        method=body.method.value,
        language=body.language,
    )
    return CollectedOut(
        subject_id=str(result.subject_id),
        created=result.created,
        relationships=result.relationships,
        consents=result.consents,
        signal_effects=result.signal_effects,
    )


# ---------------------------------------------------------------------------------------------
# Relationships, objections, privacy state


def relationship_out(purpose: Purpose, link: SubjectPurpose) -> RelationshipOut:
    return RelationshipOut(
        purpose=purpose.slug,
        lawful_basis=purpose.lawful_basis,
        since=link.since,
        until=link.until,
        in_force=consent.is_in_force(utcnow(), link.since, link.until),
    )


def objection_out(purpose: Purpose, objection: Objection) -> ObjectionOut:
    return ObjectionOut(
        purpose=purpose.slug,
        since=objection.since,
        overridden=objection.overridden_at is not None and not purpose.is_marketing,
        overridden_at=objection.overridden_at,
    )


@router.post(SUBJECT + "/relationships/{purpose}", response_model=RelationshipOut)
def start_relationship(
    subject_id: str,
    purpose: str,
    ctx: Write,
    body: Annotated[RelationshipIn | None, Body()] = None,
) -> RelationshipOut:
    """Hold the subject for a purpose on its basis other than consent (a contract signed, a
    legitimate interest from the channel they came through, a legal obligation)."""
    point_slug = body.collection_point if body else None
    consent.active_subject(ctx, subject_id)
    point = purposes.get_collection_point(ctx, point_slug) if point_slug else None
    link = consent.add_relationship(ctx, subject_id, purpose, collection_point=point)
    return relationship_out(purposes.get_purpose_by_id(ctx, link.purpose_id), link)


@router.delete(SUBJECT + "/relationships/{purpose}", response_model=RelationshipOut)
def end_relationship(subject_id: str, purpose: str, ctx: Write) -> RelationshipOut:
    """The basis ended (e.g. the contract closed): the purpose stops covering the subject."""
    consent.end_relationship(ctx, subject_id, purpose)
    subject = subjects.get_subject_row(ctx, subject_id)
    found = purposes.get_purpose(ctx, purpose)
    link = consent.relationship_for(ctx, subject.id, found.id)
    if link is None:
        raise NotFound("this subject has no relationship for that purpose")
    return relationship_out(found, link)


@router.post(SUBJECT + "/objections/{purpose}", response_model=ObjectionOut)
def record_objection(subject_id: str, purpose: str, ctx: Write) -> ObjectionOut:
    """GDPR Art. 21: the subject objects. Direct marketing stops for good; other purposes
    stop unless compelling grounds are recorded."""
    objection = consent.record_objection(ctx, subject_id, purpose)
    return objection_out(purposes.get_purpose_by_id(ctx, objection.purpose_id), objection)


@router.post(SUBJECT + "/objections/{purpose}/override", response_model=ObjectionOut)
def override_objection(subject_id: str, purpose: str, body: OverrideIn, ctx: Write) -> ObjectionOut:
    """Record compelling legitimate grounds that override an objection (never for direct
    marketing). The grounds are sealed under the subject's key."""
    objection = consent.override_objection(ctx, subject_id, purpose, body.grounds)
    return objection_out(purposes.get_purpose_by_id(ctx, objection.purpose_id), objection)


def state_out(state: privacy_state.PrivacyState) -> PrivacyStateOut:
    s = state.subject
    return PrivacyStateOut(
        subject_id=str(s.id),
        status=s.status,
        restricted=s.restricted_at is not None,
        restricted_at=s.restricted_at,
        restriction_grounds=[
            RestrictionGroundOut.model_validate(
                {"ground": kind, "request_id": str(rid) if rid else None}
            )
            for kind, rid in map(privacy_state.parse_ground, s.restriction_grounds)
        ],
        sale_opt_out=s.sale_opt_out_at is not None,
        sale_opt_out_at=s.sale_opt_out_at,
        sale_opt_out_source=s.sale_opt_out_source if s.sale_opt_out_at else None,
        limit_sensitive=s.limit_sensitive_at is not None,
        limit_sensitive_at=s.limit_sensitive_at,
        is_child=s.is_child,
        parental_consent=s.parental_consent_at is not None,
        parental_consent_at=s.parental_consent_at,
        consents=[PurposeConsent(purpose=p.slug, granted=g) for p, g in state.consents],
        relationships=[relationship_out(p, r) for p, r in state.relationships],
        objections=[objection_out(p, o) for p, o in state.objections],
    )


@router.get(SUBJECT + "/privacy-state", response_model=PrivacyStateOut)
def get_privacy_state(subject_id: str, ctx: Read) -> PrivacyStateOut:
    """What the gate reads about the subject: restriction, opt-outs, child status, consents,
    relationships and objections."""
    return state_out(privacy_state.privacy_state(ctx, subject_id))


@router.put(SUBJECT + "/privacy-state", response_model=PrivacyStateOut)
def put_privacy_state(subject_id: str, body: PrivacyStateIn, ctx: Write) -> PrivacyStateOut:
    """Change the flags given (the others stay); each change is its own audit entry. The
    restriction set here is this API's ground; lifting it leaves the subject restricted while
    another ground holds (the answer's `restriction_grounds` says which). `sale_opt_out: false`
    is an opt-in only from an opt-out (for someone not opted out it changes nothing, and GPC
    still applies); `is_child: false` alone ends a parental consent."""
    subject = privacy_state.update_privacy_state(
        ctx,
        subject_id,
        restricted=body.restricted,
        sale_opt_out=body.sale_opt_out,
        limit_sensitive=body.limit_sensitive,
        is_child=body.is_child,
        parental_consent=body.parental_consent,
    )
    return state_out(privacy_state.privacy_state(ctx, subject.id, audited=False))
