"""Accessibility of the pages in real headless Chromium: axe-core on every important page, and
what axe does not look at — the focus ring's contrast and the header on a narrow screen.

Each page is loaded with realistic data present (a configured tenant, people on file, requests,
a sent campaign, letters in the outbox) and axe (axe-core 4.12, bundled by
axe-playwright-python: nothing is fetched) runs on it as rendered, with all its default rules:
colour contrast, labels, landmarks, names, ids, table headers, links told from text. A
violation of impact "serious" or "critical" fails the test, with its rule, its page and the
elements it found, so the fix can start from the message. The tour is one test per database:
one server, one browser, the pages visited in turn; the answers to a client over the rate
limits are seen on a second, small app whose limits are low.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect

from pledge.campaigns import service as campaigns
from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.core.clock import utcnow
from pledge.core.config import reset_settings_cache
from pledge.mail import reading as mail_reading
from pledge.notices import service as notices
from pledge.preferences import links, tokens
from pledge.presets import clik
from pledge.rights import fulfilment, status_links, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.browser.test_console import OWNER, sign_in
from tests.conftest import make_tenant, make_user

pytestmark = pytest.mark.browser

# What fails the test; "moderate" and "minor" findings are left to review.
FAILING_IMPACTS = {"serious", "critical"}


@dataclass(frozen=True)
class Seeded:
    """Ids and links of the data the pages show."""

    paula: uuid.UUID
    olga: uuid.UUID
    request_id: uuid.UUID
    status_path: str
    verify_path: str
    preferences_path: str
    unsubscribe_path: str
    campaign_sent: uuid.UUID
    campaign_draft: uuid.UUID
    message_id: uuid.UUID
    restriction_id: uuid.UUID


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def seeded(runtime: Runtime, live_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    """Clik's configuration with a customer, a subscriber, a person with no lawful basis, an
    access request waiting for confirmation, an opt-out answered, a restriction in force whose
    appeal was refused, a notice in its second version, a sent campaign and a draft; and a
    second organisation whose first notice is still to come. Links point at the live server."""
    monkeypatch.setenv("PLEDGE_BASE_URL", live_server)
    reset_settings_cache()
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OWNER)
    # A new organisation whose first privacy notice takes effect next month.
    make_tenant(runtime, "newco")
    with runtime.tenant_context("newco") as ctx:
        notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Privacy notice")
        notices.publish_version(
            ctx,
            "privacy",
            text="We will collect your e-mail address.\nWe will keep it a year.",
            effective_at=utcnow() + timedelta(days=30),
            summary="Our first notice",
        )
    with runtime.tenant_context("acme") as ctx:
        clik(ctx)
        paula = intake.collect(
            ctx,
            "purchase",
            [
                FieldInput("email", "paula@example.com"),
                FieldInput("first_name", "Paula", "user.name.first"),
                FieldInput("phone", "+447700900123"),
            ],
        ).subject_id
        ada = intake.collect(
            ctx,
            "newsletter",
            [
                FieldInput("email", "ada@example.com"),
                FieldInput("first_name", "Ada", "user.name.first"),
            ],
            [ConsentChoice("newsletter", True)],
        ).subject_id
        olga = subjects.create_subject(
            ctx,
            [
                FieldInput("email", "olga@example.com"),
                FieldInput("first_name", "Olga", "user.name.first"),
            ],
        )
        subjects.add_interaction(
            ctx,
            paula,
            kind="note",
            occurred_at=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
            category="user.content.private",
            payload={"note": "Asked about the delivery"},
        )
        notices.publish_version(
            ctx, "privacy", text="We collect your e-mail address.\nWe keep it a year."
        )
        received = workflow.receive(
            ctx,
            RequestInput(
                "access", Requester("paula@example.com", "Paula"), None, "privacy_center", {}
            ),
        )
        workflow.receive(
            ctx,
            RequestInput(
                "opt_out_sale", Requester("ada@example.com", "Ada"), "US-CA", "privacy_center", {}
            ),
        )
        assert received.verification_link is not None
        made = received.request
        # Restricted at the person's request (Virginia grants an appeal), the appeal refused:
        # the restriction holds, and the request's page offers staff the form that lifts it.
        restriction = rights.submit(
            ctx, RequestInput("restriction", Requester("paula@example.com", "Paula"), "US-VA")
        )
        challenge = verification.begin(ctx, restriction)
        assert challenge is not None
        assert verification.confirm(
            ctx, restriction, code=challenge.code, data_points={"phone": "+447700900123"}
        ).verified
        fulfilment.fulfil(ctx, restriction)
        transitions.appeal(ctx, restriction)
        workflow.decide_appeal(ctx, restriction, grant=False, reason="the restriction stands")
        sent = campaigns.create_campaign(
            ctx,
            campaigns.CampaignInput(
                "March newsletter",
                "newsletter",
                "email",
                "newsletter",
                "{first_name}, the March news",
                "Hello {first_name},\n\nthe March news.",
            ),
        )
        campaigns.send_campaign(ctx, sent.id)
        draft = campaigns.create_campaign(
            ctx,
            campaigns.CampaignInput(
                "April newsletter",
                "newsletter",
                "email",
                "newsletter",
                "{first_name}, the April news",
                "Hello {first_name},\n\nthe April news.",
            ),
        )
        seeded = Seeded(
            paula=paula,
            olga=olga,
            request_id=made.id,
            status_path=_path(status_links.status_url(ctx, made)),
            verify_path=_path(received.verification_link),
            preferences_path=_path(links.preference_link(ctx, ada)),
            unsubscribe_path=_path(tokens.issue_token(ctx, ada, "email", "newsletter")),
            campaign_sent=sent.id,
            campaign_draft=draft.id,
            message_id=mail_reading.list_messages(ctx, limit=1)[0].id,
            restriction_id=restriction.id,
        )
    yield seeded
    reset_settings_cache()


def _node(node: dict[str, Any]) -> str:
    """An element axe found: its selector, and why (the first check that failed on it)."""
    target = " ".join(str(t) for t in node["target"])
    checks = node.get("any", []) + node.get("all", []) + node.get("none", [])
    why = checks[0]["message"] if checks else ""
    return f"{target} — {why}" if why else target


class Audit:
    """Runs axe on the page as it is and keeps what fails, named by page."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.axe = Axe()
        self.failures: list[str] = []

    def findings(self) -> list[dict[str, Any]]:
        response: dict[str, Any] = self.axe.run(self.page).response
        return [v for v in response["violations"] if v["impact"] in FAILING_IMPACTS]

    def check(self, name: str) -> None:
        for violation in self.findings():
            self.failures.append(
                f"{name} ({self.page.url}): {violation['id']} [{violation['impact']}] "
                f"{violation['help']}\n"
                + "\n".join(f"    {_node(node)}" for node in violation["nodes"])
            )

    def skip_link(self, name: str) -> None:
        """Check the page again with the skip link shown: it appears on the first Tab."""
        self.page.keyboard.press("Tab")
        expect(self.page.get_by_role("link", name="Skip to content")).to_be_focused()
        self.check(f"{name}, skip link focused")

    def visit(self, name: str, path: str, *, ok: bool = True) -> None:
        response = self.page.goto(path)
        assert response is not None and response.ok == ok, f"{name}: {path} answered {response}"
        self.page.wait_for_load_state()
        self.check(name)


