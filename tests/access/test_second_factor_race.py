"""Wrong second-factor codes sent at the same time each count towards the lock-out
(PostgreSQL; SQLite's writers take turns)."""

from __future__ import annotations

import pytest

from pledge.access import service as access
from pledge.access.context import TenantContext
from pledge.core.clock import utcnow
from pledge.core.errors import TooManyAttempts, Unauthenticated
from pledge.runtime import Runtime
from tests.conftest import PASSWORD, Second, make_tenant, make_user

EMAIL = "owner@example.com"
# The tenant requires a second factor the owner has not set up: no code is ever right.
WRONG = "000000"


def _pending_sign_ins(runtime: Runtime, count: int) -> list[str]:
    """Tokens of sign-ins past the password, waiting for a code."""
    tokens = []
    with runtime.tenant_context("strict") as ctx:
        for _ in range(count):
            user = access.authenticate(ctx.session, ctx.keystore, ctx.tenant, EMAIL, PASSWORD)
            tokens.append(access.start_session(ctx, user, hours=1))
    return tokens


def _send_wrong_code(ctx: TenantContext, token: str) -> int:
    resolved = access.resolve_session(ctx.session, token)
    assert resolved is not None
    with pytest.raises(Unauthenticated):
        access.complete_second_factor(ctx, resolved, WRONG)
    return 0


def _failed_logins(runtime: Runtime) -> int:
    with runtime.tenant_context("strict") as ctx:
        return access.user_by_email(ctx, EMAIL).failed_logins


def test_wrong_codes_sent_at_once_both_count(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", EMAIL)
    first, second = _pending_sign_ins(runtime, 2)
    with runtime.tenant_context("strict") as ctx:
        _send_wrong_code(ctx, first)
        # The second reads the user while the first has not committed its count.
        other = Second(runtime, utcnow(), "strict", lambda c: _send_wrong_code(c, second))
    other.result()
    assert _failed_logins(runtime) == 2


def test_the_fifth_wrong_code_in_a_row_locks_the_account(runtime: Runtime) -> None:
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", EMAIL)
    tokens = _pending_sign_ins(runtime, access.MAX_FAILED_LOGINS)
    for n, token in enumerate(tokens[:-1], start=1):
        with runtime.tenant_context("strict") as ctx:
            _send_wrong_code(ctx, token)
        assert _failed_logins(runtime) == n
    with runtime.tenant_context("strict") as ctx:
        resolved = access.resolve_session(ctx.session, tokens[-1])
        assert resolved is not None
        with pytest.raises(TooManyAttempts):
            access.complete_second_factor(ctx, resolved, WRONG)
    with runtime.tenant_context("strict") as ctx:
        user = access.user_by_email(ctx, EMAIL)
        assert user.failed_logins == 0
        assert user.locked_until is not None and user.locked_until > utcnow()
        # The pending sign-in ended with the lock.
        assert access.resolve_session(ctx.session, tokens[-1]) is None
