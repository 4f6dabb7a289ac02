"""The lockout counts wrong second-factor codes across password sign-ins until one completes."""

from __future__ import annotations

from datetime import timedelta

import pyotp

from pledge.core.clock import frozen, utcnow
from pledge.runtime import Runtime
from tests.access.test_auth import _client, _post_login, _start_strict_login, _totp
from tests.conftest import PASSWORD, make_tenant, make_user

STAFF = "staff@strict.example"


def _wrong_code(totp: pyotp.TOTP) -> str:
    """A code no time step near now accepts (the check allows the adjacent steps)."""
    now = utcnow().timestamp()
    near = {totp.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def test_the_password_step_does_not_reset_the_second_factor_lockout(runtime: Runtime) -> None:
    """Someone with the password but not the authenticator: five wrong codes lock the
    account, however often the password step is passed again in between."""
    make_tenant(runtime, "strict", require_totp=True)
    make_user(runtime, "strict", STAFF)
    with frozen(utcnow()):
        owner = _client(runtime)
        totp = pyotp.TOTP(_start_strict_login(owner))
        assert _totp(owner, totp.at(utcnow())).status_code == 303  # the owner is enrolled
        wrong = _wrong_code(totp)
        attacker = _client(runtime)
        assert _post_login(attacker, STAFF, PASSWORD, "strict") == 303
        for _ in range(4):
            assert _totp(attacker, wrong).status_code == 401
        # Signing in with the password again does not give four more tries.
        assert _post_login(attacker, STAFF, PASSWORD, "strict") == 303
        r = _totp(attacker, wrong)
        assert r.status_code == 429 and "this account is locked" in r.text
        assert _post_login(attacker, STAFF, PASSWORD, "strict") == 401
    with frozen(utcnow() + timedelta(minutes=16)):
        # The lock ends; a completed sign-in starts the count afresh.
        assert _post_login(attacker, STAFF, PASSWORD, "strict") == 303
        for _ in range(4):
            assert _totp(attacker, _wrong_code(totp)).status_code == 401
        assert _post_login(owner, STAFF, PASSWORD, "strict") == 303
        assert _totp(owner, totp.at(utcnow())).status_code == 303
        assert _post_login(attacker, STAFF, PASSWORD, "strict") == 303
        for _ in range(4):
            assert _totp(attacker, _wrong_code(totp)).status_code == 401


def test_a_sign_in_without_a_second_factor_starts_the_count_afresh(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, "staff@acme.example")
    client = _client(runtime)
    for _ in range(4):
        assert _post_login(client, "staff@acme.example", "not the password") == 401
    assert _post_login(client, "staff@acme.example", PASSWORD) == 303
    for _ in range(4):
        assert _post_login(client, "staff@acme.example", "not the password") == 401
    assert _post_login(client, "staff@acme.example", PASSWORD) == 303
