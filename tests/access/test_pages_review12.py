"""Web pages that must not lose the visitor: sign-out of a half-finished sign-in, an enrolment
kept after a mistyped code, errors on the public pages told on their own layout, and forms
that keep what was typed when refused."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from pledge.preferences import links
from pledge.purposes import service as purposes
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app
from tests.conftest import PASSWORD, login, make_user

HTML = {"Accept": "text/html"}
OWNER = "owner@acme.example"


def _browser(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def _secret(html: str) -> str | None:
    found = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
    return found.group(1) if found else None


def _console_error_page(html: str) -> bool:
    """The staff console's error page: its brand and a way back to the dashboard."""
    return "Return to the dashboard" in html or 'href="/"' in html


# ---------------------------------------------------------------------------------------------
# Sign-in


def test_a_mistyped_code_keeps_the_enrolment_on_the_account_page(
    runtime: Runtime, tenant: str
) -> None:
    """A typo in the first code must not take away the key just added to the app."""
    make_user(runtime, tenant, OWNER)
    c = _browser(runtime)
    csrf = login(c, tenant, OWNER)
    began = c.post("/account/totp", data={"csrf_token": csrf}, headers=HTML)
    secret = _secret(began.text)
    assert secret
    wrong = c.post(
        "/account/totp/confirm", data={"csrf_token": csrf, "code": "000000"}, headers=HTML
    )
    assert wrong.status_code == 422
    assert "that code is not right" in wrong.text
    # The same key again, with the code field: the app's entry still works.
    assert _secret(wrong.text) == secret
    assert 'action="/account/totp/confirm"' in wrong.text


