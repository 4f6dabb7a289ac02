"""The admin console in a real browser: what a staff member sees and can do.

Each test starts from an empty data store (the `runtime` fixture), a fresh browser context and
the production app on a live server; data is set up through the service layer.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import pyotp
import pytest
from playwright.sync_api import Locator, Page, expect

from pledge.access import service as access
from pledge.runtime import Runtime
from pledge.subjects import service
from pledge.subjects.service import FieldInput
from tests.conftest import PASSWORD, make_tenant, make_user

pytestmark = pytest.mark.browser

OWNER = "owner@acme.example"
ADA = "ada@example.com"
GRACE = "grace@example.com"


def seed(runtime: Runtime, slug: str = "acme") -> dict[str, uuid.UUID]:
    """A tenant with an owner, two subjects and one interaction."""
    make_tenant(runtime, slug)
    make_user(runtime, slug, OWNER)
    with runtime.tenant_context(slug) as ctx:
        ada = service.create_subject(
            ctx,
            [
                FieldInput("email", ADA),
                FieldInput("first_name", "Ada", "user.name.first"),
                FieldInput("last_name", "Lovelace", "user.name.last"),
            ],
        )
        grace = service.create_subject(
            ctx, [FieldInput("email", GRACE), FieldInput("first_name", "Grace", "user.name.first")]
        )
        service.add_interaction(
            ctx,
            ada,
            kind="note",
            occurred_at=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
            category="user.content.private",
            payload={"note": "Asked about the analytical engine"},
        )
    return {"ada": ada, "grace": grace}


def sign_in(page: Page, workspace: str, email: str = OWNER, password: str = PASSWORD) -> None:
    page.get_by_label("Workspace").fill(workspace)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    # The form posts and always loads a page (the one asked for, or the form with its error):
    # wait for it, so what follows reads that page and not the form still on screen.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def mark_document(page: Page) -> None:
    """Tag the current document: the tag survives an htmx swap, not a page load."""
    page.evaluate("window.__pledgeSameDocument = true")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__pledgeSameDocument === true"))


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def field_row(page: Page, name: str) -> Locator:
    data = page.get_by_role("region", name="Personal data")
    return data.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def assert_controls_labelled(page: Page) -> None:
    """Every visible form control is found by its label text, and by nothing else's."""
    controls = page.locator("main").locator("input:not([type=hidden]), select, textarea")
    assert controls.count() > 0
    for i in range(controls.count()):
        control = controls.nth(i)
        labels = control.evaluate("el => [...el.labels].map(l => l.textContent.trim())")
        assert labels and labels[0], control.evaluate("el => el.outerHTML")
        by_label = page.get_by_label(labels[0], exact=True)
        expect(by_label).to_have_count(1)
        assert by_label.evaluate("(el, other) => el === other", control.element_handle())


# ---------------------------------------------------------------------------------------------


