"""A rights request end to end in a real browser: the person asks in the privacy center,
confirms by the link in the e-mail, staff fulfil it from the console, the person downloads
their data — keyboard first where a person would use it."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from pledge.access.permissions import Role
from pledge.consent import intake
from pledge.core.config import reset_settings_cache
from pledge.presets import clik
from pledge.rights import service as rights
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from tests.browser.test_console import sign_in
from tests.conftest import make_tenant, make_user
from tests.rights.test_pages import letters_to

pytestmark = pytest.mark.browser

EMAIL = "paula.browser@example.com"
OFFICER = "officer@acme.example"


@pytest.fixture
def clik_customer(
    runtime: Runtime, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Clik's configuration, one customer on file, an officer; links point at the server."""
    monkeypatch.setenv("PLEDGE_BASE_URL", live_server)
    reset_settings_cache()
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", OFFICER, Role.PRIVACY_OFFICER)
    with runtime.tenant_context("acme") as ctx:
        clik(ctx)
        intake.collect(
            ctx,
            "purchase",
            [
                FieldInput("email", EMAIL),
                FieldInput("first_name", "Paula", "user.name.first"),
                FieldInput("phone", "+447700900123"),
            ],
        )
    yield "acme"
    reset_settings_cache()


def _link(text: str, marker: str) -> str:
    found = re.search(re.escape(marker) + r"\s*(\S+)", text)
    assert found, text
    parts = urlsplit(found.group(1))
    return parts.path


def test_ask_confirm_fulfil_download(
    page: Page, runtime: Runtime, clik_customer: str, live_server: str, tmp_path: Path
) -> None:
    # The person chooses a right by keyboard: the first choice is focused and checked.
    page.goto("/p/acme/requests")
    expect(page.get_by_role("heading", name="Your privacy rights")).to_be_visible()
    expect(page.get_by_label("Get a copy of your data")).to_be_checked()
    page.get_by_label("Get a copy of your data").focus()
    page.keyboard.press("Enter")  # submits the choice, as a keyboard user would
    page.get_by_label("Your e-mail address").fill(EMAIL)
    page.get_by_label("Your name").fill("Paula")
    with page.expect_navigation():  # the answer is a new page: read it once it is there
        page.get_by_role("button", name="Send request").click()
    shown = re.search(r"R-[0-9A-F]{8}", page.content())
    assert shown, page.content()
    reference = shown.group(0)
    with runtime.tenant_context("acme") as ctx:
        assert rights.get_by_reference(ctx, reference).state == "awaiting_verification"

    # The e-mail: opening its link changes nothing; the button with a detail on file confirms.
    verify = [t for t in letters_to(runtime, "acme", EMAIL) if "enter this code" in t][-1]
    page.goto(_link(verify, "or open this link:"))
    expect(page.get_by_role("button", name="Confirm my request")).to_be_visible()
    page.get_by_label("Phone number").fill("07700 900123")
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.get_by_text("Request confirmed")).to_be_visible()
    with runtime.tenant_context("acme") as ctx:
        assert rights.get_by_reference(ctx, reference).state == "verified"

    # Staff: the queue shows it; the request page starts and fulfils it.
    assert page.context.browser is not None
    staff = page.context.browser.new_context(base_url=live_server)
    console = staff.new_page()
    console.set_default_timeout(5_000)
    console.goto("/login")
    sign_in(console, "acme", OFFICER)
    console.goto("/requests")
    console.get_by_role("link", name=reference).click()
    expect(console.get_by_role("heading", name=re.compile(f"Request {reference}"))).to_be_visible()
    console.get_by_role("button", name="Start").click()
    expect(console.get_by_role("button", name="Fulfil the request")).to_be_visible()
    console.get_by_role("button", name="Fulfil the request").click()
    expect(console.get_by_text("The request is answered")).to_be_visible()
    staff.close()

    # The person downloads once, from the link in the letter.
    done = [t for t in letters_to(runtime, "acme", EMAIL) if "Download your data" in t][-1]
    download_url = re.findall(r"https?://\S+/downloads/\S+", done)[0]
    page.goto(urlsplit(download_url).path)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download your data").click()
    saved = tmp_path / "bundle.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        names = archive.namelist()
        data = json.loads(archive.read("your-data.json"))
    assert "your-data.json" in names and any(n.endswith(".html") for n in names)
    assert EMAIL in json.dumps(data) and "Paula" in json.dumps(data)
    # The link was single-use.
    page.goto(urlsplit(download_url).path)
    expect(page.get_by_text("used already")).to_be_visible()


def test_an_agents_list_of_opt_outs_from_the_console(
    page: Page, runtime: Runtime, clik_customer: str, tmp_path: Path
) -> None:
    page.goto("/login")
    sign_in(page, "acme", OFFICER)
    page.goto("/requests")
    page.get_by_role("link", name="Answer a list of opt-outs").click()
    expect(page.get_by_role("heading", name="Answer a list of opt-outs")).to_be_visible()

    # A file with a bad line: every problem listed, nothing received.
    bad = tmp_path / "bad.csv"
    bad.write_text(f"email,name\n{EMAIL},Paula\nnot-an-address,X\n")
    page.get_by_label("The list (CSV)").set_input_files(str(bad))
    page.get_by_label("Agent's name").fill("Permission Slip")
    page.get_by_label("Agent's e-mail address").fill("agent@example.org")
    page.get_by_label("Reference of the signed permissions").fill("PS-2026-114")
    with page.expect_navigation():
        page.get_by_role("button", name="Answer the list").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("nothing was received")
    expect(alert).to_contain_text("line 3: the requester's e-mail address is not valid")
    # What was typed is kept; the file is chosen again, by keyboard this time.
    expect(page.get_by_label("Agent's name")).to_have_value("Permission Slip")
    with runtime.tenant_context("acme") as ctx:
        assert rights.queue(ctx, rights.QueueFilter(open_only=False)) == []

    good = tmp_path / "good.csv"
    good.write_text(f"email,name\n{EMAIL},Paula\nnobody@example.com,Nobody\n")
    page.get_by_label("The list (CSV)").set_input_files(str(good))
    page.get_by_label("Where they live").select_option("US-CA")
    page.get_by_label("Reference of the signed permissions").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the form from a text field
    expect(page.get_by_role("status")).to_contain_text(
        "Answered 2 requests: 1 applied to a subject on file, 1 about nobody we hold"
    )
    with runtime.tenant_context("acme") as ctx:
        done = rights.queue(ctx, rights.QueueFilter(open_only=False))
        assert (
            sorted((r.type, r.state, r.channel) for r in done)
            == [("opt_out_sale", "completed", "authorized_agent")] * 2
        )
    # The letters went to the agent.
    assert len(letters_to(runtime, "acme", "agent@example.org")) == 2
    page.get_by_role("link", name="See them in the queue").click()
    expect(page.get_by_text("2 requests match the filters")).to_be_visible()
