"""Sign-in: argon2id passwords, lockout, TOTP, sessions, CSRF; API keys stored as digests."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from pledge.access import service as access
from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.models import ApiKey, LoginSession, User
from pledge.access.permissions import ROLE_SCOPES, Role, Scope
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen, utcnow
from pledge.core.errors import Forbidden, InvalidInput
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import (
    PASSWORD,
    api_client,
    login,
    make_api_token,
    make_tenant,
    make_user,
)


def _client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def _post_login(client: TestClient, email: str, password: str, workspace: str = "acme") -> int:
    return login_response(client, email, password, workspace).status_code


def login_response(
    client: TestClient, email: str, password: str, workspace: str = "acme", **headers: str
) -> Response:
    """The sign-in form sent as a browser sends it (`headers`: e.g. a proxy's)."""
    client.get("/login", headers=headers)
    return client.post(
        "/login",
        data={
            "workspace": workspace,
            "email": email,
            "password": password,
            "csrf_token": client.cookies["pledge_csrf"],
        },
        headers=headers,
        follow_redirects=False,
    )


def test_passwords_are_argon2id_and_emails_sealed(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "Staff@Acme.example")
    with runtime.tenant_context(tenant) as ctx:
        user = ctx.session.scalars(select(User)).one()
        assert user.password_hash.startswith("$argon2id$")
        assert b"staff@acme.example" not in user.email_sealed
        assert access.user_email(ctx.keystore, user) == "staff@acme.example"


def test_short_passwords_and_unknown_roles_are_refused(runtime: Runtime, tenant: str) -> None:
    with pytest.raises(InvalidInput, match="12 characters"), runtime.tenant_context(tenant) as ctx:
        access.add_user(ctx, email="a@acme.example", password="short", role="agent")
    with pytest.raises(InvalidInput, match="role"), runtime.tenant_context(tenant) as ctx:
        access.add_user(ctx, email="a@acme.example", password=PASSWORD, role="god")


def test_login_logout_and_audit(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    assert _post_login(client, "staff@acme.example", "wrong password!!") == 401
    assert _post_login(client, "nobody@acme.example", PASSWORD) == 401
    assert _post_login(client, "staff@acme.example", PASSWORD, workspace="nope") == 401
    assert _post_login(client, "STAFF@acme.example", PASSWORD) == 303
    assert client.get("/", follow_redirects=False).status_code == 200
    r = client.post(
        "/logout", data={"csrf_token": client.cookies["pledge_csrf"]}, follow_redirects=False
    )
    assert r.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    with runtime.tenant_context(tenant) as ctx:
        events = [
            (e.event, e.details.get("reason"))
            for e in ctx.session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]
    assert ("user.login_failed", "bad_password") in events
    assert ("user.login_failed", "unknown_account") in events
    assert ("user.login", None) in events and ("user.logout", None) in events


def test_five_failures_lock_the_account_for_a_while(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    for _ in range(5):
        assert _post_login(client, "staff@acme.example", "not the password") == 401
    locked = login_response(client, "staff@acme.example", PASSWORD)  # even the right one
    assert locked.status_code == 401
    assert "too many failed tries: wait 15 minutes" in locked.text
    with frozen(utcnow() + timedelta(minutes=16)):
        assert _post_login(client, "staff@acme.example", PASSWORD) == 303
    with runtime.tenant_context(tenant) as ctx:
        reasons = [
            e.details.get("reason")
            for e in ctx.session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            if e.event == "user.login_failed"
        ]
    assert reasons == ["bad_password"] * 5 + ["locked"]


def test_a_locked_account_answers_like_an_unknown_one(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    # 23 tries from one address: past the per-address limit (tests/access/test_throttle.py),
    # which is not what this test is about.
    settings = runtime.settings.model_copy(update={"rate_limits": False})
    client = _client(replace(runtime, settings=settings))
    for _ in range(5):
        _post_login(client, "staff@acme.example", "not the password")
    # Six tries at each: nothing tells the locked real account from one that does not exist.
    for _ in range(6):
        real = login_response(client, "staff@acme.example", "not the password")
        right = login_response(client, "staff@acme.example", PASSWORD)
        unknown = login_response(client, "nobody@acme.example", "not the password")
        assert real.status_code == right.status_code == unknown.status_code == 401
        # The form gives back the e-mail typed, whichever account it names.
        assert "staff@acme.example" in real.text and "nobody@acme.example" in unknown.text
        assert real.text == right.text == unknown.text.replace("nobody@", "staff@")


def _start_strict_login(client: TestClient) -> str:
    """Password step on a tenant requiring TOTP; returns the secret the enrolment shows."""
    assert _post_login(client, "staff@strict.example", PASSWORD, workspace="strict") == 303
    page = client.get("/login/totp").text
    return page.split('id="totp-secret">')[1].split("<")[0]


def _totp(client: TestClient, code: str) -> Response:
    return client.post(
        "/login/totp",
        data={"code": code, "csrf_token": client.cookies["pledge_csrf"]},
        follow_redirects=False,
    )


def test_the_session_token_is_replaced_after_the_second_factor(runtime: Runtime) -> None:
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", "staff@strict.example")
    client = _client(runtime)
    secret = _start_strict_login(client)
    before = client.cookies["pledge_session"]
    r = _totp(client, pyotp.TOTP(secret).now())
    assert r.status_code == 303
    after = client.cookies["pledge_session"]
    assert after != before and after.split(".")[2] != before.split(".")[2]
    assert client.get("/subjects", follow_redirects=False).status_code == 200
    # Whoever held the token of the password step (planted or seen) is not signed in.
    stale = _client(runtime)
    stale.cookies.set("pledge_session", before)
    r = stale.get("/subjects", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with runtime.tenant_context("strict") as ctx:
        assert len(ctx.session.scalars(select(LoginSession)).all()) == 1


def test_the_totp_step_tells_of_the_lock(runtime: Runtime) -> None:
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", "staff@strict.example")
    client = _client(runtime)
    secret = _start_strict_login(client)
    for _ in range(4):
        assert _totp(client, "000000").status_code == 401
    r = _totp(client, "000000")  # the fifth wrong code locks and ends the pending sign-in
    assert r.status_code == 429 and "this account is locked; wait 15 minutes" in r.text
    assert _totp(client, pyotp.TOTP(secret).now()).headers["location"] == "/login"
    # Back at the password step a locked account answers like any refused sign-in.
    r = login_response(client, "staff@strict.example", PASSWORD, workspace="strict")
    assert r.status_code == 401 and "too many failed tries" in r.text
    # A pending sign-in from before the lock is told too, even with the right code.
    with frozen(utcnow() + timedelta(minutes=16)):
        other = _client(runtime)
        _start_strict_login(other)
        for _ in range(5):
            _post_login(client, "staff@strict.example", "not the password", workspace="strict")
        r = _totp(other, pyotp.TOTP(secret).now())
        assert r.status_code == 429 and "this account is locked" in r.text
        assert other.get("/subjects", follow_redirects=False).status_code == 303


def test_totp_required_by_the_tenant(runtime: Runtime) -> None:
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", "staff@strict.example")
    client = _client(runtime)
    assert _post_login(client, "staff@strict.example", PASSWORD, workspace="strict") == 303
    # Not signed in yet: every page sends to the second step.
    r = client.get("/subjects", follow_redirects=False)
    assert r.headers["location"] == "/login/totp"
    page = client.get("/login/totp").text
    secret = page.split('id="totp-secret">')[1].split("<")[0]
    csrf = client.cookies["pledge_csrf"]
    r = client.post(
        "/login/totp", data={"code": "000000", "csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 401
    code = pyotp.TOTP(secret).now()
    r = client.post("/login/totp", data={"code": code, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/subjects", follow_redirects=False).status_code == 200
    # A code is good once: the same code cannot complete another login.
    other = _client(runtime)
    _post_login(other, "staff@strict.example", PASSWORD, workspace="strict")
    r = other.post(
        "/login/totp",
        data={"code": code, "csrf_token": other.cookies["pledge_csrf"]},
        follow_redirects=False,
    )
    assert r.status_code == 401


def test_sessions_expire_and_are_stored_as_digests(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    login(client, tenant, "staff@acme.example")
    token = client.cookies["pledge_session"]
    with runtime.tenant_context(tenant) as ctx:
        stored = ctx.session.scalars(select(LoginSession)).one()
        assert token.split(".")[2].encode() not in stored.secret_digest
    with frozen(utcnow() + timedelta(hours=runtime.settings.session_hours, minutes=1)):
        assert client.get("/", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    login(client, tenant, "staff@acme.example")
    r = client.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf_token": "x" * 43}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_login_redirects_only_to_local_pages(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    client.get("/login")
    for target, expected in (
        ("/subjects", "/subjects"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
    ):
        r = client.post(
            "/login",
            data={
                "workspace": tenant,
                "email": "staff@acme.example",
                "password": PASSWORD,
                "csrf_token": client.cookies["pledge_csrf"],
                "next": target,
            },
            follow_redirects=False,
        )
        assert r.headers["location"] == expected


def test_roles_limit_pages(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, "viewer@acme.example", Role.VIEWER)
    client = _client(runtime)
    login(client, tenant, "viewer@acme.example")
    assert client.get("/subjects").status_code == 200
    assert client.get("/audit", headers={"accept": "text/html"}).status_code == 403


def test_api_tokens_are_stored_as_digests_only(runtime: Runtime, tenant: str) -> None:
    token = make_api_token(runtime, tenant)
    secret = token.split("_", 3)[3]  # the secret may hold "_" itself (URL-safe base64)
    with runtime.tenant_context(tenant) as ctx:
        key = ctx.session.scalars(select(ApiKey)).one()
    assert secret.encode() not in key.secret_digest and len(key.secret_digest) == 32


def test_an_api_key_grants_only_scopes_it_holds(runtime: Runtime, tenant: str) -> None:
    manager = api_client(
        runtime, make_api_token(runtime, tenant, frozenset({Scope.APIKEYS_MANAGE}))
    )
    r = manager.post("/api/v1/api-keys", json={"name": "all", "scopes": [s.value for s in Scope]})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert "token" not in r.json() and "plg_" not in r.text
    assert "users:manage" in r.json()["detail"] and "subjects:erase" in r.json()["detail"]
    assert "apikeys:manage" not in r.json()["detail"]  # it holds that one
    assert [k["name"] for k in manager.get("/api/v1/api-keys").json()] == ["test"]

    reader = api_client(
        runtime,
        make_api_token(runtime, tenant, frozenset({Scope.APIKEYS_MANAGE, Scope.SUBJECTS_READ})),
    )
    r = reader.post(
        "/api/v1/api-keys", json={"name": "more", "scopes": ["subjects:read", "audit:read"]}
    )
    assert r.status_code == 403 and r.json()["detail"].endswith("do not hold: audit:read")
    r = reader.post("/api/v1/api-keys", json={"name": "same", "scopes": ["subjects:read"]})
    assert r.status_code == 201 and r.json()["scopes"] == ["subjects:read"]
    assert api_client(runtime, r.json()["token"]).get("/api/v1/subjects").status_code == 200


def test_a_role_bounds_the_keys_its_user_can_create(runtime: Runtime, tenant: str) -> None:
    # The console has no API-key page today; the rule is in the service, for any caller.
    with runtime.tenant_context(tenant) as operator:
        agent = TenantContext.lazy(
            operator.session,
            operator.keystore,
            operator.tenant_id,
            Actor(ActorKind.USER, "agent"),
            ROLE_SCOPES[Role.AGENT],
        )
        with pytest.raises(Forbidden, match="do not hold: subjects:erase, users:manage"):
            access.create_api_key(
                agent,
                name="x",
                scopes=frozenset({Scope.SUBJECTS_READ, Scope.SUBJECTS_ERASE, Scope.USERS_MANAGE}),
            )
        _key, token = access.create_api_key(
            agent, name="ok", scopes=frozenset({Scope.SUBJECTS_READ})
        )
        assert token.startswith("plg_")


@pytest.mark.parametrize(
    ("base_url", "forced", "secure"),
    [
        ("https://privacy.example.com", None, True),  # production: Secure by default
        ("http://127.0.0.1:8000", None, False),  # the development server on plain HTTP
        ("http://127.0.0.1:8000", True, True),  # e.g. TLS ended by a proxy in front
        ("https://privacy.example.com", False, False),
    ],
)
def test_cookies_are_secure_when_pledge_is_served_over_https(
    runtime: Runtime, base_url: str, forced: bool | None, secure: bool
) -> None:
    make_tenant(runtime, "acme")
    make_user(runtime, "acme", "owner@acme.example")
    runtime.settings = runtime.settings.model_copy(
        update={"base_url": base_url, "secure_cookies": forced}
    )
    client = TestClient(create_app(runtime), base_url="https://testserver")
    first = client.get("/login")
    signed_in = client.post(
        "/login",
        data={
            "workspace": "acme",
            "email": "owner@acme.example",
            "password": PASSWORD,
            "csrf_token": client.cookies["pledge_csrf"],
        },
        follow_redirects=False,
    )
    cookies = [*first.headers.get_list("set-cookie"), *signed_in.headers.get_list("set-cookie")]
    names = {c.split("=", 1)[0]: c for c in cookies}
    assert set(names) >= {"pledge_csrf", "pledge_session"}
    for cookie in names.values():
        assert ("; secure" in cookie.lower()) is secure, cookie
