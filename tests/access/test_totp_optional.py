"""A second factor a person turns on for themselves, in a workspace that does not require one:
from then on their sign-in asks for the code; their colleagues' does not."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient
from httpx2 import Response

from pledge.core.clock import frozen, utcnow
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import make_user, post_login

STAFF = "staff@acme.example"
COLLEAGUE = "colleague@acme.example"


def _browser(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def _sign_in(client: TestClient, email: str) -> Response:
    return post_login(client, "acme", email)


def _code(client: TestClient, code: str) -> Response:
    return client.post(
        "/login/totp",
        data={"code": code, "csrf_token": client.cookies["pledge_csrf"]},
        follow_redirects=False,
    )


def _wrong_code(totp: pyotp.TOTP) -> str:
    """A code no time step near now accepts (the check allows the adjacent steps)."""
    now = utcnow().timestamp()
    near = {totp.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def _two_step(account_page: str) -> str:
    found = re.search(r"<dt>Two-step sign-in</dt><dd>(\w+)</dd>", account_page)
    assert found, account_page
    return found.group(1)


def test_a_second_factor_turned_on_voluntarily_is_asked_for_at_the_next_sign_in(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, STAFF)
    make_user(runtime, tenant, COLLEAGUE)
    start = utcnow()
    with frozen(start):
        c = _browser(runtime)
        r = _sign_in(c, STAFF)
        assert r.status_code == 303 and r.headers["location"] == "/"  # no code asked yet
        csrf = c.cookies["pledge_csrf"]
        assert _two_step(c.get("/account").text) == "off"
        began = c.post("/account/totp", data={"csrf_token": csrf})
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', began.text)
        assert secret, began.text
        totp = pyotp.TOTP(secret.group(1))
        done = c.post("/account/totp/confirm", data={"csrf_token": csrf, "code": totp.at(utcnow())})
        assert done.status_code == 200 and "Two-step sign-in is on." in done.text
        assert _two_step(c.get("/account").text) == "on"
        r = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
    # A later time step: the code used to confirm is good once only.
    with frozen(start + timedelta(seconds=90)):
        r = _sign_in(c, STAFF)
        assert r.status_code == 303 and r.headers["location"] == "/login/totp"
        # The password alone does not sign in: every page sends to the code.
        r = c.get("/subjects", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login/totp"
        step = c.get("/login/totp").text
        assert 'name="code"' in step
        assert 'id="totp-secret"' not in step  # enrolled: no new key offered
        refused = _code(c, _wrong_code(totp))
        assert refused.status_code == 401 and "That code is not right." in refused.text
        assert c.get("/subjects", follow_redirects=False).headers["location"] == "/login/totp"
        r = _code(c, totp.at(utcnow()))
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert c.get("/subjects", follow_redirects=False).status_code == 200
        # The workspace still does not require it: a colleague signs in with the password.
        other = _browser(runtime)
        r = _sign_in(other, COLLEAGUE)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert other.get("/subjects", follow_redirects=False).status_code == 200
