"""Per-address limits on the sign-in (`pledge.web.throttle`): one client trying passwords on
many accounts is stopped, whatever the per-account lock says; a trusted proxy's clients are
counted apart, and nobody else can choose their address with `X-Forwarded-For`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyotp
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from pledge.audit.models import AuditEntry
from pledge.runtime import Runtime
from pledge.web.app import create_app
from pledge.web.server import proxy_options
from tests.access.test_auth import login_response
from tests.conftest import PASSWORD, make_tenant, make_user

PEER = ("203.0.113.7", 50000)


def _runtime(runtime: Runtime, **settings: Any) -> Runtime:
    return replace(runtime, settings=runtime.settings.model_copy(update=settings))


def _client(runtime: Runtime, client: tuple[str, int] = PEER, **settings: Any) -> TestClient:
    app = create_app(_runtime(runtime, **settings))
    return TestClient(app, raise_server_exceptions=False, client=client)


def _failed_logins(runtime: Runtime, tenant: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        events = ctx.session.scalars(select(AuditEntry.event)).all()
    return sum(1 for e in events if e == "user.login_failed")


def test_one_address_spraying_passwords_over_many_accounts_is_stopped(
    runtime: Runtime, tenant: str
) -> None:
    """The default: 20 sign-in attempts a minute per address — one wrong password on each of
    20 accounts never locks any of them, so only the address can be counted."""
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    for n in range(20):
        assert login_response(client, f"user{n}@acme.example", "Winter2026!").status_code == 401
    stopped = login_response(client, "staff@acme.example", PASSWORD)  # even the right password
    assert stopped.status_code == 429
    assert 1 <= int(stopped.headers["Retry-After"]) <= 60
    assert "Too many sign-in attempts from your network" in stopped.text
    assert 'role="alert"' in stopped.text and 'name="password"' in stopped.text  # the form
    assert "pledge_session" not in client.cookies
    assert "Traceback" not in stopped.text
    # Nothing was tried: no refusal audited beyond the 20, the account is not locked.
    assert _failed_logins(runtime, tenant) == 20
    # Another address is not held back, and the account signs in.
    other = _client(runtime, client=("198.51.100.9", 50000))
    assert login_response(other, "staff@acme.example", PASSWORD).status_code == 303


def test_an_ipv6_client_is_counted_by_its_network(runtime: Runtime, tenant: str) -> None:
    first = _client(runtime, client=("2001:db8:1:2::1", 50000), sign_in_rate="2/minute")
    for _ in range(2):
        assert login_response(first, "nobody@acme.example", "wrong password").status_code == 401
    # Another address of the same /64 (one subscriber's): the same count.
    same_net = TestClient(first.app, raise_server_exceptions=False, client=("2001:db8:1:2::ff", 1))
    assert login_response(same_net, "nobody@acme.example", "wrong password").status_code == 429
    elsewhere = TestClient(first.app, raise_server_exceptions=False, client=("2001:db8:9::1", 1))
    assert login_response(elsewhere, "nobody@acme.example", "wrong password").status_code == 401


def test_the_code_step_counts_too_and_a_refused_code_does_nothing(runtime: Runtime) -> None:
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", "staff@strict.example")
    client = _client(runtime, sign_in_rate="3/minute")
    assert login_response(client, "staff@strict.example", PASSWORD, "strict").status_code == 303
    page = client.get("/login/totp").text
    secret = page.split('id="totp-secret">')[1].split("<")[0]

    def code(value: str) -> Response:
        return client.post(
            "/login/totp",
            data={"code": value, "csrf_token": client.cookies["pledge_csrf"]},
            follow_redirects=False,
        )

    assert code("000000").status_code == 401
    assert code("000000").status_code == 401
    stopped = code(pyotp.TOTP(secret).now())  # the fourth attempt of this address
    assert stopped.status_code == 429 and "Retry-After" in stopped.headers
    assert "Too many sign-in attempts from your network" in stopped.text
    assert 'name="code"' in stopped.text
    # Not signed in: the pending sign-in still waits for its code.
    r = client.get("/subjects", follow_redirects=False)
    assert r.headers["location"] == "/login/totp"
    # Forgetting the app's counts (the reset hook tests use) lets the code through.
    assert isinstance(client.app, FastAPI)
    client.app.state.throttle.reset()
    assert code(pyotp.TOTP(secret).now()).status_code == 303
    assert client.get("/subjects", follow_redirects=False).status_code == 200


def test_the_limits_can_be_switched_off(runtime: Runtime, tenant: str) -> None:
    client = _client(runtime, sign_in_rate="2/minute", rate_limits=False)
    for _ in range(5):
        assert login_response(client, "nobody@acme.example", "wrong password").status_code == 401


def _behind(runtime: Runtime, peer: str, trusted: str | None) -> TestClient:
    """The app as `pledge serve` runs it under uvicorn, reached from `peer`."""
    rt = _runtime(runtime, forwarded_allow_ips=trusted, sign_in_rate="2/minute")
    config = uvicorn.Config(create_app(rt), **proxy_options(rt.settings))
    config.load()
    return TestClient(config.loaded_app, raise_server_exceptions=False, client=(peer, 50000))


def test_a_trusted_proxy_forwards_each_clients_address(runtime: Runtime, tenant: str) -> None:
    proxy = _behind(runtime, "10.0.0.5", "10.0.0.0/24")
    one = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(2):
        assert login_response(proxy, "nobody@acme.example", "wrong", **one).status_code == 401
    assert login_response(proxy, "nobody@acme.example", "wrong", **one).status_code == 429
    # Another client behind the same proxy has its own count.
    two = {"X-Forwarded-For": "198.51.100.9"}
    assert login_response(proxy, "nobody@acme.example", "wrong", **two).status_code == 401


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(
    runtime: Runtime, tenant: str
) -> None:
    for trusted in (None, "10.0.0.5"):
        client = _behind(runtime, "203.0.113.7", trusted)
        for n in range(2):
            spoofed = {"X-Forwarded-For": f"192.0.2.{n}"}
            assert (
                login_response(client, "nobody@acme.example", "wrong", **spoofed).status_code == 401
            )
        # A fresh made-up address changes nothing: the peer is counted.
        spoofed = {"X-Forwarded-For": "192.0.2.99"}
        assert login_response(client, "nobody@acme.example", "wrong", **spoofed).status_code == 429
