"""Messaging in a real browser: the unsubscribe page, the preference center, and a campaign
sent from the console and unsubscribed from its own message."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from pledge.core.config import reset_settings_cache
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.preferences import links, tokens
from pledge.presets import clik
from pledge.runtime import Runtime
from tests.browser.test_console import sign_in
from tests.conftest import make_tenant, make_user
from tests.messaging.conftest import follow_status, subscribe

pytestmark = pytest.mark.browser

OWNER = "owner@acme.example"


@pytest.fixture
def clik_tenant(
    runtime: Runtime, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Clik Limited's configuration; links in e-mails point at the live server."""
    monkeypatch.setenv("PLEDGE_BASE_URL", live_server)
    reset_settings_cache()
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OWNER)
    with runtime.tenant_context("acme") as ctx:
        clik(ctx)
    yield "acme"
    reset_settings_cache()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_the_unsubscribe_page_asks_then_the_button_unsubscribes(
    page: Page, runtime: Runtime, clik_tenant: str
) -> None:
    sid = subscribe(runtime, clik_tenant, "reader@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        url = tokens.issue_token(ctx, sid, "email", "newsletter")
    page.goto(_path(url))
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    expect(page.get_by_text("The Clik newsletter")).to_be_visible()
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email").allowed  # looking changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("The Clik newsletter")
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email").reasons == [Reason.CONSENT_WITHDRAWN]


def test_the_preference_center_by_keyboard(page: Page, runtime: Runtime, clik_tenant: str) -> None:
    sid = follow_status(runtime, clik_tenant, "ops@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        url = links.preference_link(ctx, sid)
    page.goto(_path(url))
    by_email = page.get_by_role("group", name="By e-mail")
    status = by_email.get_by_role("checkbox", name="Service status updates")
    expect(status).to_be_checked()
    status.focus()
    page.keyboard.press("Space")
    expect(status).not_to_be_checked()
    save = page.get_by_role("button", name="Save preferences")
    # Tab through the form until the save button has focus, then press Enter.
    for _ in range(30):
        if save.evaluate("b => b === document.activeElement"):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your preferences are saved")
    expect(
        page.get_by_role("group", name="By e-mail").get_by_role(
            "checkbox", name="Service status updates"
        )
    ).not_to_be_checked()
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "status-updates", "email", topic="status").reasons == [
            Reason.TOPIC_OPT_OUT
        ]


def test_a_campaign_sent_from_the_console_and_unsubscribed_from_its_message(
    page: Page, runtime: Runtime, clik_tenant: str
) -> None:
    ada = subscribe(runtime, clik_tenant, "ada@example.com", "Ada")
    subscribe(runtime, clik_tenant, "bob@example.com", "Bob")
    page.goto("/login")
    sign_in(page, clik_tenant)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill("March newsletter")
    page.get_by_label("Topic").select_option("newsletter")
    page.get_by_label("Subject line").fill("{first_name}, the March news")
    page.get_by_label("Message").fill("Hello {first_name},\n\nthe March news.")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator("#audience")).to_contain_text("The gate allows 2 of 2 subjects")
    page.get_by_role("button", name="Send to 2 people").click()
    expect(page.locator("#send-result")).to_contain_text("2 sent")

    # The demo's mailbox: open Ada's message and use its unsubscribe link.
    page.get_by_role("link", name="Mail outbox").first.click()
    expect(page.get_by_role("heading", name="Mail outbox")).to_be_visible()
    rows = page.get_by_role("link", name="Open")
    expect(rows).to_have_count(2)
    for i in range(2):
        with page.expect_navigation():  # count on the message's page, not the list's
            rows.nth(i).click()
        if page.get_by_text("ada@example.com").count():
            break
        page.go_back()
    expect(page.get_by_role("heading", name="Ada, the March news")).to_be_visible()
    page.get_by_role("region", name="Links in this message").get_by_role(
        "link", name="/u/"
    ).first.click()
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    with runtime.tenant_context(clik_tenant) as ctx:
        assert (
            ada
            not in gate_audience.audience(ctx, "newsletter", "email", topic="newsletter").allowed
        )