def test_no_serious_accessibility_violations(page: Page, seeded: Seeded) -> None:
    audit = Audit(page)

    # The public pages, as the person sees them: no session. The forms are also seen with
    # their errors, and the pages that answer a bad or spent link.
    audit.visit("privacy center: choose", "/p/acme/requests")
    audit.skip_link("privacy center: choose")
    audit.visit("privacy center: access form", "/p/acme/requests?type=access")
    page.get_by_label("Your e-mail address").fill("someone@example.com")
    with page.expect_navigation():
        page.get_by_role("button", name="Send request").click()
    audit.check("privacy center: request received")
    audit.visit("privacy center: correction form", "/p/acme/requests?type=rectification")
    page.get_by_label("Your e-mail address").fill("someone@example.com")
    page.get_by_label("Detail 1", exact=True).select_option(index=1)
    page.get_by_label("Correct value of detail 1").fill("  ")  # blank: refused, with the reason
    with page.expect_navigation():
        page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check("privacy center: correction form, refused")
    audit.visit("privacy center: objection form", "/p/acme/requests?type=objection")
    audit.visit("privacy center: confirm by code", "/p/acme/requests/confirm")
    audit.visit("privacy center: confirm by link", seeded.verify_path)
    page.get_by_label("Phone number").fill("07700 900123")
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.get_by_text("Request confirmed")).to_be_visible()
    audit.check("privacy center: request confirmed")
    audit.visit("privacy center: status page", seeded.status_path)
    audit.visit("privacy center: spent download link", "/p/acme/downloads/x.1.y", ok=False)
    audit.visit("privacy center: bad status link", "/p/acme/requests/status/x.1.y", ok=False)
    audit.visit("privacy notice", "/p/acme/privacy")
    audit.visit("privacy notice, none in force yet", "/p/newco/privacy")
    expect(page.get_by_text("No version of this notice is in force yet.")).to_be_visible()
    # By keyboard, the link to the full text of the version to come moves focus to it.
    page.get_by_role("link", name="Read version 1 in full").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("region", name=re.compile("^Version 1, in force from"))).to_be_focused()
    audit.visit("preference center", seeded.preferences_path)
    audit.visit("unsubscribe page", seeded.unsubscribe_path)
    audit.skip_link("unsubscribe page")
    audit.visit("unsubscribe: bad link", "/u/not-a-token", ok=False)

    # The console, from its sign-in page (the second-factor step is not in the tour: it needs
    # an account enrolled in TOTP; its refusal shares login.html's form and alert).
    audit.visit("sign-in", "/login")
    sign_in(page, "acme")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
    audit.check("dashboard")
    audit.skip_link("dashboard")

    audit.visit("subject list", "/subjects")
    page.get_by_label("Find by e-mail or phone").fill("nobody@example.com")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_be_visible()
    audit.check("subject list, after a search that found nobody")
    audit.visit("subject page", f"/subjects/{seeded.paula}")

    audit.visit("request queue", "/requests")
    audit.visit("request page (verified)", f"/requests/{seeded.request_id}")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Fulfil the request")).to_be_visible()
    audit.check("request page (in progress)")
    audit.visit("restriction request, appeal refused", f"/requests/{seeded.restriction_id}")
    expect(page.get_by_role("form", name="Lift the restriction")).to_be_visible()
    audit.visit("SLA report", "/requests/sla")
    audit.visit("opt-out list form", "/requests/opt-outs")
    audit.visit("lawful-basis report", "/reports/lawful-basis")
    audit.visit("audit log", "/audit")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result").get_by_role("status")).to_be_visible()
    audit.check("audit log, chain verified")
    # The first verification took the first checkpoint; a second one is anchored in it.
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("Anchored in the keystore at entry")
    audit.check("audit log, verified again against its checkpoint")

    audit.visit("gate check", "/gate")
    page.get_by_label("Subject's e-mail or id").fill("ada@example.com")
    page.get_by_label("Purpose").select_option("newsletter")
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_be_visible()
    audit.check("gate check, with a decision")

    audit.visit("mail outbox", "/mail")
    expect(page.locator(".tiles")).to_contain_text("sending")
    audit.visit("mail message", f"/mail/{seeded.message_id}")
    audit.visit("notices", "/notices")
    audit.visit("notice page", "/notices/privacy")
    page.get_by_role("button", name="Show changes in en").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Changes to Privacy notice")
    audit.check("notice diff")
    audit.visit("notice publish form", "/notices/privacy/publish")
    audit.visit("new notice form", "/notices/new")
    audit.visit("purposes", "/purposes")
    audit.visit("purpose form", "/purposes/newsletter")
    audit.visit("new purpose form", "/purposes/new")
    page.get_by_label("Slug").fill("support")
    page.get_by_label("Name").fill("Answer support chats")
    page.get_by_label("Lawful basis").select_option("LegitimateInterest")
    page.get_by_role("button", name="Create purpose").click()  # no interest stated: refused
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check("new purpose form, refused")
    audit.visit("collection points", "/collection-points")
    audit.visit("collection point form", "/collection-points/newsletter")
    audit.visit("campaigns", "/campaigns")
    audit.visit("new campaign form", "/campaigns/new")
    audit.visit("sent campaign", f"/campaigns/{seeded.campaign_sent}")
    audit.visit("draft campaign", f"/campaigns/{seeded.campaign_draft}")
    audit.visit("account", "/account")
    audit.visit("a page that is not there", "/subjects/not-an-id", ok=False)

    audit.visit("erase page", f"/subjects/{seeded.olga}/erase")
    page.get_by_label("I understand this cannot be undone").check()
    page.get_by_role("button", name="Erase subject").click()
    expect(page.get_by_role("status")).to_contain_text("The subject was erased")
    audit.check("subject page, erased")

    assert not audit.failures, (
        f"{len(audit.failures)} serious or critical accessibility violations "
        f"(rule [impact] help — targets):\n" + "\n".join(audit.failures)
    )


