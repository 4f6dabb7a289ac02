"""RFC 8058 one-click unsubscribe.

Every message that can be unsubscribed from carries its own opaque URL,
`<base>/u/<tenant id hex>.<token id hex>.<secret>`: the secret is 256 random bits and only its
SHA-256 is stored, so the data store alone cannot forge a link. The mail client POSTs
`List-Unsubscribe=One-Click` to that URL with no cookies and no authorization; the token alone
names the tenant, the subject, the channel and the topic. The unsubscribe takes effect in the
same transaction: the very next gate check denies (the seeds allow ten business days, mailbox
providers 48 hours; STANDARDS.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import service as consent
from pledge.consent.models import ConsentAction, ConsentMethod
from pledge.core.clock import utcnow
from pledge.core.db import bulk_insert
from pledge.core.errors import InvalidInput, NotFound
from pledge.core.ids import new_id
from pledge.crypto.keystore import KeyStore
from pledge.preferences import service as preferences
from pledge.preferences import topics
from pledge.preferences.links import public_base_url
from pledge.preferences.models import ALL_MARKETING, UnsubscribeToken
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel, LawfulBasis
from pledge.subjects import service as subjects
from pledge.subjects.models import SubjectStatus
from pledge.tenants.models import Tenant

# CAN-SPAM: the link must work at least 30 days after sending; mail is read late. A year+.
TOKEN_LIFETIME = timedelta(days=400)
ONE_CLICK = "List-Unsubscribe=One-Click"
_INVALID = "this unsubscribe link is not valid or has expired"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _check_target(ctx: TenantContext, channel: str, topic: str) -> None:
    if channel not in Channel._value2member_map_ or channel == Channel.WEB.value:
        raise InvalidInput(f"unknown channel {channel[:20]!r}")
    if topic != ALL_MARKETING:
        topics.get_topic(ctx, topic)


def issue_tokens(
    ctx: TenantContext,
    subject_ids: Sequence[uuid.UUID],
    channel: str,
    topic: str,
    campaign_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, str]:
    """One unsubscribe URL per subject (a campaign's recipients), in one insert."""
    _check_target(ctx, channel, topic)
    now = utcnow()
    base = public_base_url()
    rows: list[dict[str, object]] = []
    urls: dict[uuid.UUID, str] = {}
    for subject_id in dict.fromkeys(subject_ids):
        token_id, secret = new_id(), secrets.token_urlsafe(32)
        rows.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": token_id,
                "secret_digest": _digest(secret),
                "subject_id": subject_id,
                "channel": channel,
                "topic": topic,
                "campaign_id": campaign_id,
                "created_at": now,
                "expires_at": now + TOKEN_LIFETIME,
                "used_at": None,
            }
        )
        urls[subject_id] = f"{base}/u/{ctx.tenant_id.hex}.{token_id.hex}.{secret}"
    bulk_insert(ctx.session, UnsubscribeToken, rows)
    return urls


def issue_token(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    channel: str,
    topic: str,
    campaign_id: uuid.UUID | None = None,
) -> str:
    """The one-click unsubscribe URL of one subscription (subject, channel, topic)."""
    subject = consent.active_subject(ctx, subject_id)
    return issue_tokens(ctx, [subject.id], channel, topic, campaign_id)[subject.id]


def list_unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """The RFC 8058 headers: one HTTPS URI (a mailto may follow) and the one-click marker.
    The relay must sign both with DKIM."""
    value = f"<{url}>" + (f", <mailto:{mailto}>" if mailto else "")
    return {"List-Unsubscribe": value, "List-Unsubscribe-Post": ONE_CLICK}


# ---------------------------------------------------------------------------------------------
# Using a token


@dataclass(frozen=True)
class ResolvedToken:
    tenant: Tenant
    token: UnsubscribeToken


def resolve(session: Session, keystore: KeyStore, raw: str) -> ResolvedToken:
    """The tenant and token a URL names. NotFound, one answer for every failure: malformed,
    unknown, another tenant's, a forged secret, expired."""
    parts = raw.split(".")
    if len(parts) != 3 or not all(parts) or len(raw) > 200:
        raise NotFound(_INVALID)
    tenant_hex, token_hex, secret = parts
    try:
        tenant_id, token_id = uuid.UUID(hex=tenant_hex), uuid.UUID(hex=token_hex)
    except ValueError:
        raise NotFound(_INVALID) from None
    tenant = session.get(Tenant, tenant_id)
    token = session.get(UnsubscribeToken, (tenant_id, token_id)) if tenant else None
    expected = token.secret_digest if token is not None else bytes(32)
    # Compare even when nothing was found: the time taken does not tell which part was wrong.
    if not hmac.compare_digest(expected, _digest(secret)) or token is None or tenant is None:
        raise NotFound(_INVALID)
    if token.expires_at <= utcnow():
        raise NotFound(_INVALID)
    return ResolvedToken(tenant, token)


@dataclass(frozen=True)
class Unsubscribed:
    channel: str
    topic: str
    topic_name: str
    effect: str  # consent_withdrawn, opted_out, already, subject_erased


def describe(ctx: TenantContext, token: UnsubscribeToken) -> Unsubscribed:
    """What the token would stop (for the confirmation page); changes nothing."""
    return Unsubscribed(token.channel, token.topic, _topic_name(ctx, token.topic), "")


def _topic_name(ctx: TenantContext, topic: str) -> str:
    if topic == ALL_MARKETING:
        return "all marketing"
    found = topics.find_topic(ctx, topic)
    return found.name if found else topic


def unsubscribe(ctx: TenantContext, token: UnsubscribeToken) -> Unsubscribed:
    """Stop what the token names, now. A consent-based topic: the consent is withdrawn in the
    ledger (GDPR Art. 7(3)); a topic on another basis: an opt-out of that topic on the
    channel; `*`: every marketing topic on the channel. Idempotent."""
    name = _topic_name(ctx, token.topic)
    subject = subjects.get_subject_row(ctx, token.subject_id)
    if subject.status == SubjectStatus.ERASED.value:
        # Nothing is held any more; a suppression (if any) keeps the address off the lists.
        return Unsubscribed(token.channel, token.topic, name, "subject_erased")
    effect = "already"
    found = topics.find_topic(ctx, token.topic) if token.topic != ALL_MARKETING else None
    purpose = purposes.get_purpose_by_id(ctx, found.purpose_id) if found else None
    if purpose is not None and purpose.lawful_basis == LawfulBasis.CONSENT.value:
        if consent.consent_states(ctx, subject.id).get(purpose.id):
            consent.record_consent(
                ctx,
                subject.id,
                consent.ConsentInput(
                    purpose.slug, ConsentAction.WITHDRAW.value, ConsentMethod.UNSUBSCRIBE.value
                ),
            )
            effect = "consent_withdrawn"
    elif preferences.opt_out(ctx, subject.id, token.channel, token.topic, "unsubscribe"):
        effect = "opted_out"
    if token.used_at is None:
        token.used_at = utcnow()
    audit.record(
        ctx,
        AuditEvent.UNSUBSCRIBED,
        subject_id=subject.id,
        details={
            "token_id": str(token.id),
            "channel": token.channel,
            "topic": token.topic,
            "campaign_id": str(token.campaign_id) if token.campaign_id else None,
            "effect": effect,
        },
    )
    return Unsubscribed(token.channel, token.topic, name, effect)