def test_find_view_and_erase_a_subject(runtime: Runtime, page: Page) -> None:
    ids = seed(runtime)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    sign_in(page, "acme")

    # Dashboard: the workspace and what the vault holds.
    expect(page).to_have_title("Dashboard · Pledge")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
    expect(page.get_by_role("main").get_by_role("listitem")).to_have_text(
        ["2 subjects", "2 active", "0 erased", "1 interactions"]
    )

    # Subjects: both listed; the search box narrows the rows in place (htmx).
    main_nav(page).get_by_role("link", name="Subjects").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Subjects")
    page.wait_for_load_state()  # htmx is deferred: a search before it runs is a full POST
    rows = page.locator("#subject-rows").get_by_role("row")
    expect(rows).to_have_count(3)  # header + 2
    mark_document(page)
    page.get_by_label("Find by e-mail or phone").fill("  Ada@Example.com ")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(2)  # header + Ada
    expect(rows.nth(1)).to_contain_text("Ada Lovelace")
    expect(rows.nth(1)).to_contain_text(ADA)
    expect(page.get_by_role("link", name="Grace")).to_have_count(0)
    assert same_document(page)
    expect(page).to_have_url(re.compile(r"/subjects$"))

    # The subject: fields with their category labels, the interaction, the audit trail.
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page).to_have_url(re.compile(rf"/subjects/{ids['ada']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(field_row(page, "email")).to_contain_text(ADA)
    expect(field_row(page, "email")).to_contain_text("E-mail address")
    expect(field_row(page, "first_name")).to_contain_text("Ada")
    expect(field_row(page, "first_name")).to_contain_text("First name")
    expect(field_row(page, "last_name")).to_contain_text("Last name")
    interactions = page.get_by_role("region", name="Interactions")
    expect(interactions).to_contain_text("Asked about the analytical engine")
    trail = page.get_by_role("region", name="Audit trail")
    for event in ("subject.created", "interaction.added", "subject.viewed"):
        expect(trail.get_by_text(event, exact=True).first).to_be_visible()

    # Erase it.
    page.get_by_role("link", name="Erase this subject…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Erase subject")
    page.get_by_label("I understand this cannot be undone").check()
    page.get_by_role("button", name="Erase subject").click()
    expect(page).to_have_url(re.compile(rf"/subjects/{ids['ada']}\?notice=erased$"))
    expect(page.get_by_role("status")).to_contain_text("The subject was erased")
    expect(page.get_by_role("region", name="Personal data")).to_contain_text(
        "No personal data is held for this subject."
    )
    expect(page.get_by_role("main")).not_to_contain_text("Lovelace")
    expect(page.get_by_role("main")).not_to_contain_text(ADA)
    expect(page.get_by_role("main")).not_to_contain_text("analytical engine")
    expect(page.get_by_role("link", name="Erase this subject…")).to_have_count(0)

    # The audit log names the erasure, linked to the subject.
    main_nav(page).get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    erased = page.get_by_role("row").filter(has=page.get_by_text("subject.erased", exact=True))
    expect(erased).to_have_count(1)
    expect(erased.get_by_role("link")).to_have_attribute("href", f"/subjects/{ids['ada']}")

    # Searching for the erased e-mail finds nobody now.
    main_nav(page).get_by_role("link", name="Subjects").click()
    page.get_by_label("Find by e-mail or phone").fill(ADA)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("No subject has that e-mail or phone.")


def test_wrong_password_and_return_to_the_page_asked_for(runtime: Runtime, page: Page) -> None:
    seed(runtime)
    page.goto("/login")
    sign_in(page, "acme", password="not the password at all")
    expect(page.get_by_role("alert")).to_have_text(access.LOGIN_REFUSED)
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_label("Workspace")).to_have_value("acme")
    expect(main_nav(page)).to_have_count(0)

    # A page visited while signed out: sign in, then land on that page.
    page.goto("/audit")
    expect(page).to_have_url(re.compile(r"/login\?next=/audit$"))
    sign_in(page, "acme")
    expect(page).to_have_url(re.compile(r"/audit$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(main_nav(page).get_by_role("link", name="Audit log")).to_have_attribute(
        "aria-current", "page"
    )


def _wrong_code(secret: str) -> str:
    """A six-digit code the server cannot accept now (it allows one step either side)."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    near = {totp.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


def test_two_step_sign_in(runtime: Runtime, page: Page) -> None:
    make_tenant(runtime, "vault", require_totp=True)
    make_user(runtime, "vault", OWNER)
    page.goto("/login")
    sign_in(page, "vault")
    expect(page).to_have_url(re.compile(r"/login/totp$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step sign-in")
    key = page.locator("#totp-secret")
    expect(key).to_have_text(re.compile(r"^[A-Z2-7]{16,}$"))
    secret = key.inner_text()
    expect(page.get_by_role("link", name="Add to authenticator")).to_have_attribute(
        "href", re.compile(rf"^otpauth://totp/.*secret={secret}")
    )
    # Not signed in yet: the dashboard sends us back to the second step.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/totp$"))

    page.get_by_label("Code").fill(_wrong_code(secret))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("That code is not right.")
    expect(page.locator("#totp-secret")).to_have_text(secret)  # the same key, still pending

    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Vault Ltd")


def tab_to(page: Page, target: Locator, limit: int = 40) -> int:
    """Press Tab until `target` has the focus; returns how many presses it took."""
    for presses in range(limit + 1):
        if target.evaluate("el => el === document.activeElement"):
            return presses
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} not reached with {limit} Tab presses")


def test_first_tab_on_the_login_page_reaches_the_skip_link(runtime: Runtime, page: Page) -> None:
    make_tenant(runtime, "acme")
    page.goto("/login")
    page.keyboard.press("Tab")
    # Focus moves synchronously with the key press: no need to wait for it.
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"


def test_keyboard_only(runtime: Runtime, page: Page) -> None:
    ids = seed(runtime)
    page.goto("/login")
    # The skip link is the first stop of the tab order (before the header's links).
    workspace = page.get_by_label("Workspace")
    tab_to(page, workspace)
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Pledge")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # The whole sign-in from the keyboard: type, Tab, type, Tab, type, Enter.
    tab_to(page, workspace)
    page.keyboard.type("acme")
    page.keyboard.press("Tab")
    expect(page.get_by_label("E-mail")).to_be_focused()
    page.keyboard.type(OWNER)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")

    # A subject's page: the first Tab focuses the skip link, Enter jumps past the header,
    # and Tab goes on to the erase link; Enter follows it.
    page.goto(f"/subjects/{ids['ada']}")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()
    erase = page.get_by_role("link", name="Erase this subject…")
    tab_to(page, erase)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Erase subject")

    # Every form control has a label a screen reader announces.
    confirm = page.get_by_label("I understand this cannot be undone")
    expect(confirm).to_be_visible()
    expect(page.get_by_label("billing", exact=True)).to_be_visible()
    assert_controls_labelled(page)
    tab_to(page, confirm)
    page.keyboard.press("Space")
    expect(confirm).to_be_checked()

    page.goto("/subjects")
    expect(page.get_by_label("Find by e-mail or phone")).to_be_visible()
    assert_controls_labelled(page)
    page.goto("/account")
    page.get_by_role("button", name="Turn on two-step sign-in").press("Enter")
    expect(page.get_by_label("Code")).to_be_visible()
    assert_controls_labelled(page)
    page.get_by_role("button", name="Sign out").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_controls_labelled(page)


def test_verify_the_audit_chain_in_place(runtime: Runtime, page: Page) -> None:
    seed(runtime)
    page.goto("/audit")
    sign_in(page, "acme")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    entries = page.locator("table.audit tbody tr")
    expect(entries.first).to_be_visible()
    before = entries.count()

    mark_document(page)
    page.get_by_role("button", name="Verify the chain").click()
    result = page.locator("#verify-result").get_by_role("status")
    expect(result).to_have_text(re.compile(r"^Chain intact: \d+ entries verified\.$"))
    # Swapped in place: same document, same URL, the log still below the button.
    assert same_document(page)
    expect(page).to_have_url(re.compile(r"/audit$"))
    expect(entries).to_have_count(before)


def test_post_without_csrf_token_is_refused(runtime: Runtime, page: Page, live_server: str) -> None:
    seed(runtime)
    page.goto("/login")
    sign_in(page, "acme")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")

    # The browser context's cookies (session and CSRF) go along; the token does not.
    r = page.request.post(f"{live_server}/audit/verify", form={})
    assert r.status == 403, r.text()
    r = page.request.post(f"{live_server}/subjects/search", form={"email": ADA})
    assert r.status == 403, r.text()
    assert ADA not in r.text()
    r = page.request.post(f"{live_server}/logout", form={"csrf_token": "x" * 43})
    assert r.status == 403, r.text()
    # Script on the page (a same-origin fetch, cookies included) without the token.
    status = page.evaluate(
        """async () => (await fetch('/logout', {method: 'POST',
             headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: ''})).status"""
    )
    assert status == 403

    # Refused, not half-done: still signed in.
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