class TestTooManyForms:
    """The answers to a client that sent too many forms, on an app whose limits are one
    attempt a minute (the tour's app keeps the real limits: it posts several forms)."""

    @pytest.fixture
    def runtime(self, runtime: Runtime) -> Runtime:
        low = {"public_form_rate": "1/minute", "sign_in_rate": "1/minute"}
        return replace(runtime, settings=runtime.settings.model_copy(update=low))

    def test_the_too_many_requests_pages_are_accessible(self, page: Page, seeded: Seeded) -> None:
        audit = Audit(page)

        # The privacy center: the first request is taken, the second refused on its page.
        for _ in range(2):
            page.goto("/p/acme/requests?type=access")
            page.get_by_label("Your e-mail address").fill("someone@example.com")
            with page.expect_navigation() as sent:
                page.get_by_role("button", name="Send request").click()
        assert sent.value is not None and sent.value.status == 429
        expect(page.get_by_role("alert")).to_contain_text("Too many forms sent")
        audit.check("privacy center: too many forms")
        expect(page.get_by_role("link", name="Back to the privacy center")).to_be_visible()

        # The sign-in: a wrong password is refused, the next attempt is told to wait.
        page.goto("/login")
        for _ in range(2):
            page.get_by_label("Workspace").fill("acme")
            page.get_by_label("E-mail").fill(OWNER)
            page.get_by_label("Password").fill("not the password")
            with page.expect_navigation() as sent:
                page.get_by_role("button", name="Sign in").click()
        assert sent.value is not None and sent.value.status == 429
        expect(page.get_by_role("alert")).to_contain_text("Too many sign-in attempts")
        audit.check("sign-in: too many attempts")

        # The preference center: its form counts with the privacy center's (one a minute,
        # used above), so saving is refused at once, on a page with the way back.
        page.goto(seeded.preferences_path)
        with page.expect_navigation() as sent:
            page.get_by_role("button", name="Save preferences").click()
        assert sent.value is not None and sent.value.status == 429
        expect(page.get_by_role("alert")).to_contain_text("Too many forms sent")
        audit.check("preference center: too many forms")
        page.get_by_role("link", name="Back to your preferences").click()
        expect(page.get_by_role("button", name="Save preferences")).to_be_visible()

        assert not audit.failures, (
            f"{len(audit.failures)} serious or critical accessibility violations "
            f"(rule [impact] help — targets):\n" + "\n".join(audit.failures)
        )


