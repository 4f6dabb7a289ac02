"""Admin pages of notices: the list, a notice with its versions per language, a version's
exact text, the publish form and the diff between two versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.permissions import Scope
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput, NotFound
from pledge.notices import service
from pledge.notices.models import Notice, NoticeKind, NoticeVersion
from pledge.notices.schemas import DIFF_OPS
from pledge.purposes.pages import in_savepoint
from pledge.tenants import service as tenants
from pledge.web.deps import DbSession, PageContext, RuntimeDep, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)
PUBLIC_READER = Actor(ActorKind.ANONYMOUS, "privacy-notice")

Reader = Annotated[PageContext, Depends(page_context(Scope.NOTICES_READ))]
Writer = Annotated[PageContext, Depends(page_context(Scope.NOTICES_WRITE))]
KINDS = [
    (NoticeKind.PRIVACY_NOTICE.value, "Privacy notice"),
    (NoticeKind.CONSENT_WORDING.value, "Consent wording (the words by a checkbox)"),
]
NOTICES = {
    "created": "The notice was created. Publish its first version.",
    "published": "The new version was published. Earlier versions are kept as they were.",
}


def _by_language(versions: list[NoticeVersion]) -> dict[str, list[NoticeVersion]]:
    out: dict[str, list[NoticeVersion]] = {}
    for v in versions:
        out.setdefault(v.language, []).append(v)
    for items in out.values():
        items.sort(key=lambda v: v.version, reverse=True)
    return dict(sorted(out.items()))


@router.get("/notices")
def notices_list(request: Request, page: Reader) -> Response:
    rows = []
    for notice in service.list_notices(page.ctx):
        versions = service.versions(page.ctx, notice)
        current = service.in_force(versions)
        rows.append((notice, [v for v in versions if v.id in current], len(versions)))
    return render(request, "notices/list.html", {"rows": rows, "kinds": dict(KINDS)})


@router.get("/notices/new")
def notice_new(request: Request, page: Writer) -> Response:
    return render(request, "notices/new.html", {"kinds": KINDS, "form": {}, "error": None})


@router.post("/notices")
async def notice_create(request: Request, page: Writer) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, "")) for k in ("slug", "kind", "title")}
    created, error = in_savepoint(
        page,
        lambda: service.create_notice(
            page.ctx, slug=form["slug"].strip(), kind=form["kind"], title=form["title"]
        ),
    )
    if created is None:
        return render(
            request,
            "notices/new.html",
            {"kinds": KINDS, "form": form, "error": error},
            status_code=422,
        )
    return RedirectResponse(f"/notices/{created.slug}?notice=created", status_code=303)


@router.get("/notices/{slug}")
def notice_page(request: Request, slug: str, page: Reader, notice: str | None = None) -> Response:
    found = service.get_notice(page.ctx, slug)
    versions = service.versions(page.ctx, found)
    return render(
        request,
        "notices/detail.html",
        {
            "notice": found,
            "kind_label": dict(KINDS).get(found.kind, found.kind),
            "languages": _by_language(versions),
            "current": service.in_force(versions),
            "now": utcnow(),
            "message": NOTICES.get(notice or ""),
        },
    )


@router.get("/notices/{slug}/versions/{version_id}")
def version_page(request: Request, slug: str, version_id: str, page: Reader) -> Response:
    found = service.get_notice(page.ctx, slug)
    version = service.resolve_version(page.ctx, found, version_id)
    current = service.in_force(service.versions(page.ctx, found, version.language))
    return render(
        request,
        "notices/version.html",
        {"notice": found, "version": version, "in_force": version.id in current},
    )


@dataclass
class PublishForm:
    text: str = ""
    language: str = "en"
    effective_at: str = ""
    summary: str = ""
    material: bool = False


def _publish_form(
    request: Request, notice: Notice, form: PublishForm, error: str | None = None
) -> Response:
    return render(
        request,
        "notices/publish.html",
        {"notice": notice, "form": form, "error": error},
        status_code=422 if error else 200,
    )


@router.get("/notices/{slug}/publish")
def publish_form(request: Request, slug: str, page: Writer) -> Response:
    found = service.get_notice(page.ctx, slug)
    latest = service.versions(page.ctx, found, "en")
    # Start from the latest English text: most changes are edits of it.
    return _publish_form(request, found, PublishForm(text=latest[-1].text if latest else ""))


def _effective(value: str) -> datetime | None:
    """The form's `datetime-local` value, read as UTC (the label says so)."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("'Takes effect' must be a date and time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@router.post("/notices/{slug}/versions")
