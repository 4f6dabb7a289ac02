"""Isolation cases of staff management: the team page, the users API, the invitation link
(public: its tenant comes from the link; tests/access/test_team.py checks that a link with
another tenant's id finds nothing)."""

from __future__ import annotations

from pledge.access import invitations
from pledge.access import service as access
from pledge.access.permissions import Role
from pledge.runtime import Runtime
from tests.conftest import PASSWORD
from tests.isolation_cases import Cases, World

A_STAFF = "staff.only.in.a@example.com"
A_INVITEE = "invitee.only.in.a@example.com"


def setup_a(runtime: Runtime) -> dict[str, str]:
    with runtime.tenant_context("tenant-a") as ctx:
        user = access.add_user(ctx, email=A_STAFF, password=PASSWORD, role=Role.AGENT.value)
        invitation, _token = invitations.invite_user(ctx, email=A_INVITEE, role=Role.VIEWER.value)
    return {"user_id": str(user.id), "invitation_id": str(invitation.id)}


def check(w: World) -> None:
    a_user = w.params["user_id"]
    r = w.page.get("/team")
    assert r.status_code == 200
    assert a_user not in r.text and A_STAFF not in r.text and A_INVITEE not in r.text
    r = w.api.get("/api/v1/users")
    assert r.status_code == 200 and a_user not in r.text and A_STAFF not in r.text
    # Blind indexes are keyed per tenant: A's addresses are free in B.
    r = w.api.post("/api/v1/users", json={"email": A_STAFF, "role": "viewer"})
    assert r.status_code == 201, r.text
    r = w.page.post(
        "/team/invite", data={"email": A_INVITEE, "role": "viewer", "csrf_token": w.csrf}
    )
    assert r.status_code == 200 and "/invite/" in r.text


def verify_a(runtime: Runtime, params: dict[str, str]) -> None:
    with runtime.tenant_context("tenant-a") as ctx:
        user = access.get_user(ctx, params["user_id"])
        assert (user.role, user.disabled_at) == (Role.AGENT.value, None)
        [invitation] = invitations.list_invitations(ctx)  # not revoked from B
        assert str(invitation.id) == params["invitation_id"]
        assert invitations.invitation_email(ctx.keystore, invitation) == A_INVITEE


CASES = Cases(
    setup_a=setup_a,
    api_foreign={
        ("PATCH", "/api/v1/users/{user_id}"): {"role": "viewer"},
        ("POST", "/api/v1/users/{user_id}/disable"): None,
        ("POST", "/api/v1/users/{user_id}/enable"): None,
        ("DELETE", "/api/v1/users/invitations/{invitation_id}"): None,
    },
    page_foreign={
        ("POST", "/team/{user_id}/role"): {"role": "viewer"},
        ("POST", "/team/{user_id}/disable"): None,
        ("POST", "/team/{user_id}/enable"): None,
        ("POST", "/team/invitations/{invitation_id}/revoke"): None,
    },
    lists={
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", "/team"),
        ("POST", "/team/invite"),
    },
    public={
        ("GET", "/invite/{token}"),
        ("POST", "/invite/{token}"),
    },
    check=check,
    verify_a=verify_a,
)