# ---------------------------------------------------------------------------------------------
# Where the focus is. axe does not look at the focus ring: WCAG 1.4.11 asks 3:1 between the
# ring and the colour beside it, so a keyboard user with low vision sees where they are.

RING = """el => {
  const style = getComputedStyle(el);
  let around = el.parentElement, background = "rgb(255, 255, 255)";
  for (; around; around = around.parentElement) {
    const colour = getComputedStyle(around).backgroundColor;
    if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") { background = colour; break; }
  }
  return {
    style: style.outlineStyle, width: parseFloat(style.outlineWidth), ring: style.outlineColor,
    background, element: el.outerHTML.slice(0, 90),
  };
}"""


def _luminance(colour: str) -> float:
    parts = re.findall(r"[\d.]+", colour)
    assert len(parts) >= 3, colour
    channels = [float(p) / 255 for p in parts[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two opaque CSS colours, as `rgb(r, g, b)`."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def faint_focus_rings(page: Page, stops: int) -> list[str]:
    """Tab through the first `stops` stops; the ones whose focus ring is missing or faint."""
    faint: list[str] = []
    for _ in range(stops):
        page.keyboard.press("Tab")
        ring: dict[str, Any] = page.evaluate(f"({RING})(document.activeElement)")
        if ring["element"].startswith("<body"):
            break  # past the last stop
        ratio = contrast(ring["ring"], ring["background"])
        if ring["style"] in ("none", "hidden") or ring["width"] < 2 or ratio < 3:
            element = " ".join(ring["element"].split())
            faint.append(
                f"{page.url}: {element} — {ring['style']} {ring['width']}px "
                f"{ring['ring']} on {ring['background']}: {ratio:.2f}:1"
            )
    return faint


def test_the_focus_ring_stands_out(page: Page, runtime: Runtime) -> None:
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OWNER)
    with runtime.tenant_context("acme") as ctx:
        clik(ctx)
    page.goto("/p/acme/requests?type=access")
    faint = faint_focus_rings(page, 12)
    page.goto("/login")
    sign_in(page, "acme")
    faint += faint_focus_rings(page, 20)
    assert not faint, "focus rings below 3:1 against their background:\n" + "\n".join(faint)


def test_the_header_fits_a_narrow_screen(page: Page, runtime: Runtime) -> None:
    """At 320 CSS pixels (a phone, or 400% zoom: WCAG 1.4.10) every link and button of the
    header is on screen, without scrolling sideways."""
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OWNER)
    page.goto("/login")
    sign_in(page, "acme")
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto("/")
    controls = page.get_by_role("banner").locator("a, button")
    expect(controls.first).to_be_visible()
    off_screen = [
        " ".join(control.inner_text().split())
        for control in controls.all()
        if control.evaluate("el => el.getBoundingClientRect().right > window.innerWidth")
    ]
    assert not off_screen, f"past the right edge at 320px: {off_screen}"