def _half_signed_in(runtime: Runtime, tenant: str) -> tuple[TestClient, str]:
    """A browser past the password of a workspace that requires a second factor."""
    make_user(runtime, tenant, OWNER)
    with runtime.tenant_context(tenant) as ctx:
        ctx.tenant.require_totp = True
    c = _browser(runtime)
    c.get("/login")
    csrf = c.cookies["pledge_csrf"]
    r = c.post(
        "/login",
        data={
            "workspace": tenant,
            "email": OWNER,
            "password": PASSWORD,
            "csrf_token": csrf,
            "next": "/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/login/totp"
    return c, csrf


def test_a_half_signed_in_browser_can_sign_out(runtime: Runtime, tenant: str) -> None:
    """On a shared computer, a person who gave the password but not the code can end the
    pending sign-in: the code page offers it, and afterwards the code page is gone. Another
    site cannot end it for them: without the page's token, refused."""
    c, csrf = _half_signed_in(runtime, tenant)
    totp_page = c.get("/login/totp", headers=HTML)
    assert totp_page.status_code == 200
    assert 'action="/logout"' in totp_page.text
    forged = c.post("/logout", data={"csrf_token": "x" * 43}, headers=HTML)
    assert forged.status_code == 403
    assert c.get("/login/totp", follow_redirects=False).status_code == 200
    out = c.post("/logout", data={"csrf_token": csrf}, headers=HTML, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert c.get("/login/totp", follow_redirects=False).headers["location"] == "/login"


def test_a_wrong_password_gives_the_form_back_with_the_e_mail_typed(
    runtime: Runtime, tenant: str
) -> None:
    """Only the password is typed again; the workspace and e-mail come back as they were."""
    make_user(runtime, tenant, OWNER)
    c = _browser(runtime)
    c.get("/login")
    r = c.post(
        "/login",
        data={
            "workspace": tenant,
            "email": OWNER,
            "password": "not the password",
            "csrf_token": c.cookies["pledge_csrf"],
        },
        headers=HTML,
    )
    assert r.status_code == 401
    assert f'value="{OWNER}"' in r.text and f'value="{tenant}"' in r.text
    assert "not the password" not in r.text


# ---------------------------------------------------------------------------------------------
# Public pages: errors on their own layout


def test_an_expired_form_on_the_privacy_center_is_told_on_its_own_page(
    runtime: Runtime, tenant: str
) -> None:
    """A visitor whose form token expired (cookies cleared, the page still open) gets the
    privacy center's page with a way back to it, not the console's dashboard link."""
    c = _browser(runtime)
    assert c.get(f"/p/{tenant}/requests?type=access", headers=HTML).status_code == 200
    c.cookies.clear()
    r = c.post(
        f"/p/{tenant}/requests",
        data={"csrf_token": "x" * 43, "type": "access", "email": "ann@example.com"},
        headers=HTML,
    )
    assert r.status_code == 403
    assert "The form has expired" in r.text
    assert "Privacy center" in r.text and f'href="/p/{tenant}/requests"' in r.text
    assert not _console_error_page(r.text)


def test_too_long_a_field_on_the_privacy_center_is_told_on_its_own_page(
    runtime: Runtime, tenant: str
) -> None:
    c = _browser(runtime)
    c.get(f"/p/{tenant}/requests?type=access", headers=HTML)
    r = c.post(
        f"/p/{tenant}/requests",
        data={
            "csrf_token": c.cookies["pledge_csrf"],
            "type": "access",
            "email": "ann@example.com",
            "note": "x" * 2001,
        },
        headers=HTML,
    )
    assert r.status_code == 422
    assert "at most 2000 characters" in r.text and "Privacy center" in r.text
    assert not _console_error_page(r.text)


def test_an_expired_form_on_the_preference_center_is_told_on_its_own_page(
    runtime: Runtime, tenant: str
) -> None:
    """The preference center's page back (its signed link), not the console's."""
    with runtime.tenant_context(tenant) as ctx:
        sid = subjects.create_subject(ctx, [FieldInput("email", "ann@example.com")])
        url = urlsplit(links.preference_link(ctx, sid))
    c = _browser(runtime)
    assert c.get(f"{url.path}?{url.query}", headers=HTML).status_code == 200
    c.cookies.clear()
    r = c.post(f"{url.path}?{url.query}", data={"csrf_token": "x" * 43}, headers=HTML)
    assert r.status_code == 403
    assert "The form has expired" in r.text
    assert not _console_error_page(r.text)


def test_an_unknown_address_on_the_public_pages_is_told_on_their_own_page(
    runtime: Runtime, tenant: str
) -> None:
    r = _browser(runtime).get(f"/p/{tenant}/no-such-page", headers=HTML)
    assert r.status_code == 404
    assert not _console_error_page(r.text)


# ---------------------------------------------------------------------------------------------
# Console forms keep what was typed


def test_a_collection_point_naming_a_purpose_no_longer_there_keeps_the_form(
    runtime: Runtime, tenant: str
) -> None:
    """The purpose list was loaded, then a purpose went away (another tab, another person):
    the form comes back with what was typed and a message, not a 404 page."""
    make_user(runtime, tenant, OWNER)
    with runtime.tenant_context(tenant) as ctx:
        purposes.create_purpose(
            ctx, purposes.PurposeInput(slug="records", name="Records", lawful_basis="Contract")
        )
    c = _browser(runtime)
    csrf = login(c, tenant, OWNER)
    r = c.post(
        "/collection-points",
        data={
            "csrf_token": csrf,
            "slug": "fair",
            "name": "Trade fair stand",
            "kind": "trade_show",
            "purposes": ["records", "gone"],
        },
        headers=HTML,
    )
    assert r.status_code == 422
    alert = re.search(r'role="alert"[^>]*>([^<]*)<', r.text)
    assert alert and "'gone' is no longer there" in html.unescape(alert.group(1))
    assert 'value="Trade fair stand"' in r.text
    assert 'value="records" checked' in r.text
    with runtime.tenant_context(tenant) as ctx:
        assert purposes.find_collection_point(ctx, "fair") is None
