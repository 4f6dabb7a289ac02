"""Consent receipts: Kantara Consent Receipt v1.1 fields, signed as a compact JWS with the
tenant's Ed25519 key (alg "Ed25519", RFC 9864). ISO/IEC TS 27560 separates the record the
controller keeps (the ledger row) from the receipt given to the person (this)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.consent.models import ConsentRecord
from pledge.core.config import get_settings
from pledge.notices.models import NoticeVersion
from pledge.purposes.models import Purpose
from pledge.rights.models import Recipient
from pledge.subjects.categories import describe
from pledge.subjects.identity import InvalidIdentity, normalise_email

ALG = "Ed25519"
USE = "consent-receipt"
VERSION = "KI-CR-v1.1.0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _private_jwk(raw: bytes, public: bytes) -> OKPKey:
    return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "d": _b64(raw), "x": _b64(public)})


def _public_jwk(public: bytes) -> OKPKey:
    return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": _b64(public)})


def _controller(ctx: TenantContext) -> dict[str, Any]:
    """The tenant as a Kantara `piiControllers` item, with the contact details it holds: its
    privacy contact (the e-mail field too when that is an address). A tenant records no postal
    address or phone number, so those are left out rather than made up."""
    item: dict[str, Any] = {"piiController": ctx.settings.name, "onBehalf": False}
    contact = ctx.settings.privacy_contact.strip()
    if contact:
        item["contact"] = contact
        try:
            normalise_email(contact)
        except InvalidIdentity:
            pass
        else:
            item["email"] = contact
    return item


def _third_parties(ctx: TenantContext, purpose: Purpose) -> str:
    """Who the purpose discloses data to: the tenant's active recipients (a sub-processor
    acts for the tenant and is no third party, GDPR Art. 4(10)). Pledge does not tie
    recipients to purposes, so a disclosing purpose names them all."""
    if not purpose.is_sale_or_sharing:
        return ""
    names = ctx.session.scalars(
        for_tenant(select(Recipient.name), Recipient, ctx.tenant_id)
        .where(Recipient.kind == "recipient", Recipient.active.is_(True))
        .order_by(Recipient.name)
    )
    return ", ".join(names)


def _policy(ctx: TenantContext, record: ConsentRecord) -> dict[str, Any] | None:
    """The privacy notice version in force where the consent was given, if one was."""
    if record.notice_version_id is None:
        return None
    shown = ctx.session.get(NoticeVersion, (ctx.tenant_id, record.notice_version_id))
    if shown is None:
        return None
    return {
        "versionId": str(shown.id),
        "version": shown.version,
        "language": shown.language,
        "sha256": shown.sha256,
    }


def claims_for(
    ctx: TenantContext,
    record: ConsentRecord,
    purpose: Purpose,
    wording: NoticeVersion,
    public: bytes,
) -> dict[str, Any]:
    base = get_settings().base_url.rstrip("/")
    sensitive = sorted(c for c in purpose.data_categories if describe(c).sensitive)
    # The public notice in the language consented in (the page falls back when it has none).
    policy_url = f"{base}/p/{ctx.settings.slug}/privacy"
    if wording.language != "en":
        policy_url += "?" + urlencode({"lang": wording.language})
    claims: dict[str, Any] = {
        "version": VERSION,
        "jurisdiction": ", ".join(ctx.settings.jurisdictions) or ctx.settings.region,
        "consentTimestamp": int(record.recorded_at.timestamp()),
        "collectionMethod": record.method,
        "consentReceiptID": str(record.id),
        "publicKey": _b64(public),
        "language": wording.language,
        # The subject's id, not an identifier of the person: the receipt itself holds no
        # personal value beyond what the person already knows.
        "piiPrincipalId": str(record.subject_id),
        "piiControllers": [_controller(ctx)],
        "policyUrl": policy_url,
        "services": [
            {
                "service": ctx.settings.name,
                "purposes": [
                    {
                        "purpose": purpose.name,
                        "purposeCategory": [purpose.dpv_purpose or purpose.slug],
                        "consentType": "EXPLICIT",
                        "piiCategory": purpose.data_categories,
                        "primaryPurpose": True,
                        "termination": (
                            f"until withdrawn: {base}/p/{ctx.settings.slug}/requests"
                            "?type=withdraw_consent"
                        ),
                        "thirdPartyDisclosure": purpose.is_sale_or_sharing,
                        "thirdPartyName": _third_parties(ctx, purpose),
                    }
                ],
            }
        ],
        "sensitive": bool(sensitive),
        "spiCat": sensitive,
        # Pledge extension: the exact words agreed to, by version and hash.
        "consentWording": {
            "versionId": str(wording.id),
            "version": wording.version,
            "sha256": wording.sha256,
        },
    }
    policy = _policy(ctx, record)
    if policy is not None:
        # Pledge extension: the privacy notice version shown, since `policyUrl` shows
        # whatever version is in force when it is opened.
        claims["privacyNotice"] = policy
    return claims


def issue(
    ctx: TenantContext, record: ConsentRecord, purpose: Purpose, wording: NoticeVersion
) -> str:
    kid, raw = ctx.keystore.signing_key(ctx.tenant_id, USE)
    public = ctx.keystore.public_signing_keys(ctx.tenant_id, USE)[kid]
    payload = json.dumps(
        claims_for(ctx, record, purpose, wording, public), separators=(",", ":"), sort_keys=True
    )
    token: str = jws.serialize_compact(
        {"alg": ALG, "kid": kid, "typ": "JWT"},
        payload.encode(),
        _private_jwk(raw, public),
        algorithms=[ALG],
    )
    return token


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str | None = None
    claims: dict[str, Any] | None = None
    kid: str | None = None


def verify(ctx: TenantContext, token: str) -> Verification:
    """Check a receipt's signature against the tenant's receipt keys (current and retired)."""
    token = token.strip()
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))
    except (ValueError, IndexError):
        return Verification(False, "not a compact JWS")
    if not isinstance(header, dict) or header.get("alg") != ALG:
        return Verification(False, f"unexpected algorithm (expected {ALG})")
    kid = str(header.get("kid", ""))
    public = ctx.keystore.public_signing_keys(ctx.tenant_id, USE).get(kid)
    if public is None:
        return Verification(False, "signed with a key this tenant never used", kid=kid)
    try:
        obj = jws.deserialize_compact(token, _public_jwk(public), algorithms=[ALG])
    except (JoseError, ValueError) as exc:
        return Verification(False, f"signature does not verify ({type(exc).__name__})", kid=kid)
    claims = json.loads(obj.payload)
    return Verification(True, None, claims, kid)


PUBLISHED_USES = (USE, "portability-transfer")


def jwks(ctx: TenantContext) -> dict[str, Any]:
    """The tenant's public signing keys — consent receipts and portability transfers — as a
    JWK set anyone can verify them with."""
    keys: dict[str, bytes] = {}
    for use in PUBLISHED_USES:
        keys.update(ctx.keystore.public_signing_keys(ctx.tenant_id, use))
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64(public),
                "kid": kid,
                "use": "sig",
                "alg": ALG,
            }
            for kid, public in sorted(keys.items())
        ]
    }
