"""`pledge user disable` / `enable`: someone who left can no longer sign in, and the session
they had open stops working at once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.access.permissions import Role
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.cli.test_cli import run
from tests.conftest import login, make_user, post_login

OWNER = "owner@acme.example"
LEAVER = "leaver@acme.example"


def _browser(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def _signed_in(client: TestClient) -> bool:
    r = client.get("/subjects", follow_redirects=False)
    assert r.status_code in {200, 303}, r.status_code
    return r.status_code == 200


def _sign_in(runtime: Runtime, email: str) -> int:
    return post_login(_browser(runtime), "acme", email).status_code


def _events(runtime: Runtime, tenant: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        return list(
            ctx.session.scalars(
                select(AuditEntry.event)
                .where(AuditEntry.tenant_id == ctx.tenant_id)
                .order_by(AuditEntry.seq)
            )
        )


def test_a_disabled_user_is_signed_out_and_cannot_sign_in_until_enabled(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, LEAVER, Role.PRIVACY_OFFICER)
    leaver = _browser(runtime)
    login(leaver, tenant, LEAVER)
    owner = _browser(runtime)
    login(owner, tenant, OWNER)
    assert _signed_in(leaver)

    code, out = run("user", "disable", "--tenant", tenant, "--email", LEAVER)
    assert code == 0 and "disabled; 1 session(s) ended" in out, out
    assert not _signed_in(leaver)  # the open session stops at once
    assert _sign_in(runtime, LEAVER) != 303  # the right password no longer signs in
    assert _signed_in(owner)  # nobody else is signed out
    assert AuditEvent.USER_DISABLED.value in _events(runtime, tenant)

    code, out = run("user", "enable", "--tenant", tenant, "--email", LEAVER)
    assert code == 0 and "enabled" in out, out
    assert _sign_in(runtime, LEAVER) == 303
    assert _events(runtime, tenant).count(AuditEvent.USER_ENABLED.value) == 1


def test_the_last_active_owner_cannot_be_disabled(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    code, out = run("user", "disable", "--tenant", tenant, "--email", OWNER)
    assert code == 1 and "last active owner" in out, out
    assert _sign_in(runtime, OWNER) == 303

    # With a second owner, one of them may go — but not both.
    make_user(runtime, tenant, "second@acme.example", Role.OWNER)
    code, out = run("user", "disable", "--tenant", tenant, "--email", OWNER)
    assert code == 0, out
    code, out = run("user", "disable", "--tenant", tenant, "--email", "second@acme.example")
    assert code == 1 and "last active owner" in out, out
    assert _sign_in(runtime, "second@acme.example") == 303


def test_disabling_someone_unknown_says_so(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    code, out = run("user", "disable", "--tenant", tenant, "--email", "nobody@acme.example")
    assert code == 1 and "no user with this e-mail" in out, out
