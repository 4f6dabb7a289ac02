"""Single-use, expiring download links to a request's files, and signed direct transfers."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from joserfc import jws
from sqlalchemy import CursorResult, update

from pledge.access.context import TenantContext
from pledge.access.scoping import get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.receipts import ALG, _private_jwk
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.db import bulk_insert
from pledge.core.errors import NotFound
from pledge.core.ids import new_id, parse_id
from pledge.rights import letters
from pledge.rights.models import DownloadLink, RequestArtifact, RightsRequest
from pledge.webhooks import service as webhooks
from pledge.webhooks import targets

LINK_TTL = timedelta(days=7)
TRANSFER_USE = "portability-transfer"
# How long a transfer may be accepted after it was signed: its retries (about 40 h in all)
# arrive well inside it; a copy replayed later is refused (the `exp` claim).
TRANSFER_TTL = timedelta(days=7)


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime


def create(ctx: TenantContext, request: RightsRequest, artifact: RequestArtifact) -> Link:
    secret = secrets.token_urlsafe(32)
    link_id, now = new_id(), utcnow()
    expires_at = now + LINK_TTL
    # Written at once, as a row: no object of it is needed (a download reads it by id).
    bulk_insert(
        ctx.session,
        DownloadLink,
        [
            {
                "tenant_id": ctx.tenant_id,
                "id": link_id,
                "request_id": request.id,
                "artifact_id": artifact.id,
                "secret_digest": hashlib.sha256(secret.encode()).digest(),
                "created_at": now,
                "expires_at": expires_at,
                "used_at": None,
            }
        ],
    )
    base = get_settings().base_url.rstrip("/")
    return Link(f"{base}/p/{ctx.settings.slug}/downloads/{link_id.hex}.{secret}", expires_at)


@dataclass(frozen=True)
class Download:
    name: str
    media_type: str
    content: bytes


def _find(ctx: TenantContext, token: str) -> DownloadLink:
    link_hex, _, secret = token.partition(".")
    link_id = parse_id(link_hex)
    if link_id is None or not secret:
        raise NotFound("no such download")
    link = ctx.session.get(DownloadLink, (ctx.tenant_id, link_id))
    if link is None or not hmac.compare_digest(
        link.secret_digest, hashlib.sha256(secret.encode()).digest()
    ):
        raise NotFound("no such download")
    return link


def is_ready(ctx: TenantContext, token: str) -> bool:
    """Whether the link can still be redeemed (False: used or expired), without using it —
    for a page that asks before downloading (link scanners follow GETs). NotFound if the
    link does not exist."""
    link = _find(ctx, token)
    return link.used_at is None and link.expires_at > utcnow()


def redeem(ctx: TenantContext, token: str) -> Download:
    """Open a download link: once, before it expires; audited. Anything wrong is NotFound."""
    link = _find(ctx, token)
    if link.used_at is not None or link.expires_at <= utcnow():
        raise NotFound("this download link was used already or has expired; ask for a new one")
    request = get_in_tenant(
        ctx.session, RightsRequest, ctx.tenant_id, link.request_id, what="download"
    )
    artifact = get_in_tenant(
        ctx.session, RequestArtifact, ctx.tenant_id, link.artifact_id, what="download"
    )
    content = letters.open_artifact(ctx, request, artifact)
    if content is None:
        raise NotFound("this file was erased")
    # Used once, even by two clicks at the same moment: the second finds it taken (on
    # PostgreSQL its UPDATE waits for the first transaction and then matches nothing).
    taken = ctx.session.execute(
        update(DownloadLink)
        .where(
            DownloadLink.tenant_id == ctx.tenant_id,
            DownloadLink.id == link.id,
            DownloadLink.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    if not cast(CursorResult[Any], taken).rowcount:
        raise NotFound("this download link was used already or has expired; ask for a new one")
    audit.record(
        ctx,
        AuditEvent.RIGHTS_DOWNLOAD,
        subject_id=request.subject_id,
        details={"request_id": str(request.id), "artifact": artifact.kind, "bytes": len(content)},
    )
    return Download(artifact.name, artifact.media_type, content)


def transfer(ctx: TenantContext, request: RightsRequest, url: str, data: dict[str, Any]) -> None:
    """Send the portable data straight to another organisation (seed 003), as a JWS signed
    with the tenant's Ed25519 key, after commit, retried like a webhook. `aud` (the URL) and
    `exp` (RFC 7519 claims): the receiver can refuse a copy meant for someone else, or one
    replayed after TRANSFER_TTL. Sealed under the tenant's key while it waits: the person's
    erasure cancels it then (`webhooks.cancel_for_erasure`)."""
    url = targets.check_url(url, "the transfer's endpoint")
    kid, raw = ctx.keystore.signing_key(ctx.tenant_id, TRANSFER_USE)
    public = ctx.keystore.public_signing_keys(ctx.tenant_id, TRANSFER_USE)[kid]
    now = utcnow()
    payload = json.dumps(
        {
            "controller": ctx.settings.name,
            "reference": request.reference,
            "data": data,
            "sent_at": now.isoformat(),
            "aud": url,
            "exp": int((now + TRANSFER_TTL).timestamp()),
        },
        ensure_ascii=False,
    ).encode()
    # The receiver checks the signature with the key `kid` of the tenant's published set.
    jwks_url = f"{get_settings().base_url.rstrip('/')}/p/{ctx.settings.slug}/.well-known/jwks.json"
    token: str = jws.serialize_compact(
        {"alg": ALG, "kid": kid, "jku": jwks_url},
        payload,
        _private_jwk(raw, public),
        algorithms=[ALG],
    )
    webhooks.send_to_url(ctx, "portability.transfer", url, token, request_id=request.id)
