"""Admin pages of purposes and collection points: lists and forms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from pledge.access.permissions import Scope
from pledge.core.errors import Conflict, InvalidInput, NotFound
from pledge.notices import service as notices
from pledge.notices.models import NoticeKind
from pledge.purposes import catalogue, service
from pledge.purposes.models import (
    Channel,
    CollectionPoint,
    CollectionPointKind,
    LawfulBasis,
    Purpose,
)
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput
from pledge.subjects.categories import taxonomy
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[PageContext, Depends(page_context(Scope.PURPOSES_READ))]
Writer = Annotated[PageContext, Depends(page_context(Scope.PURPOSES_WRITE))]
T = TypeVar("T")

# GDPR Art. 6(1), labelled for people; the values are the W3C DPV terms.
BASES: list[tuple[str, str]] = [
    (LawfulBasis.CONSENT.value, "Consent — Art. 6(1)(a)"),
    (LawfulBasis.CONTRACT.value, "Contract — Art. 6(1)(b)"),
    (LawfulBasis.LEGAL_OBLIGATION.value, "Legal obligation — Art. 6(1)(c)"),
    (LawfulBasis.VITAL_INTEREST.value, "Vital interests — Art. 6(1)(d)"),
    (LawfulBasis.PUBLIC_INTEREST.value, "Public task — Art. 6(1)(e)"),
    (LawfulBasis.OFFICIAL_AUTHORITY.value, "Official authority — Art. 6(1)(e)"),
    (LawfulBasis.LEGITIMATE_INTEREST.value, "Legitimate interests — Art. 6(1)(f)"),
]
BASIS_LABEL = dict(BASES)
DPV_PURPOSES = [
    "CustomerManagement",
    "CustomerCare",
    "CustomerRelationshipManagement",
    "CommunicationForCustomerCare",
    "Marketing",
    "DirectMarketing",
    "Advertising",
    "FraudPreventionAndDetection",
    "IdentityVerification",
    "LegalCompliance",
    "ImproveExistingProductsAndServices",
    "ResearchAndDevelopment",
]
NOTICES = {
    "created": "The purpose was created.",
    "saved": "The purpose was saved.",
    "archived": "The purpose was archived: the gate denies it from now on.",
    "point-saved": "The collection point was saved.",
}


def in_savepoint(page: PageContext, action: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run a service call for a form; bad input becomes a message for the form, and whatever
    the call wrote before failing is rolled back (the request's transaction still commits).
    Something the form names that is not there (a purpose taken away while the form was
    open) is bad input too: the form comes back with what was typed, not a 404 page."""
    try:
        with page.ctx.session.begin_nested():
            return action(), None
    except (InvalidInput, Conflict, NotFound) as exc:
        return None, exc.detail


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


# ---------------------------------------------------------------------------------------------
# Purposes


@dataclass
class PurposeForm:
    slug: str = ""
    name: str = ""
    lawful_basis: str = LawfulBasis.CONSENT.value
    description: str = ""
    categories: str = ""
    channels: list[str] = field(default_factory=list)
    is_marketing: bool = False
    is_sale_or_sharing: bool = False
    legitimate_interest_note: str = ""
    dpv_purpose: str = ""
    consent_notice: str = ""

    @classmethod
    def of(cls, purpose: Purpose, notice_slug: str | None) -> PurposeForm:
        return cls(
            slug=purpose.slug,
            name=purpose.name,
            lawful_basis=purpose.lawful_basis,
            description=purpose.description,
            categories="\n".join(purpose.data_categories),
            channels=list(purpose.channels),
            is_marketing=purpose.is_marketing,
            is_sale_or_sharing=purpose.is_sale_or_sharing,
            legitimate_interest_note=purpose.legitimate_interest_note or "",
            dpv_purpose=purpose.dpv_purpose or "",
            consent_notice=notice_slug or "",
        )

    @classmethod
    def parse(cls, form: FormData, slug: str | None = None) -> PurposeForm:
        return cls(
            slug=slug if slug is not None else _text(form, "slug").strip(),
            name=_text(form, "name"),
            lawful_basis=_text(form, "lawful_basis"),
            description=_text(form, "description"),
            categories=_text(form, "data_categories"),
            channels=_texts(form, "channels"),
            is_marketing=form.get("is_marketing") == "on",
            is_sale_or_sharing=form.get("is_sale_or_sharing") == "on",
            legitimate_interest_note=_text(form, "legitimate_interest_note"),
            dpv_purpose=_text(form, "dpv_purpose"),
            consent_notice=_text(form, "consent_notice"),
        )

    def to_input(self) -> PurposeInput:
        categories = [c.strip() for c in self.categories.replace(",", "\n").splitlines()]
        return PurposeInput(
            slug=self.slug,
            name=self.name,
            lawful_basis=self.lawful_basis,
            description=self.description,
            data_categories=[c for c in categories if c],
            channels=self.channels,
            is_marketing=self.is_marketing,
            is_sale_or_sharing=self.is_sale_or_sharing,
            legitimate_interest_note=self.legitimate_interest_note,
            dpv_purpose=self.dpv_purpose,
            consent_notice=self.consent_notice or None,
        )


