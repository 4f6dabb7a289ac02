"""The team page in a real browser: an owner invites a colleague with the keyboard alone, the
colleague opens the link, chooses a password and signs in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Page, expect

from pledge.access import service as access
from pledge.runtime import Runtime
from tests.browser.test_console import OWNER, main_nav, sign_in
from tests.conftest import make_tenant, make_user

pytestmark = pytest.mark.browser

COLLEAGUE = "colleague@acme.example"
NEW_PASSWORD = "four words make a password"


def serious_findings(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as rendered (as
    tests/browser/test_accessibility.py counts them)."""
    response: dict[str, Any] = Axe().run(page).response
    return [
        f"{v['id']}: {v['help']}"
        for v in response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


@pytest.fixture
def invitee(browser: Browser, live_server: str) -> Iterator[Page]:
    """A second person's browser: no cookies shared with the owner's."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(5_000)
    context.set_default_navigation_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_an_owner_invites_by_keyboard_and_the_colleague_signs_in(
    runtime: Runtime, page: Page, invitee: Page
) -> None:
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OWNER)
    page.goto("/login")
    sign_in(page, "acme")

    # To the team page by keyboard: the link is in the main navigation.
    team_link = main_nav(page).get_by_role("link", name="Team")
    team_link.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Team")

    # The invitation form in focus order: e-mail, role, the button.
    page.get_by_label("E-mail", exact=True).focus()
    page.keyboard.type(COLLEAGUE)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Role", exact=True)).to_be_focused()
    page.keyboard.type("Privacy")  # a select chooses the option its typed name begins
    expect(page.get_by_label("Role", exact=True)).to_have_value("privacy_officer")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create invitation")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    status = page.get_by_role("status")
    expect(status).to_contain_text(f"Invitation ready for {COLLEAGUE}")
    link = page.get_by_label("Invitation link").input_value()
    parts = urlsplit(link)
    assert parts.path.startswith("/invite/")
    # Listed as waiting, for the owner to see.
    waiting = page.get_by_role("table").last
    expect(waiting.get_by_role("rowheader", name=COLLEAGUE)).to_be_visible()
    assert serious_findings(page) == []

    # The colleague opens the link in their own browser and chooses a password.
    invitee.goto(parts.path)
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Join Acme Ltd on Pledge")
    invitee.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Password again").fill("not the same password")
    with invitee.expect_navigation():
        invitee.get_by_role("button", name="Create my account").click()
    expect(invitee.get_by_role("alert")).to_contain_text("The two passwords differ")
    assert serious_findings(invitee) == []
    expect(invitee.get_by_label("Password", exact=True)).to_have_attribute(
        "aria-describedby", "password-hint"
    )
    invitee.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Password again").fill(NEW_PASSWORD)
    with invitee.expect_navigation():
        invitee.get_by_role("button", name="Create my account").click()
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Your account is ready")

    with invitee.expect_navigation():
        invitee.get_by_role("link", name="Sign in").click()
    sign_in(invitee, "acme", COLLEAGUE, NEW_PASSWORD)
    expect(invitee).to_have_title("Dashboard · Pledge")
    # A privacy officer does not manage the team: no link to it.
    expect(main_nav(invitee).get_by_role("link", name="Team")).to_have_count(0)

    # The link is used up.
    invitee.goto(parts.path)
    expect(invitee.get_by_role("heading", level=1)).to_have_text("This invitation does not work")
    with runtime.tenant_context("acme") as ctx:
        colleague = access.user_by_email(ctx, COLLEAGUE)
        assert colleague.role == "privacy_officer"
