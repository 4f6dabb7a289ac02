"""Signed links to a request's status page in the privacy center.

The requester follows their request without an account: the acknowledgement letter carries a
link signed with a key derived from the tenant key (HMAC over the tenant, the request and an
expiry). Nothing is stored; a link of another tenant, an edited id or a late visit is NotFound.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

from pledge.access.context import TenantContext
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.errors import NotFound
from pledge.core.ids import parse_id
from pledge.rights import service as rights
from pledge.rights.models import RightsRequest

# Long enough for the longest clock (3 months), an appeal and the records kept after it.
STATUS_TTL = timedelta(days=400)


def _mac(ctx: TenantContext, request_id_hex: str, expires: int) -> str:
    key = ctx.keystore.derived_key(ctx.tenant_id, "request-status")
    message = (
        b"pledge:request-status:v1|"
        + ctx.tenant_id.bytes
        + f"|{request_id_hex.lower()}|{expires}".encode()
    )
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def status_token(ctx: TenantContext, request: RightsRequest) -> str:
    expires = int((utcnow() + STATUS_TTL).timestamp())
    return f"{request.id.hex}.{expires}.{_mac(ctx, request.id.hex, expires)}"


def status_url(ctx: TenantContext, request: RightsRequest) -> str:
    base = get_settings().base_url.rstrip("/")
    return f"{base}/p/{ctx.settings.slug}/requests/status/{status_token(ctx, request)}"


def request_for_status(ctx: TenantContext, token: str) -> RightsRequest:
    """The request a status link is for; anything forged, foreign or expired is NotFound."""
    parts = token.split(".")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
        raise NotFound("no such request")
    request_hex, expires, mac = parts[0], int(parts[1]), parts[2]
    expected = _mac(ctx, request_hex, expires)
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        raise NotFound("no such request")
    if expires < utcnow().timestamp():
        raise NotFound("this link has expired")
    request_id = parse_id(request_hex)
    if request_id is None:
        raise NotFound("no such request")
    return rights.get_request(ctx, request_id)
