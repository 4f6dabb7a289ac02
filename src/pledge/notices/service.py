"""Notices and their versions. A version is never edited: changing a wording publishes a new
version, and every consent proof keeps pointing at the version that was shown."""

from __future__ import annotations

import difflib
import hashlib
import re
import uuid
from datetime import datetime

from sqlalchemy import func, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, NotFound
from pledge.core.ids import new_id, parse_id
from pledge.notices.models import Notice, NoticeAnnouncement, NoticeKind, NoticeVersion

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47, simplified
MAX_TEXT = 200_000
_NUMBER = re.compile(r"[0-9]{1,9}")  # a version number: ASCII digits only


def text_hash(text: str) -> str:
    """SHA-256 of the exact UTF-8 text: what a proof of consent commits to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_notice(ctx: TenantContext, *, slug: str, kind: str, title: str) -> Notice:
    validation.slug(slug, "slug")
    try:
        kind_value = NoticeKind(kind).value
    except ValueError:
        raise InvalidInput(
            f"kind must be one of: {', '.join(k.value for k in NoticeKind)}"
        ) from None
    if find_notice(ctx, slug) is not None:
        raise Conflict(f"notice {slug!r} already exists")
    notice = Notice(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        slug=slug,
        kind=kind_value,
        title=validation.text(title, "title", max_chars=200),
        created_at=utcnow(),
    )
    ctx.session.add(notice)
    ctx.session.flush()
    return notice


def publish_version(
    ctx: TenantContext,
    notice_slug: str,
    *,
    text: str,
    language: str = "en",
    effective_at: datetime | None = None,
    summary: str = "",
    material: bool = False,
) -> NoticeVersion:
    """Publish the next version of a notice in a language. Earlier versions stay as they were.

    A `material` version is always announced to the people it affects: before it takes effect
    when `effective_at` is in the future, else at the next worker cycle."""
    notice = get_notice(ctx, notice_slug)
    if not _LANGUAGE.match(language):
        raise InvalidInput("language must be a language tag such as en or en-GB")
    body = text.replace("\r\n", "\n")
    if not body.strip():
        raise InvalidInput("a notice version needs its text")
    if len(body) > MAX_TEXT:
        raise InvalidInput(f"a notice version may have at most {MAX_TEXT} characters")
    now = utcnow()
    effective = effective_at or now
    if effective.tzinfo is None:
        raise InvalidInput("effective_at needs a time zone")
    last = ctx.session.scalar(
        select(func.max(NoticeVersion.version)).where(
            NoticeVersion.tenant_id == ctx.tenant_id,
            NoticeVersion.notice_id == notice.id,
            NoticeVersion.language == language,
        )
    )
    version = NoticeVersion(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        notice_id=notice.id,
        version=(last or 0) + 1,
        language=language,
        text=body,
        sha256=text_hash(body),
        effective_at=effective,
        summary=validation.text(summary, "summary", max_chars=5000, required=False),
        material=bool(material),
        created_at=now,
    )
    ctx.session.add(version)
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.NOTICE_PUBLISHED,
        details={
            "notice": notice.slug,
            "version": version.version,
            "language": language,
            "sha256": version.sha256,
            "effective_at": effective.isoformat(),
            "material": material,
        },
    )
    if material:
        # Announce now: ahead of the date it takes effect (seed 002 "Material Change"), or —
        # published to take effect at once or backdated — as soon as possible. The people it
        # affects must be told of a material change; telling them late beats never. The
        # next worker cycle (`announcements.send_due`) sends it.
        ctx.session.add(
            NoticeAnnouncement(
                tenant_id=ctx.tenant_id,
                id=new_id(),
                version_id=version.id,
                send_at=now,
                created_at=now,
            )
        )
        ctx.session.flush()
    return version


def find_notice(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> Notice | None:
    stmt = for_tenant(select(Notice), Notice, ctx.tenant_id)
    as_id = slug_or_id if isinstance(slug_or_id, uuid.UUID) else parse_id(slug_or_id)
    stmt = stmt.where(Notice.id == as_id) if as_id else stmt.where(Notice.slug == slug_or_id)
    return ctx.session.scalar(stmt)


def get_notice(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> Notice:
    notice = find_notice(ctx, slug_or_id)
    if notice is None:
        raise NotFound("no such notice")
    return notice


def list_notices(ctx: TenantContext) -> list[Notice]:
    return list(
        ctx.session.scalars(for_tenant(select(Notice), Notice, ctx.tenant_id).order_by(Notice.slug))
    )


def versions(
    ctx: TenantContext, notice: Notice, language: str | None = None
) -> list[NoticeVersion]:
    stmt = for_tenant(select(NoticeVersion), NoticeVersion, ctx.tenant_id).where(
        NoticeVersion.notice_id == notice.id
    )
    if language:
        stmt = stmt.where(NoticeVersion.language == language)
    return list(ctx.session.scalars(stmt.order_by(NoticeVersion.language, NoticeVersion.version)))


def get_version(ctx: TenantContext, version_id: uuid.UUID | str) -> NoticeVersion:
    return get_in_tenant(
        ctx.session, NoticeVersion, ctx.tenant_id, version_id, what="notice version"
    )


def languages(ctx: TenantContext, notice_id: uuid.UUID) -> list[str]:
    """The languages a notice is published in, the first published first."""
    rows = ctx.session.execute(
        for_tenant(
            select(NoticeVersion.language, func.min(NoticeVersion.created_at)),
            NoticeVersion,
            ctx.tenant_id,
        )
        .where(NoticeVersion.notice_id == notice_id)
        .group_by(NoticeVersion.language)
    ).all()
    return [lang for lang, _ in sorted(rows, key=lambda r: (r[1], r[0]))]


def current_version(
    ctx: TenantContext,
    notice_id: uuid.UUID,
    language: str = "en",
    at: datetime | None = None,
    *,
    any_language: bool = False,
) -> NoticeVersion | None:
    """The version in force at `at` (latest effective), in the language, else in English;
    with `any_language`, else in the first language published that has one in force."""
    when = at or utcnow()
    tried = [language, "en"]
    if any_language:
        tried += languages(ctx, notice_id)
    for lang in dict.fromkeys(tried):
        found = ctx.session.scalar(
            for_tenant(select(NoticeVersion), NoticeVersion, ctx.tenant_id)
            .where(
                NoticeVersion.notice_id == notice_id,
                NoticeVersion.language == lang,
                NoticeVersion.effective_at <= when,
            )
            .order_by(NoticeVersion.version.desc())
            .limit(1)
        )
        if found is not None:
            return found
    return None


def _privacy_notices(ctx: TenantContext) -> list[Notice]:
    """The tenant's privacy notices in the order the public page prefers them: the one named
    "privacy", then the others by slug."""
    found = [n for n in list_notices(ctx) if n.kind == NoticeKind.PRIVACY_NOTICE.value]
    found.sort(key=lambda n: (n.slug != "privacy", n.slug))
    return found


def public_notice(
    ctx: TenantContext, language: str = "en", at: datetime | None = None
) -> tuple[Notice, NoticeVersion] | None:
    """The tenant's privacy notice as /p/{slug}/privacy shows it at `at` (now): the one named
    "privacy", else the first by slug with a version in force; in `language`, else English,
    else any language in force — a receipt's `policyUrl` must never lead nowhere. In force
    only: a consent records the version shown, and a version to come was not."""
    for notice in _privacy_notices(ctx):
        version = current_version(ctx, notice.id, language, at, any_language=True)
        if version is not None:
            return notice, version
    return None


def public_upcoming(
    ctx: TenantContext, language: str = "en", at: datetime | None = None
) -> list[NoticeVersion]:
    """What the public page will show after `at` (now), in date order: on each date a
    version of any privacy notice takes effect, the version `public_notice` picks then, when
    it is not the one picked before. So a new version of the notice shown now, a first notice
    dated later (nothing in force yet), and a new notice that takes over from the one shown
    now are all on the page before they apply (seed 002 "Material Change": "a notice on this
    Site prior to the change becoming effective"); a version overtaken before its date by a
    higher-numbered one never applies and is left out."""
    notices = _privacy_notices(ctx)
    if not notices:
        return []
    when = at or utcnow()
    dates = ctx.session.scalars(
        for_tenant(select(NoticeVersion.effective_at), NoticeVersion, ctx.tenant_id)
        .where(
            NoticeVersion.notice_id.in_([n.id for n in notices]),
            NoticeVersion.effective_at > when,
        )
        .distinct()
        .order_by(NoticeVersion.effective_at)
    )
    now_shown = public_notice(ctx, language, when)
    last = now_shown[1].id if now_shown else None
    out: list[NoticeVersion] = []
    for date in list(dates):
        then = public_notice(ctx, language, date)
        if then is not None and then[1].id != last:
            out.append(then[1])
            last = then[1].id
    return out


def diff(old: NoticeVersion, new: NoticeVersion) -> list[tuple[str, str]]:
    """Line diff between two versions, as (op, line) with op in ' ', '-', '+'."""
    out: list[tuple[str, str]] = []
    for line in difflib.ndiff(old.text.splitlines(), new.text.splitlines()):
        op = line[:1]
        if op in {" ", "-", "+"}:
            out.append((op, line[2:]))
    return out


def in_force(versions_: list[NoticeVersion], at: datetime | None = None) -> set[uuid.UUID]:
    """Ids of the versions in force at `at`, one per language (as `current_version` picks)."""
    when = at or utcnow()
    best: dict[str, NoticeVersion] = {}
    for v in versions_:
        if v.effective_at <= when and (
            v.language not in best or v.version > best[v.language].version
        ):
            best[v.language] = v
    return {v.id for v in best.values()}


def resolve_version(
    ctx: TenantContext, notice: Notice, ref: str, language: str = "en"
) -> NoticeVersion:
    """A version of `notice` named by its number (in `language`) or by its id."""
    ref = ref.strip()
    # Not str.isdigit(): it and int() also take "²", "١" or "２" (a 500, or another version).
    if _NUMBER.fullmatch(ref):
        found = ctx.session.scalar(
            for_tenant(select(NoticeVersion), NoticeVersion, ctx.tenant_id).where(
                NoticeVersion.notice_id == notice.id,
                NoticeVersion.language == language,
                NoticeVersion.version == int(ref),
            )
        )
    else:
        version_id = parse_id(ref)
        found = ctx.session.get(NoticeVersion, (ctx.tenant_id, version_id)) if version_id else None
    if found is None or found.notice_id != notice.id:
        raise NotFound(f"notice {notice.slug!r} has no such version")
    return found


def diff_pair(
    ctx: TenantContext,
    notice: Notice,
    old: str | None = None,
    new: str | None = None,
    language: str = "en",
) -> tuple[NoticeVersion, NoticeVersion]:
    """The two versions to compare: as named, else the latest version in `language` and the
    one before it — "what changed last"."""
    later = (
        resolve_version(ctx, notice, new, language)
        if new
        else next(iter(reversed(versions(ctx, notice, language))), None)
    )
    if later is None:
        raise NotFound(f"notice {notice.slug!r} has no version in {language[:16]!r}")
    if old:
        return resolve_version(ctx, notice, old, language), later
    earlier = [v for v in versions(ctx, notice, later.language) if v.version < later.version]
    if not earlier:
        raise NotFound(f"notice {notice.slug!r} has no version before version {later.version}")
    return earlier[-1], later
