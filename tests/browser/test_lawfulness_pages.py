"""The lawfulness pages in a real browser: the purpose form, a notice's diff, a subject's
consent timeline, the gate check and the lawful-basis report with its bulk erasure."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.consent.service import Signals
from pledge.notices import service as notices
from pledge.presets import CLIK_NEWSLETTER_WORDING, clik
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.browser.test_console import (
    OWNER,
    assert_controls_labelled,
    main_nav,
    mark_document,
    same_document,
    sign_in,
)
from tests.conftest import make_tenant, make_user

pytestmark = pytest.mark.browser

V1 = "We collect your e-mail address.\nWe keep it for two years.\nWe never sell it."
V2 = "We collect your e-mail address.\nWe keep it for one year.\nWe never sell it.\nAsk us."


def _tenant(runtime: Runtime, *, preset: bool = False) -> None:
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OWNER)
    if preset:
        with runtime.tenant_context("acme") as ctx:
            clik(ctx)


def test_create_and_edit_a_purpose_with_its_lawful_basis(runtime: Runtime, page: Page) -> None:
    _tenant(runtime)
    with runtime.tenant_context("acme") as ctx:
        notices.create_notice(ctx, slug="news-words", kind="consent_wording", title="News words")
        notices.publish_version(ctx, "news-words", text="Yes, send me the news.")
    page.goto("/purposes")
    sign_in(page, "acme")
    expect(page).to_have_url(re.compile(r"/purposes$"))
    expect(main_nav(page).get_by_role("link", name="Purposes")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("main")).to_contain_text("No purposes yet.")

    page.get_by_role("link", name="New purpose").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New purpose")
    assert_controls_labelled(page)
    page.get_by_label("Slug").fill("support")
    page.get_by_label("Name").fill("Answer support chats")
    page.get_by_label("Lawful basis").select_option("LegitimateInterest")
    page.get_by_label("Data categories (one per line)").fill("user.contact.email\nuser.content")
    page.get_by_label("email").check()
    page.get_by_role("button", name="Create purpose").click()
    # No legitimate interest stated: refused, with the reason, and nothing typed is lost.
    expect(page.get_by_role("alert")).to_contain_text("legitimate_interest_note")
    expect(page.get_by_label("Name")).to_have_value("Answer support chats")
    expect(page.get_by_label("Lawful basis")).to_have_value("LegitimateInterest")
    expect(page.get_by_label("email")).to_be_checked()

    page.get_by_label("Legitimate interest pursued").fill("to answer you after the chat")
    page.get_by_label("Name").press("Enter")  # the keyboard submits the form
    expect(page).to_have_url(re.compile(r"/purposes\?notice=created$"))
    expect(page.get_by_role("status")).to_have_text("The purpose was created.")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Answer support chats"))
    expect(row).to_contain_text("Legitimate interests — Art. 6(1)(f)")
    expect(row).to_contain_text("to answer you after the chat")
    expect(row).to_contain_text("email")

    # A consent purpose with its wording, marked as direct marketing.
    page.get_by_role("link", name="New purpose").click()
    page.get_by_label("Slug").fill("news")
    page.get_by_label("Name").fill("The newsletter")
    page.get_by_label("Lawful basis").select_option("Consent")
    page.get_by_label("Consent wording shown").select_option("news-words")
    page.get_by_label("Direct marketing").check()
    page.get_by_role("button", name="Create purpose").click()
    news = page.get_by_role("row").filter(has=page.get_by_role("link", name="The newsletter"))
    expect(news).to_contain_text("Consent — Art. 6(1)(a)")
    expect(news).to_contain_text("marketing")

    # Edit: the form shows what is stored; a change is saved.
    page.get_by_role("link", name="Answer support chats").click()
    expect(page.get_by_label("Legitimate interest pursued")).to_have_value(
        "to answer you after the chat"
    )
    expect(page.get_by_label("Data categories (one per line)")).to_have_value(
        "user.contact.email\nuser.content"
    )
    page.get_by_label("Lawful basis").select_option("Contract")
    page.get_by_role("button", name="Save purpose").click()
    expect(page.get_by_role("status")).to_have_text("The purpose was saved.")
    expect(row).to_contain_text("Contract — Art. 6(1)(b)")

    page.get_by_role("link", name="Answer support chats").click()
    page.get_by_role("button", name="Archive this purpose").click()
    expect(page.get_by_role("status")).to_contain_text("archived")
    expect(row).to_contain_text("archived")


def test_a_notice_diff_marks_what_was_added_and_removed(runtime: Runtime, page: Page) -> None:
    _tenant(runtime)
    with runtime.tenant_context("acme") as ctx:
        notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Privacy notice")
        notices.publish_version(ctx, "privacy", text=V1)
        notices.publish_version(ctx, "privacy", text=V2, summary="Shorter retention")
    page.goto("/login")
    sign_in(page, "acme")
    main_nav(page).get_by_role("link", name="Notices").click()
    page.get_by_role("link", name="Privacy notice").click()
    versions = page.get_by_role("region", name="Versions in en")
    expect(versions.get_by_role("row").filter(has_text="Version 2")).to_contain_text("in force")
    expect(versions.get_by_role("row").filter(has_text="Version 1")).to_contain_text("superseded")
    expect(versions).to_contain_text("Shorter retention")

    expect(page.get_by_label("Compare")).to_have_value(re.compile(".+"))
    page.get_by_role("button", name="Show changes in en").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Changes to Privacy notice")
    expect(page.get_by_role("main")).to_contain_text("2 lines added, 1 removed")
    rows = page.get_by_role("table").get_by_role("row")
    # The change is said in words, not only shown in colour.
    removed = rows.filter(has_text="We keep it for two years.")
    expect(removed).to_contain_text("removed")
    expect(removed.locator("del")).to_have_text("We keep it for two years.")
    added = rows.filter(has_text="We keep it for one year.")
    expect(added).to_contain_text("added")
    expect(added.locator("ins")).to_have_text("We keep it for one year.")
    expect(rows.filter(has_text="Ask us.")).to_contain_text("added")
    expect(rows.filter(has_text="We never sell it.").locator("ins, del")).to_have_count(0)

    # Publish a third version from the form, starting from the text in force.
    page.get_by_role("link", name="All versions").click()
    page.get_by_role("link", name="Publish a new version").click()
    assert_controls_labelled(page)
    expect(page.get_by_label("Exact text")).to_have_value(V2)
    page.get_by_label("Exact text").fill(V2 + "\nWe answer within a week.")
    page.get_by_label("What changed").fill("Response time")
    page.get_by_role("button", name="Publish version").click()
    expect(page.get_by_role("status")).to_contain_text("The new version was published")
    expect(versions.get_by_role("row").filter(has_text="Version 3")).to_contain_text("in force")
    page.get_by_role("link", name="Version 1").click()
    expect(page.get_by_role("region", name="Exact text")).to_contain_text("two years")


def test_the_subject_page_shows_the_exact_words_they_agreed_to(
    runtime: Runtime, page: Page
) -> None:
    _tenant(runtime, preset=True)
    with runtime.tenant_context("acme") as ctx:
        v1 = notices.current_version(ctx, notices.get_notice(ctx, "newsletter-consent").id)
        assert v1 is not None
        sid = intake.collect(
            ctx,
            "newsletter",
            [
                FieldInput("email", "ann@example.com"),
                FieldInput("first_name", "Ann", "user.name.first"),
            ],
            [ConsentChoice("newsletter", True)],
            Signals(gpc=True, dnt=None),
        ).subject_id
    with runtime.tenant_context("acme") as ctx:
        notices.publish_version(ctx, "newsletter-consent", text="Yes, and partner offers too.")
    page.goto(f"/subjects/{sid}")
    sign_in(page, "acme")
    timeline = page.get_by_role("region", name="Consent timeline")
    entry = timeline.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name="Consent granted: The Clik newsletter")
    )
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(CLIK_NEWSLETTER_WORDING)
    expect(entry).to_contain_text(v1.sha256)
    expect(entry).to_contain_text("wording version 1 (en)")
    expect(entry).to_contain_text("Newsletter sign-up")
    expect(entry).to_contain_text("web form")
    expect(entry).to_contain_text("GPC sent (Sec-GPC: 1)")
    expect(entry).to_contain_text("DNT not sent")
    expect(timeline).not_to_contain_text("partner offers")
    expect(timeline).to_contain_text("a Global Privacy Control signal was honoured")


def test_ask_the_gate_in_place(runtime: Runtime, page: Page) -> None:
    _tenant(runtime, preset=True)
    with runtime.tenant_context("acme") as ctx:
        subjects.create_subject(ctx, [FieldInput("email", "bo@example.com")])
    page.goto("/gate")
    sign_in(page, "acme")
    assert_controls_labelled(page)
    mark_document(page)
    page.get_by_label("Subject's e-mail or id").fill("bo@example.com")
    page.get_by_label("Purpose").select_option("newsletter")
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Check").click()
    decision = page.get_by_role("status")
    expect(decision).to_contain_text("Not allowed")
    expect(decision).to_contain_text("no_consent: The purpose needs consent and none was given.")
    assert same_document(page)
    page.get_by_label("Subject's e-mail or id").fill("nobody@example.com")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("alert")).to_have_text("No subject has that e-mail or id.")


def test_the_lawful_basis_report_erases_exactly_those_without_a_basis(
    runtime: Runtime, page: Page
) -> None:
    _tenant(runtime, preset=True)
    with runtime.tenant_context("acme") as ctx:
        kept = intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "keep@example.com")],
            [ConsentChoice("newsletter", True)],
        ).subject_id
        gone: list[uuid.UUID] = [
            subjects.create_subject(
                ctx,
                [
                    FieldInput("email", f"{n}@example.com"),
                    FieldInput("first_name", n, "user.name.first"),
                ],
            )
            for n in ("Olga", "Piet")
        ]
    page.goto("/")
    sign_in(page, "acme")
    main_nav(page).get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Subjects with no lawful basis")
    expect(page.locator("#report-summary")).to_contain_text("2 subjects without a basis")
    table = page.get_by_role("table")
    expect(table.get_by_role("link", name="Olga")).to_be_visible()
    expect(table.get_by_role("link", name="Piet")).to_be_visible()
    expect(table).not_to_contain_text("keep@example.com")

    # The confirmation box is required: nothing happens without it.
    erase = page.get_by_role("button", name="Erase 2 subjects")
    erase.click()
    expect(page).to_have_url(re.compile(r"/reports/lawful-basis$"))
    page.get_by_label("I understand that erasing these 2 subjects cannot be undone").check()
    erase.click()
    expect(page.get_by_role("status")).to_have_text("2 subjects erased.")
    expect(page.locator("#report-summary")).to_contain_text("0 subjects without a basis")
    expect(page.get_by_role("main")).to_contain_text("Nobody")
    with runtime.tenant_context("acme") as ctx:
        assert [subjects.get_subject_row(ctx, g).status for g in gone] == ["erased", "erased"]
        assert subjects.get_subject_row(ctx, kept).status == "active"