def _purpose_form(
    request: Request,
    page: PageContext,
    form: PurposeForm,
    *,
    editing: Purpose | None,
    error: str | None = None,
) -> Response:
    wordings = [n for n in notices.list_notices(page.ctx) if n.kind == NoticeKind.CONSENT_WORDING]
    return render(
        request,
        "purposes/form.html",
        {
            "form": form,
            "editing": editing,
            "error": error,
            "bases": BASES,
            "channels": [c.value for c in Channel],
            "wordings": wordings,
            "dpv_purposes": DPV_PURPOSES,
            "categories": sorted(taxonomy().values(), key=lambda c: c.key),
        },
        status_code=422 if error else 200,
    )


@router.get("/purposes")
def purposes_list(request: Request, page: Reader, notice: str | None = None) -> Response:
    points = catalogue.points_by_purpose(page.ctx)
    return render(
        request,
        "purposes/list.html",
        {
            "purposes": service.list_purposes(page.ctx, include_archived=True),
            "points": points,
            "basis_label": BASIS_LABEL,
            "notice": NOTICES.get(notice or ""),
        },
    )


@router.get("/purposes/new")
def purpose_new(request: Request, page: Writer) -> Response:
    return _purpose_form(request, page, PurposeForm(), editing=None)


@router.post("/purposes")
async def purpose_create(request: Request, page: Writer) -> Response:
    form = PurposeForm.parse(await request.form())
    created, error = in_savepoint(page, lambda: service.create_purpose(page.ctx, form.to_input()))
    if created is None:
        return _purpose_form(request, page, form, editing=None, error=error)
    return RedirectResponse("/purposes?notice=created", status_code=303)


@router.get("/purposes/{slug}")
def purpose_edit(request: Request, slug: str, page: Reader) -> Response:
    purpose = service.get_purpose(page.ctx, slug)
    notice = (
        notices.find_notice(page.ctx, purpose.consent_notice_id)
        if purpose.consent_notice_id
        else None
    )
    return _purpose_form(
        request, page, PurposeForm.of(purpose, notice.slug if notice else None), editing=purpose
    )


@router.post("/purposes/{slug}")
async def purpose_update(request: Request, slug: str, page: Writer) -> Response:
    purpose = service.get_purpose(page.ctx, slug)
    form = PurposeForm.parse(await request.form(), slug=purpose.slug)
    saved, error = in_savepoint(
        page, lambda: service.update_purpose(page.ctx, purpose.slug, form.to_input())
    )
    if saved is None:
        return _purpose_form(request, page, form, editing=purpose, error=error)
    return RedirectResponse("/purposes?notice=saved", status_code=303)


@router.post("/purposes/{slug}/archive")
def purpose_archive(slug: str, page: Writer) -> Response:
    service.archive_purpose(page.ctx, slug)
    return RedirectResponse("/purposes?notice=archived", status_code=303)


# ---------------------------------------------------------------------------------------------
# Collection points


