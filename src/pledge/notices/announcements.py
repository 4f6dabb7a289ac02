"""Advance notice of a material change, by e-mail to the people it affects.

Publishing a material version creates a `NoticeAnnouncement` (`notices.service.publish_version`),
due at once: with a future effective date the people are told ahead of it; a version that takes
effect at once (the default) or is backdated is announced all the same, at the next worker
cycle, and the letter says the change took effect on that date — told late beats never told.
`send_due` sends the ones whose time has come: to every active subject with an e-mail who holds
a consent or a relationship recorded through a collection point that shows the changed privacy
notice (or, for the tenant's own privacy notice — the one /p/{slug}/privacy shows — recorded
without a collection point), or who holds a consent given on the changed consent wording.
Seed 002 ("Material Change") promises notice "prior to the change becoming effective"; seeds
003 and 004 notify by e-mail.

A change is a version number: the same number published in several languages is one change,
announced once, each person getting the version in their language — that of the consent
wording they last consented on, else English where published, else the first language
published.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.models import ConsentAction, ConsentRecord, ConsentState, SubjectPurpose
from pledge.core.clock import utcnow
from pledge.mail import service as mail
from pledge.notices import service as notices
from pledge.notices.models import Notice, NoticeAnnouncement, NoticeKind, NoticeVersion
from pledge.preferences import links
from pledge.purposes.models import CollectionPoint
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject, SubjectIdentity, SubjectStatus


def _holds_through_notice(
    tenant_id: uuid.UUID, notice: Notice, *, the_tenants: bool
) -> ColumnElement[bool]:
    """A consent in force or a relationship recorded at a collection point showing `notice`;
    when it is the tenant's own privacy notice (`the_tenants`), also one recorded with no
    collection point (an API call, an import, staff): that notice is the one they were given."""
    points = select(CollectionPoint.id).where(
        CollectionPoint.tenant_id == tenant_id, CollectionPoint.privacy_notice_id == notice.id
    )

    def there(column: InstrumentedAttribute[uuid.UUID | None]) -> ColumnElement[bool]:
        shown = column.in_(points)
        return or_(shown, column.is_(None)) if the_tenants else shown

    consent_there = exists().where(
        and_(
            ConsentState.tenant_id == Subject.tenant_id,
            ConsentState.subject_id == Subject.id,
            ConsentState.granted.is_(True),
            ConsentRecord.tenant_id == ConsentState.tenant_id,
            ConsentRecord.id == ConsentState.record_id,
            there(ConsentRecord.collection_point_id),
        )
    )
    relationship_there = exists().where(
        and_(
            SubjectPurpose.tenant_id == Subject.tenant_id,
            SubjectPurpose.subject_id == Subject.id,
            SubjectPurpose.until.is_(None),
            there(SubjectPurpose.collection_point_id),
        )
    )
    return or_(consent_there, relationship_there)


def _consented_on_wording(tenant_id: uuid.UUID, notice: Notice) -> ColumnElement[bool]:
    """A consent in force given on a version of the consent wording `notice`."""
    versions = select(NoticeVersion.id).where(
        NoticeVersion.tenant_id == tenant_id, NoticeVersion.notice_id == notice.id
    )
    return exists().where(
        and_(
            ConsentState.tenant_id == Subject.tenant_id,
            ConsentState.subject_id == Subject.id,
            ConsentState.granted.is_(True),
            ConsentRecord.tenant_id == ConsentState.tenant_id,
            ConsentRecord.id == ConsentState.record_id,
            ConsentRecord.wording_version_id.in_(versions),
        )
    )


def affected_subjects(ctx: TenantContext, notice: Notice) -> list[uuid.UUID]:
    """Who a change of `notice` affects and can be told by e-mail: one set-based query."""
    if notice.kind == NoticeKind.CONSENT_WORDING.value:
        held = _consented_on_wording(ctx.tenant_id, notice)
    else:
        shown = notices.public_notice(ctx)
        the_tenants = shown is not None and shown[0].id == notice.id
        held = _holds_through_notice(ctx.tenant_id, notice, the_tenants=the_tenants)
    has_email = exists().where(
        and_(
            SubjectIdentity.tenant_id == Subject.tenant_id,
            SubjectIdentity.subject_id == Subject.id,
            SubjectIdentity.kind == IdentityKind.EMAIL.value,
        )
    )
    stmt = for_tenant(select(Subject.id), Subject, ctx.tenant_id).where(
        Subject.status == SubjectStatus.ACTIVE.value, has_email, held
    )
    return list(ctx.session.scalars(stmt.order_by(Subject.id)))


@dataclass(frozen=True)
class Announced:
    announcement_id: uuid.UUID
    notice: str
    version: int
    recipients: int


def _letter_text(notice: Notice, version: NoticeVersion, tenant_name: str) -> tuple[str, str]:
    effective = version.effective_at.strftime("%d %B %Y").lstrip("0")
    title = notice.title.lower()
    summary = version.summary.strip() or "The new version is available from us on request."
    if version.effective_at <= utcnow():
        # Published to apply at once (or backdated): told as soon as possible, in the past.
        subject_line = f"{tenant_name}: changes to our {title} since {effective}"
        news = f"we have changed our {title}. The new version took effect on {effective}."
    else:
        subject_line = f"{tenant_name}: changes to our {title} from {effective}"
        news = f"we are changing our {title}. The new version takes effect on {effective}."
    body = (
        "Hello {first_name},\n\n"
        f"{news}\n\n"
        f"What changes:\n{summary}\n\n"
        "You can review your choices at any time: {preferences_url}\n\n"
        f"{tenant_name}\n"
    )
    return subject_line, body


def consent_languages(ctx: TenantContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each subject's language: that of the consent wording they consented on most recently
    (subjects who never consented on a wording are left out)."""
    out: dict[uuid.UUID, str] = {}
    for start in range(0, len(ids), 500):
        rows = ctx.session.execute(
            select(ConsentRecord.subject_id, NoticeVersion.language)
            .join(
                NoticeVersion,
                (NoticeVersion.tenant_id == ConsentRecord.tenant_id)
                & (NoticeVersion.id == ConsentRecord.wording_version_id),
            )
            .where(
                ConsentRecord.tenant_id == ctx.tenant_id,
                ConsentRecord.subject_id.in_(ids[start : start + 500]),
                ConsentRecord.action == ConsentAction.GRANT.value,
            )
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        ).all()
        for sid, language in rows:
            out[sid] = language  # the latest wins
    return out


