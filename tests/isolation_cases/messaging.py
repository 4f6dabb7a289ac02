"""Isolation cases of the messaging routes (issue 3): the mail outbox, campaigns, preferences,
the suppression list and the public unsubscribe and preference pages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import select

from pledge.campaigns import service as campaigns
from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.mail import reading as mail_reading
from pledge.mail import service as mail
from pledge.notices import service as notices
from pledge.preferences import links, suppression, tokens, topics
from pledge.preferences import service as preferences
from pledge.preferences.models import Suppression
from pledge.purposes import service as purposes
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from tests.isolation_cases import Cases, World

A_EMAIL = "messaging.only.in.a@example.com"
A_SUPPRESSED = "suppressed.in.a@example.com"
TARGET = {"channel": "email", "topic": "*"}
# Filled by setup_a: links that only tenant A's data can answer.
A_LINKS: dict[str, str] = {}


def setup_a(runtime: Runtime) -> dict[str, str]:
    with runtime.tenant_context("tenant-a") as ctx:
        notices.create_notice(ctx, slug="msg-wording", kind="consent_wording", title="News")
        notices.publish_version(ctx, "msg-wording", text="Yes, send me A's news.")
        purposes.create_purpose(
            ctx,
            PurposeInput(
                slug="msg-news",
                name="A's news",
                lawful_basis="Consent",
                channels=["email"],
                is_marketing=True,
                consent_notice="msg-wording",
            ),
        )
        purposes.save_collection_point(
            ctx,
            CollectionPointInput(
                slug="msg-signup",
                name="A's sign-up",
                kind="newsletter_signup",
                purposes=[CollectsFor("msg-news")],
            ),
        )
        topics.create_topic(ctx, slug="msg-news", name="A-only newsletter", purpose="msg-news")
        sid = intake.collect(
            ctx,
            "msg-signup",
            [FieldInput("email", A_EMAIL), FieldInput("first_name", "Ada", "user.name.first")],
            [ConsentChoice("msg-news", True)],
        ).subject_id
        campaign = campaigns.create_campaign(
            ctx,
            campaigns.CampaignInput(
                "A-only campaign", "msg-news", "email", "msg-news", "Hi", "Hi {first_name}"
            ),
        )
        message_id = mail.queue(
            ctx, to=A_EMAIL, subject_line="A's letter", text="For A only.", subject_id=sid
        )
        suppression.add_suppression(ctx, "email", A_SUPPRESSED)
        A_LINKS["unsubscribe"] = tokens.issue_token(ctx, sid, "email", "msg-news")
        A_LINKS["preferences"] = links.preference_link(ctx, sid)
        A_LINKS["subject"] = str(sid)
    return {"campaign_id": str(campaign.id), "message_id": str(message_id)}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def check(w: World) -> None:
    a_campaign, a_message = w.params["campaign_id"], w.params["message_id"]
    r = w.api.get("/api/v1/campaigns")
    assert r.status_code == 200 and r.json() == []
    # A's purpose and topic do not exist in B.
    r = w.api.post(
        "/api/v1/campaigns",
        json={
            "name": "x",
            "purpose": "msg-news",
            "topic": "msg-news",
            "subject_line": "x",
            "body": "x",
        },
    )
    assert r.status_code == 404
    for path in ("/mail", "/campaigns", "/campaigns/new"):
        r = w.page.get(path)
        assert r.status_code == 200, path
        assert a_campaign not in r.text and a_message not in r.text, path
        assert "A-only" not in r.text and A_EMAIL not in r.text, path
    r = w.page.post(
        "/campaigns",
        data={
            "name": "x",
            "topic": "msg-news",
            "subject_line": "x",
            "body": "x",
            "csrf_token": w.csrf,
        },
    )
    assert r.status_code == 422 and "no such topic" in r.text

    # A's suppression list is A's: B neither sees, nor finds, nor lifts it.
    assert w.api.get("/api/v1/suppressions").json() == []
    r = w.api.post("/api/v1/suppressions/check", json={"email": A_SUPPRESSED})
    assert r.json() == {"suppressed": False, "channels": []}
    assert w.api.post("/api/v1/suppressions/remove", json={"email": A_SUPPRESSED}).json() == {
        "entries": 0
    }
    assert w.api.post("/api/v1/suppressions", json={"email": A_SUPPRESSED}).status_code == 201

    # A's links, moved into B: a B slug with A's signature, A's token under B's tenant id.
    pref = urlsplit(A_LINKS["preferences"])
    r = w.page.get(f"/p/tenant-b/preferences?{pref.query}", headers={"accept": "text/html"})
    assert r.status_code == 404
    token = _path(A_LINKS["unsubscribe"]).rsplit("/", 1)[1]
    _a_tenant, token_id, secret = token.split(".")
    with w.runtime.tenant_context("tenant-b") as ctx:
        b_hex = ctx.tenant_id.hex
    r = w.page.post(f"/u/{b_hex}.{token_id}.{secret}", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 404
    r = w.page.get(f"/u/{b_hex}.{token_id}.{secret}")
    assert r.status_code == 404
    # The A links still work for A (they are read-only here: GETs change nothing).
    r = w.page.get(_path(A_LINKS["unsubscribe"]), headers={"accept": "text/html"})
    assert r.status_code == 200 and "A-only newsletter" in r.text
    r = w.page.get(_path(A_LINKS["preferences"]), headers={"accept": "text/html"})
    assert r.status_code == 200 and re.search(r'id="topic-email-msg-news"[^>]*checked', r.text)


def verify_a(runtime: Runtime, params: dict[str, str]) -> None:
    with runtime.tenant_context("tenant-a") as ctx:
        campaign = campaigns.get_campaign(ctx, params["campaign_id"])
        assert (campaign.status, campaign.sent_count) == ("draft", 0)
        view = mail_reading.read_message(ctx, params["message_id"])
        assert view.letter is not None and view.letter.to == A_EMAIL
        assert suppression.suppressed_channels(ctx, "email", A_SUPPRESSED) == ["email"]
        assert ctx.session.scalars(select(Suppression)).all() != []
        prefs = preferences.preference_view(ctx, A_LINKS["subject"])
        assert [t.subscribed for t in prefs.topics if t.topic == "msg-news"] == [True]
        assert not any(prefs.marketing_off.values())


CASES = Cases(
    setup_a=setup_a,
    api_foreign={
        ("GET", "/api/v1/campaigns/{campaign_id}"): None,
        ("POST", "/api/v1/campaigns/{campaign_id}/send"): None,
        ("GET", "/api/v1/subjects/{subject_id}/preferences"): None,
        ("POST", "/api/v1/subjects/{subject_id}/preferences/opt-out"): TARGET,
        ("POST", "/api/v1/subjects/{subject_id}/preferences/opt-in"): TARGET,
        ("POST", "/api/v1/subjects/{subject_id}/unsubscribe-links"): TARGET,
        ("POST", "/api/v1/subjects/{subject_id}/preference-link"): None,
    },
    page_foreign={
        ("GET", "/mail/{message_id}"): None,
        ("GET", "/campaigns/{campaign_id}"): None,
        ("POST", "/campaigns/{campaign_id}/send"): None,
    },
    lists={
        ("GET", "/api/v1/campaigns"),
        ("POST", "/api/v1/campaigns"),
        ("GET", "/api/v1/suppressions"),
        ("POST", "/api/v1/suppressions"),
        ("POST", "/api/v1/suppressions/remove"),
        ("POST", "/api/v1/suppressions/check"),
        ("GET", "/mail"),
        ("GET", "/campaigns"),
        ("GET", "/campaigns/new"),
        ("POST", "/campaigns"),
    },
    # Reached by a token or a signed link that names the tenant: tested for token scoping
    # in tests/messaging (and above, in `check`).
    public={
        ("GET", "/u/{token}"),
        ("POST", "/u/{token}"),
        ("GET", "/p/{slug}/preferences"),
        ("POST", "/p/{slug}/preferences"),
        ("POST", "/p/{slug}/preferences/withdraw"),
    },
    check=check,
    verify_a=verify_a,
)
