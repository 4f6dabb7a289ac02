"""Signed links to a subject's public preference center.

`/p/<tenant slug>/preferences?s=<subject id>&e=<expiry, unix seconds>&sig=<HMAC>`: the
signature is HMAC-SHA256 under a key derived from the tenant key for this one use, over the
tenant id, the subject id and the expiry, compared in constant time. Nothing is stored: the
link is checked by recomputing it. It goes in every e-mail next to the unsubscribe link, so it
lives as long (CAN-SPAM: a link must work at least 30 days after sending; we keep 400 days).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from pledge.access.context import TenantContext
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.errors import NotFound
from pledge.core.ids import parse_id
from pledge.crypto.keystore import KeyStore
from pledge.subjects.models import Subject, SubjectStatus
from pledge.tenants.models import Tenant

LINK_LIFETIME = timedelta(days=400)
_PURPOSE = "preference-link"
_INVALID = "this preference link is not valid or has expired"


def public_base_url() -> str:
    """The public origin of links that leave the system (e-mails)."""
    return get_settings().base_url.rstrip("/")


def _signature(key: bytes, tenant_id: uuid.UUID, subject_id: uuid.UUID, expiry: int) -> str:
    message = b"pledge:preference-link:v1|" + tenant_id.bytes + subject_id.bytes
    message += str(expiry).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def link_query(ctx: TenantContext, subject_id: uuid.UUID, expires_at: datetime) -> dict[str, str]:
    expiry = int(expires_at.timestamp())
    key = ctx.keystore.derived_key(ctx.tenant_id, _PURPOSE)
    return {
        "s": str(subject_id),
        "e": str(expiry),
        "sig": _signature(key, ctx.tenant_id, subject_id, expiry),
    }


def preference_link(
    ctx: TenantContext, subject_id: uuid.UUID, *, expires_at: datetime | None = None
) -> str:
    """The URL of the subject's preference center, signed, valid for LINK_LIFETIME."""
    query = link_query(ctx, subject_id, expires_at or utcnow() + LINK_LIFETIME)
    return f"{public_base_url()}/p/{ctx.settings.slug}/preferences?{urlencode(query)}"


@dataclass(frozen=True)
class LinkHolder:
    tenant: Tenant
    subject: Subject
    query: dict[str, str]  # the link's own parameters, for the page's forms


def verify_link(
    session: Session, keystore: KeyStore, slug: str, s: str, e: str, sig: str
) -> LinkHolder:
    """The tenant and subject a link was signed for; NotFound for a bad, foreign or expired
    link — one answer for all, so a guess learns nothing."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug[:40]))
    subject_id = parse_id(s)
    if tenant is None or subject_id is None or not e.isdigit() or len(e) > 12:
        raise NotFound(_INVALID)
    key = keystore.derived_key(tenant.id, _PURPOSE)
    expected = _signature(key, tenant.id, subject_id, int(e))
    if not hmac.compare_digest(expected.encode(), sig.encode()[:64]):
        raise NotFound(_INVALID)
    if int(e) <= int(utcnow().timestamp()):
        raise NotFound(_INVALID)
    subject = session.get(Subject, (tenant.id, subject_id))
    if subject is None or subject.status == SubjectStatus.ERASED.value:
        raise NotFound(_INVALID)
    return LinkHolder(tenant, subject, {"s": s, "e": e, "sig": sig})