@dataclass
class PointForm:
    slug: str = ""
    name: str = ""
    kind: str = CollectionPointKind.WEB_FORM.value
    description: str = ""
    privacy_notice: str = ""
    purposes: list[str] = field(default_factory=list)
    wordings: dict[str, str] = field(default_factory=dict)  # purpose slug → notice slug

    @classmethod
    def of(cls, view: catalogue.PointView) -> PointForm:
        return cls(
            slug=view.point.slug,
            name=view.point.name,
            kind=view.point.kind,
            description=view.point.description,
            privacy_notice=view.privacy_notice.slug if view.privacy_notice else "",
            purposes=[i.purpose.slug for i in view.purposes],
            # Only a wording chosen for this point, not the purpose's default it falls back to.
            wordings={},
        )

    @classmethod
    def parse(cls, form: FormData, slug: str | None = None) -> PointForm:
        chosen = _texts(form, "purposes")
        return cls(
            slug=slug if slug is not None else _text(form, "slug").strip(),
            name=_text(form, "name"),
            kind=_text(form, "kind"),
            description=_text(form, "description"),
            privacy_notice=_text(form, "privacy_notice"),
            purposes=chosen,
            wordings={
                p: _text(form, f"wording:{p}") for p in chosen if _text(form, f"wording:{p}")
            },
        )

    def to_input(self) -> CollectionPointInput:
        return CollectionPointInput(
            slug=self.slug,
            name=self.name,
            kind=self.kind,
            description=self.description,
            privacy_notice=self.privacy_notice or None,
            purposes=[CollectsFor(p, self.wordings.get(p)) for p in self.purposes],
        )


def _point_wordings(page: PageContext, slug: str) -> dict[str, str]:
    """The wording chosen at the point itself, per purpose (not the purposes' defaults)."""
    point = service.get_collection_point(page.ctx, slug)
    by_id = catalogue.notices_by_id(page.ctx)
    out: dict[str, str] = {}
    for purpose, wording in service.collection_point_purposes(page.ctx, point):
        if wording is not None and wording != purpose.consent_notice_id and wording in by_id:
            out[purpose.slug] = by_id[wording].slug
    return out


def _point_form(
    request: Request,
    page: PageContext,
    form: PointForm,
    *,
    editing: bool,
    error: str | None = None,
) -> Response:
    all_notices = notices.list_notices(page.ctx)
    return render(
        request,
        "purposes/point_form.html",
        {
            "form": form,
            "editing": editing,
            "error": error,
            "kinds": [k.value for k in CollectionPointKind],
            "purposes": service.list_purposes(page.ctx),
            "basis_label": BASIS_LABEL,
            "privacy_notices": [n for n in all_notices if n.kind == NoticeKind.PRIVACY_NOTICE],
            "wordings": [n for n in all_notices if n.kind == NoticeKind.CONSENT_WORDING],
            "default_wording": {n.id: n.slug for n in all_notices},
        },
        status_code=422 if error else 200,
    )


@router.get("/collection-points")
def points_list(request: Request, page: Reader, notice: str | None = None) -> Response:
    return render(
        request,
        "purposes/points.html",
        {
            "points": catalogue.point_views(page.ctx),
            "basis_label": BASIS_LABEL,
            "notice": NOTICES.get(notice or ""),
        },
    )


@router.get("/collection-points/new")
def point_new(request: Request, page: Writer) -> Response:
    return _point_form(request, page, PointForm(), editing=False)


def _save_point(page: PageContext, form: PointForm, *, new: bool) -> CollectionPoint:
    if new and service.find_collection_point(page.ctx, form.slug) is not None:
        raise Conflict(f"collection point {form.slug!r} already exists")
    try:
        return service.save_collection_point(page.ctx, form.to_input())
    except NotFound:
        gone = [p for p in form.purposes if service.find_purpose(page.ctx, p) is None]
        if not gone:
            raise
        names = ", ".join(repr(p[:60]) for p in gone)
        raise InvalidInput(
            f"purpose {names} is no longer there; choose the purposes again from the list"
        ) from None


@router.post("/collection-points")
async def point_create(request: Request, page: Writer) -> Response:
    form = PointForm.parse(await request.form())
    saved, error = in_savepoint(page, lambda: _save_point(page, form, new=True))
    if saved is None:
        return _point_form(request, page, form, editing=False, error=error)
    return RedirectResponse("/collection-points?notice=point-saved", status_code=303)


@router.get("/collection-points/{slug}")
def point_edit(request: Request, slug: str, page: Reader) -> Response:
    point = service.get_collection_point(page.ctx, slug)
    form = PointForm.of(catalogue.point_view(page.ctx, point))
    form.wordings = _point_wordings(page, point.slug)
    return _point_form(request, page, form, editing=True)


@router.post("/collection-points/{slug}")
async def point_update(request: Request, slug: str, page: Writer) -> Response:
    point = service.get_collection_point(page.ctx, slug)
    form = PointForm.parse(await request.form(), slug=point.slug)
    saved, error = in_savepoint(page, lambda: _save_point(page, form, new=False))
    if saved is None:
        return _point_form(request, page, form, editing=True, error=error)
    return RedirectResponse("/collection-points?notice=point-saved", status_code=303)
