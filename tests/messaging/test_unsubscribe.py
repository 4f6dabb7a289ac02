"""RFC 8058 one-click unsubscribe, exercised the way mail providers and people do it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pledge.audit.models import AuditEntry
from pledge.consent.models import ConsentRecord
from pledge.core.clock import frozen, utcnow
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.preferences import service as preferences
from pledge.preferences import tokens
from pledge.preferences.models import UnsubscribeToken
from pledge.runtime import Runtime
from tests.conftest import make_tenant
from tests.messaging.conftest import BASE_URL, anonymous, follow_status, subscribe


def _token(runtime: Runtime, tenant: str, subject_id: uuid.UUID, topic: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        return tokens.issue_token(ctx, subject_id, "email", topic)


def _entries(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_the_url_is_opaque_and_only_a_digest_of_the_secret_is_stored(
    runtime: Runtime, clik_tenant: str
) -> None:
    sid = subscribe(runtime, clik_tenant, "ann@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    assert url.startswith(BASE_URL + "/u/")
    tenant_hex, token_hex, secret = url.rsplit("/", 1)[1].split(".")
    assert len(secret) >= 43  # 256 bits, base64url
    assert str(sid) not in url and sid.hex not in url
    with runtime.sessions() as s:
        row = s.get(UnsubscribeToken, (uuid.UUID(tenant_hex), uuid.UUID(token_hex)))
        assert row is not None and row.subject_id == sid
        assert secret.encode() not in row.secret_digest and len(row.secret_digest) == 32
        # Valid for at least a year: mail is read late.
        assert row.expires_at - row.created_at >= timedelta(days=365)


def test_headers_are_exactly_rfc_8058() -> None:
    url = BASE_URL + "/u/abc"
    assert tokens.list_unsubscribe_headers(url) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    with_mailto = tokens.list_unsubscribe_headers(url, mailto="unsub@clik.test")
    assert with_mailto["List-Unsubscribe"] == f"<{url}>, <mailto:unsub@clik.test>"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_a_one_click_post_unsubscribes_at_once_without_cookies_or_redirect(
    runtime: Runtime, clik_tenant: str, encoding: str
) -> None:
    sid = subscribe(runtime, clik_tenant, "bea@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed
    provider = anonymous(runtime)
    if encoding == "urlencoded":
        r = provider.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    else:
        r = provider.post(
            url, files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
        )
    assert r.status_code == 200, r.text
    assert not r.is_redirect and "location" not in r.headers
    assert len(r.content) < 200
    assert not provider.cookies.get("pledge_session")
    with runtime.tenant_context(clik_tenant) as ctx:
        decision = gate.may(ctx, sid, "newsletter", "email", topic="newsletter")
        assert decision.reasons == [Reason.CONSENT_WITHDRAWN]
        # The newsletter rests on consent: the unsubscribe is a withdrawal in the ledger.
        last = ctx.session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.subject_id == sid)
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        ).first()
        assert last is not None and (last.action, last.method) == ("withdraw", "unsubscribe")
        events = [
            e.event
            for e in ctx.session.scalars(
                select(AuditEntry).where(AuditEntry.subject_id == sid).order_by(AuditEntry.seq)
            )
        ]
        assert events.index("consent.withdrawn") < events.index("preference.unsubscribed")


def test_a_second_post_is_harmless(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "cat@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    provider = anonymous(runtime)
    for _ in range(2):
        r = provider.post(url, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200
    with runtime.tenant_context(clik_tenant) as ctx:
        withdrawals = ctx.session.scalar(
            select(func.count())
            .select_from(ConsentRecord)
            .where(ConsentRecord.subject_id == sid, ConsentRecord.action == "withdraw")
        )
        assert withdrawals == 1


def test_a_get_shows_a_page_and_changes_nothing(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "dan@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    before = _entries(runtime)
    scanner = anonymous(runtime)
    for accept in ("text/html", "*/*"):
        r = scanner.get(url, headers={"Accept": accept})
        assert r.status_code == 200
        assert 'name="List-Unsubscribe" value="One-Click"' in r.text
        assert "The Clik newsletter" in r.text
    assert _entries(runtime) == before
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed
        token = ctx.session.scalars(select(UnsubscribeToken)).one()
        assert token.used_at is None


def test_the_page_button_unsubscribes_and_says_so(runtime: Runtime, clik_tenant: str) -> None:
    sid = follow_status(runtime, clik_tenant, "eve@example.com")
    url = _token(runtime, clik_tenant, sid, "status")
    browser = anonymous(runtime)
    r = browser.post(url, data={"List-Unsubscribe": "One-Click"}, headers={"Accept": "text/html"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert "Service status updates" in r.text
    with runtime.tenant_context(clik_tenant) as ctx:
        # Status updates rest on a legitimate interest: an opt-out of that topic.
        assert gate.may(ctx, sid, "status-updates", "email", topic="status").reasons == [
            Reason.TOPIC_OPT_OUT
        ]
        assert [(o.channel, o.topic, o.source) for o in preferences.opt_outs(ctx, sid)] == [
            ("email", "status", "unsubscribe")
        ]


def test_a_post_without_the_one_click_body_changes_nothing(
    runtime: Runtime, clik_tenant: str
) -> None:
    sid = subscribe(runtime, clik_tenant, "fay@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    r = anonymous(runtime).post(url, data={"List-Unsubscribe": "Maybe"})
    assert r.status_code == 400
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed


def _tampered(url: str) -> dict[str, str]:
    tenant_hex, token_hex, secret = url.rsplit("/", 1)[1].split(".")
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return {
        "forged secret": f"/u/{tenant_hex}.{token_hex}.{flipped}",
        "unknown token": f"/u/{tenant_hex}.{uuid.uuid4().hex}.{secret}",
        "no secret": f"/u/{tenant_hex}.{token_hex}",
        "garbage": "/u/not-a-token",
        "unknown tenant": f"/u/{uuid.uuid4().hex}.{token_hex}.{secret}",
    }


def test_bad_links_answer_404_and_change_nothing(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "gil@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    make_tenant(runtime, "other")
    with runtime.tenant_context("other") as ctx:
        other_id = ctx.tenant_id
    cases = _tampered(url)
    # Tenant A's token presented under tenant B's id.
    _a, token_hex, secret = url.rsplit("/", 1)[1].split(".")
    cases["another tenant"] = f"/u/{other_id.hex}.{token_hex}.{secret}"
    before = _entries(runtime)
    client = anonymous(runtime)
    for name, path in cases.items():
        r = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 404, name
        r = client.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 404 and "not valid or has expired" in r.text, name
    assert _entries(runtime) == before
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed


def test_an_expired_link_no_longer_works(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "hal@example.com")
    url = _token(runtime, clik_tenant, sid, "newsletter")
    with frozen(utcnow() + tokens.TOKEN_LIFETIME + timedelta(seconds=1)):
        r = anonymous(runtime).post(url, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 404
    with frozen(utcnow() + timedelta(days=364)):
        r = anonymous(runtime).post(url, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200


def test_all_marketing_stops_marketing_but_service_messages_go_on(
    runtime: Runtime, clik_tenant: str
) -> None:
    """A token for `*`: every marketing topic on the channel (seed 001 §5.3)."""
    sid = subscribe(runtime, clik_tenant, "ida@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        from pledge.consent import service as consent

        consent.add_relationship(ctx, sid, "product-marketing")
        consent.add_relationship(ctx, sid, "provide-service")
    url = _token(runtime, clik_tenant, sid, "*")
    assert anonymous(runtime).post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with runtime.tenant_context(clik_tenant) as ctx:
        denied = gate.may(ctx, sid, "product-marketing", "email", topic="product-news")
        assert denied.reasons == [Reason.MARKETING_OPT_OUT]
        assert Reason.MARKETING_OPT_OUT in gate.may(ctx, sid, "newsletter", "email").reasons
        assert gate.may(ctx, sid, "provide-service", "email", topic="account").allowed