async def publish(request: Request, slug: str, page: Writer) -> Response:
    found = service.get_notice(page.ctx, slug)
    raw = await request.form()
    form = PublishForm(
        text=str(raw.get("text", "")),
        language=str(raw.get("language", "en")).strip() or "en",
        effective_at=str(raw.get("effective_at", "")),
        summary=str(raw.get("summary", "")),
        material=raw.get("material") == "on",
    )
    version, error = in_savepoint(
        page,
        lambda: service.publish_version(
            page.ctx,
            found.slug,
            text=form.text,
            language=form.language,
            effective_at=_effective(form.effective_at),
            summary=form.summary,
            material=form.material,
        ),
    )
    if version is None:
        return _publish_form(request, found, form, error)
    return RedirectResponse(f"/notices/{found.slug}?notice=published", status_code=303)


@router.get("/notices/{slug}/diff")
def diff_page(
    request: Request,
    slug: str,
    page: Reader,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    language: Annotated[str, Query(max_length=16)] = "en",
) -> Response:
    found = service.get_notice(page.ctx, slug)
    old, new = service.diff_pair(page.ctx, found, from_, to, language)
    lines = [(DIFF_OPS[op], text) for op, text in service.diff(old, new)]
    return render(
        request,
        "notices/diff.html",
        {
            "notice": found,
            "old": old,
            "new": new,
            "lines": lines,
            "added": sum(1 for op, _ in lines if op == "added"),
            "removed": sum(1 for op, _ in lines if op == "removed"),
        },
    )


# ---------------------------------------------------------------------------------------------
# Public: the privacy notice in force (the `policyUrl` of every consent receipt)


@router.get("/p/{slug}/privacy")
def public_privacy_notice(
    request: Request, slug: str, session: DbSession, runtime: RuntimeDep, lang: str = "en"
) -> Response:
    """The tenant's privacy notice as in force now, in the language asked for (else English,
    else any language in force), and the versions published to take effect later. No login:
    anyone may read it. When no version is in force yet, the versions to come alone, said so
    plainly; 404 only when the tenant has no privacy notice version at all."""
    tenant = tenants.get_tenant_by_slug(session, slug)
    ctx = TenantContext(session, runtime.keystore, tenant, PUBLIC_READER, frozenset())
    language = lang[:16]
    shown = service.public_notice(ctx, language)
    # Seed 002 "Material Change": "a notice on this Site prior to the change becoming
    # effective". Every change to come is shown, in date order, not only the next: each one
    # is then on the site from the day it is published, however soon after it another takes
    # effect. Not only material ones either: any change alters what applies to the reader,
    # and showing it early costs nothing (`material` decides who is e-mailed, not this).
    upcoming = service.public_upcoming(ctx, language)
    version: NoticeVersion | None
    if shown is not None:
        notice, version = shown
    elif upcoming:
        # A first notice published to take effect later: the page says nothing applies yet.
        notice, version = service.get_notice(ctx, upcoming[0].notice_id), None
    else:
        raise NotFound("this organisation has no privacy notice")
    return render(
        request,
        "public/privacy_notice.html",
        {
            "tenant_name": tenant.name,
            "slug": tenant.slug,
            "notice": notice,
            "version": version,
            "upcoming": upcoming,
        },
    )
