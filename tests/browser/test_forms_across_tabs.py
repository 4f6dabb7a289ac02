"""Forms open in one tab keep working when the person reaches the site again from another
site in another tab (a link in their webmail): the arrival must not expire the form token."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from pledge.runtime import Runtime
from tests.browser.test_rights import EMAIL, clik_customer  # noqa: F401 -- a fixture

pytestmark = pytest.mark.browser

WEBMAIL = "http://mail.example/inbox"


def _arrive_from_webmail(page: Page, target: str) -> None:
    """In a second tab of the same browser, open a webmail page on another site and follow
    its link to `target` (a cross-site, top-level navigation), then close the tab."""
    other = page.context.new_page()
    other.route(
        WEBMAIL,
        lambda route: route.fulfill(
            content_type="text/html", body=f'<a id="go" href="{target}">Our privacy notice</a>'
        ),
    )
    other.goto(WEBMAIL)
    with other.expect_navigation():
        other.click("#go")
    other.close()


def test_an_open_form_survives_arriving_from_an_e_mail_link_in_another_tab(
    page: Page,
    runtime: Runtime,
    clik_customer: str,  # noqa: F811 -- the fixture imported above
    live_server: str,
) -> None:
    page.goto(f"/p/{clik_customer}/requests?type=access")
    page.get_by_label("Your e-mail address").fill(EMAIL)
    page.get_by_label("Your name").fill("Paula")

    _arrive_from_webmail(page, f"{live_server}/p/{clik_customer}/privacy")

    with page.expect_navigation():
        page.get_by_role("button", name="Send request").click()
    assert "the form has expired" not in page.content()
    assert re.search(r"R-[0-9A-F]{8}", page.content()), page.content()[-600:]