def _announce(
    ctx: TenantContext, announcement: NoticeAnnouncement, report: mail.DeliveryReport | None
) -> Announced:
    version = ctx.session.get(NoticeVersion, (ctx.tenant_id, announcement.version_id))
    assert version is not None  # a foreign key
    notice = ctx.session.get(Notice, (ctx.tenant_id, version.notice_id))
    assert notice is not None
    published = notices.languages(ctx, notice.id)
    default = "en" if "en" in published else published[0]
    ids = affected_subjects(ctx, notice)
    people = mail.contacts(ctx, ids)
    spoken = consent_languages(ctx, ids) if len(published) > 1 else {}
    subject_line, template = _letter_text(notice, version, ctx.settings.name)
    letters: list[mail.Addressed] = []
    for sid in ids:
        contact = people[sid]
        if not contact.email:
            continue
        # Each person reads the notice in one language — that of their latest consent
        # wording where the notice is published in it, else English, else its first
        # language — and hears of the changes to that text only: a change published in
        # several languages is one letter each, and a translation catching up later is
        # news only to its own readers.
        theirs = spoken.get(sid, default)
        if (theirs if theirs in published else default) != version.language:
            continue
        # Values are substituted by replace, not format: a summary may hold braces.
        text = template.replace("{first_name}", contact.greeting_name("there")).replace(
            "{preferences_url}", links.preference_link(ctx, sid)
        )
        letters.append(mail.Addressed(mail.letter(contact.email, subject_line, text), sid))
    mail.queue_many(ctx, letters, kind=mail.MessageKind.NOTICE_ANNOUNCEMENT, report=report)
    announcement.sent_at = utcnow()
    announcement.recipients = len(letters)
    audit.record(
        ctx,
        AuditEvent.NOTICE_ANNOUNCED,
        details={
            "announcement_id": str(announcement.id),
            "notice": notice.slug,
            "version": version.version,
            "language": version.language,
            "effective_at": version.effective_at.isoformat(),
            "recipients": len(letters),
            "digest": hashlib.sha256(
                b"".join(a.subject_id.bytes for a in letters if a.subject_id)
            ).hexdigest(),
        },
    )
    return Announced(announcement.id, notice.slug, version.version, len(letters))


def send_due(ctx: TenantContext, report: mail.DeliveryReport | None = None) -> list[Announced]:
    """Send every announcement whose time has come and that has not been sent yet
    (`report`: told of each message's outcome as the messages leave, after commit).

    Each is locked until this transaction ends (PostgreSQL; SQLite's writers take turns),
    and one another worker holds is left to it: two workers at once would otherwise both
    find it unsent and tell everyone twice."""
    due = list(
        ctx.session.scalars(
            for_tenant(select(NoticeAnnouncement), NoticeAnnouncement, ctx.tenant_id)
            .where(NoticeAnnouncement.sent_at.is_(None), NoticeAnnouncement.send_at <= utcnow())
            .order_by(NoticeAnnouncement.send_at, NoticeAnnouncement.id)
            .with_for_update(skip_locked=True)
        )
    )
    return [_announce(ctx, a, report) for a in due]


def list_announcements(ctx: TenantContext) -> list[NoticeAnnouncement]:
    return list(
        ctx.session.scalars(
            for_tenant(select(NoticeAnnouncement), NoticeAnnouncement, ctx.tenant_id).order_by(
                NoticeAnnouncement.send_at.desc()
            )
        )
    )
