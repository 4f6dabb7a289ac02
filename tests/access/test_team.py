"""Staff management without a shell: the team page, the invitation link, the users API, and the
rules — only an owner makes an owner, nobody changes their own role, the last active owner
stays one — each audited by user id, never by e-mail."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.access import invitations
from pledge.access import service as access
from pledge.access.context import Actor, ActorKind
from pledge.access.models import StaffInvitation, User
from pledge.access.permissions import ROLE_SCOPES, Role, Scope
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen, utcnow
from pledge.core.db import transaction
from pledge.core.errors import Conflict, Forbidden
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import (
    PASSWORD,
    api_client,
    login,
    make_api_token,
    make_tenant,
    make_user,
    until_done_or_blocked,
)

OWNER = "owner@acme.example"
ADMIN = "admin@acme.example"
AGENT = "agent@acme.example"
NEWCOMER = "newcomer@acme.example"
NEW_PASSWORD = "a brand new passphrase"


def _browser(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def _signed_in(runtime: Runtime, email: str, password: str = PASSWORD) -> TestClient:
    client = _browser(runtime)
    login(client, "acme", email, password)
    return client


def _csrf(client: TestClient) -> str:
    return client.cookies["pledge_csrf"]


def _user(runtime: Runtime, email: str) -> User:
    with runtime.tenant_context("acme") as ctx:
        user = access.user_by_email(ctx, email)
        ctx.session.expunge(user)
        return user


def _events(runtime: Runtime) -> list[tuple[str, dict[str, object], str | None]]:
    with runtime.tenant_context("acme") as ctx:
        return [
            (e.event, e.details, e.actor_id)
            for e in ctx.session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def _link_path(html: str) -> str:
    match = re.search(r'id="invite-link" type="text" readonly value="[^"]*(/invite/[^"]+)"', html)
    assert match, html
    return match.group(1)


def _invite(runtime: Runtime, email: str = NEWCOMER, role: str = "agent") -> str:
    with runtime.tenant_context("acme") as ctx:
        _invitation, token = invitations.invite_user(ctx, email=email, role=role)
    return token


def _accept(client: TestClient, path: str, password: str, again: str | None = None) -> str:
    client.get(path)
    r = client.post(
        path,
        data={
            "password": password,
            "password_again": password if again is None else again,
            "csrf_token": _csrf(client),
        },
    )
    return f"{r.status_code} {r.text}"


# ---------------------------------------------------------------------------------------------
# Invitations


def test_an_owner_invites_from_the_team_page_and_the_invitee_signs_in(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    owner = _signed_in(runtime, OWNER)
    r = owner.get("/team")
    assert r.status_code == 200 and OWNER in r.text
    assert '<a href="/team" aria-current="page">Team</a>' in r.text

    r = owner.post(
        "/team/invite",
        data={"email": NEWCOMER, "role": "privacy_officer", "csrf_token": _csrf(owner)},
    )
    assert r.status_code == 200, r.text
    path = _link_path(r.text)
    assert f'value="http://127.0.0.1:8000{path}"' in r.text  # the link, with the base URL
    # Shown once: the team page lists the invitation, never its link again.
    again = owner.get("/team").text
    assert NEWCOMER in again and "/invite/" not in again

    invitee = _browser(runtime)
    form = invitee.get(path)
    assert form.status_code == 200
    assert NEWCOMER in form.text and "Acme Ltd" in form.text
    assert "The two passwords differ" in _accept(invitee, path, NEW_PASSWORD, "something else!")
    assert "422 " in _accept(invitee, path, "too short")
    done = _accept(invitee, path, NEW_PASSWORD)
    assert done.startswith("200 ") and "Your account is ready" in done

    newcomer = _signed_in(runtime, NEWCOMER, NEW_PASSWORD)
    assert newcomer.get("/requests").status_code == 200  # a privacy officer's page
    assert _user(runtime, NEWCOMER).role == "privacy_officer"
    # Used up: the link now answers like any link that does not work.
    assert _browser(runtime).get(path).status_code == 404
    assert "404 " in _accept(_browser(runtime), path, "another fine password")


def test_a_link_expired_used_or_unknown_answers_the_same_page(
    runtime: Runtime, tenant: str
) -> None:
    with frozen(utcnow() - timedelta(hours=72, minutes=1)):
        expired = _invite(runtime, "late@acme.example")
    used = _invite(runtime, "used@acme.example")
    assert _accept(_browser(runtime), f"/invite/{used}", NEW_PASSWORD).startswith("200 ")
    fresh = _invite(runtime)
    tenant_hex, invitation_hex, _secret = fresh.split(".")
    unknown = [
        "nonsense",
        f"{tenant_hex}.{invitation_hex}.not-the-secret",  # the right invitation, a wrong secret
    ]
    answers = [_browser(runtime).get(f"/invite/{t}") for t in (expired, used, *unknown)]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1
    assert "This invitation does not work" in answers[0].text
    # Posting a password to them does nothing either: no account is made.
    for token in (expired, *unknown):
        assert "This invitation does not work" in _accept(
            _browser(runtime), f"/invite/{token}", NEW_PASSWORD
        )
    with runtime.tenant_context("acme") as ctx:
        assert sorted(access.user_email(ctx.keystore, u) for u in access.list_users(ctx)) == [
            "used@acme.example"
        ]
    # The fresh one was left alone by the tries at its secret.
    assert _accept(_browser(runtime), f"/invite/{fresh}", NEW_PASSWORD).startswith("200 ")


def test_an_invitee_whose_form_expired_is_told_on_the_public_page_not_the_console_s(
    runtime: Runtime, tenant: str
) -> None:
    path = f"/invite/{_invite(runtime)}"
    invitee = _browser(runtime)
    invitee.get(path)
    # The form's CSRF token lost (it expired, or the cookie was cleared): refused before the
    # route runs, on the page an outsider can use — no way back to a dashboard they lack.
    r = invitee.post(
        path,
        data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "csrf_token": "stale"},
        headers={"accept": "text/html"},
    )
    assert r.status_code == 403, r.text
    assert "dashboard" not in r.text.lower() and "Traceback" not in r.text


def test_a_new_invitation_replaces_the_waiting_one_and_a_member_is_not_invited(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, AGENT, Role.AGENT)
    first = _invite(runtime)
    second = _invite(runtime, role="viewer")
    assert _browser(runtime).get(f"/invite/{first}").status_code == 404
    assert _accept(_browser(runtime), f"/invite/{second}", NEW_PASSWORD).startswith("200 ")
    assert _user(runtime, NEWCOMER).role == "viewer"
    client = api_client(runtime, make_api_token(runtime, tenant))
    r = client.post("/api/v1/users", json={"email": AGENT.upper(), "role": "viewer"})
    assert r.status_code == 409 and r.json()["code"] == "conflict"


def test_the_link_secret_is_a_digest_and_the_address_is_sealed(
    runtime: Runtime, tenant: str
) -> None:
    token = _invite(runtime)
    secret = token.split(".")[2]
    with runtime.tenant_context("acme") as ctx:
        row = ctx.session.scalars(select(StaffInvitation)).one()
        stored = b"".join(
            v for v in (row.email_index, row.email_sealed, row.secret_digest, row.role.encode())
        )
        assert secret.encode() not in stored and NEWCOMER.encode() not in stored
        assert row.secret_digest == hashlib.sha256(secret.encode()).digest()
        assert invitations.invitation_email(ctx.keystore, row) == NEWCOMER
        assert row.expires_at - row.created_at == timedelta(hours=72)


def test_every_act_is_audited_by_user_id_never_by_address(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    owner_id = str(_user(runtime, OWNER).id)
    owner = _signed_in(runtime, OWNER)
    r = owner.post(
        "/team/invite", data={"email": NEWCOMER, "role": "agent", "csrf_token": _csrf(owner)}
    )
    path = _link_path(r.text)
    assert _accept(_browser(runtime), path, NEW_PASSWORD).startswith("200 ")
    newcomer_id = str(_user(runtime, NEWCOMER).id)
    for action, form in (
        ("role", {"role": "viewer"}),
        ("disable", {}),
        ("enable", {}),
    ):
        r = owner.post(
            f"/team/{newcomer_id}/{action}",
            data={**form, "csrf_token": _csrf(owner)},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    events = _events(runtime)
    # From the invitation on (the owner was added by the operator before).
    events = events[next(i for i, (e, _, _) in enumerate(events) if e == "user.invited") :]
    invited = next(d for e, d, _ in events if e == "user.invited")
    assert invited["role"] == "agent" and invited["replaces"] == []
    wanted = [
        ("user.invited", owner_id),
        ("user.created", newcomer_id),
        ("user.invitation_accepted", newcomer_id),
        ("user.role_changed", owner_id),
        ("user.disabled", owner_id),
        ("user.enabled", owner_id),
    ]
    seen = [(e, actor) for e, _, actor in events if e in {w for w, _ in wanted}]
    assert seen == wanted
    changed = next(d for e, d, _ in events if e == "user.role_changed")
    assert changed == {"user_id": newcomer_id, "from": "agent", "to": "viewer"}
    accepted = next(d for e, d, _ in events if e == "user.invitation_accepted")
    assert accepted["user_id"] == newcomer_id
    assert NEWCOMER not in json.dumps([d for _, d, _ in events])


def _staff(runtime: Runtime) -> list[str]:
    with runtime.tenant_context("acme") as ctx:
        return [access.user_email(ctx.keystore, u) for u in access.list_users(ctx)]


def _invite_from_page(client: TestClient, role: str, email: str = NEWCOMER) -> str:
    r = client.post(
        "/team/invite", data={"email": email, "role": role, "csrf_token": _csrf(client)}
    )
    assert r.status_code == 200, r.text
    return _link_path(r.text)


def test_a_disabled_admins_waiting_invitation_stops_working(runtime: Runtime, tenant: str) -> None:
    """An admin about to leave invites a second address of theirs as admin; the owner disables
    them: the link answers as a used one, and makes nobody."""
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, ADMIN, Role.ADMIN)
    path = _invite_from_page(_signed_in(runtime, ADMIN), "admin")
    owner = _signed_in(runtime, OWNER)
    assert ADMIN in owner.get("/team").text.split("Waiting invitations")[1]  # who invited
    admin_id = str(_user(runtime, ADMIN).id)
    r = owner.post(f"/team/{admin_id}/disable", data={"csrf_token": _csrf(owner)})
    assert r.status_code == 200 and "disabled and signed out everywhere" in r.text
    assert _browser(runtime).get(path).status_code == 404
    done = _accept(_browser(runtime), path, NEW_PASSWORD)
    assert done.startswith("404 ") and "This invitation does not work" in done
    assert _staff(runtime) == [OWNER, ADMIN]
    # Enabled again, their link works again: it was never used.
    r = owner.post(f"/team/{admin_id}/enable", data={"csrf_token": _csrf(owner)})
    assert r.status_code == 200
    assert _accept(_browser(runtime), path, NEW_PASSWORD).startswith("200 ")


def test_an_invitation_outlives_neither_its_inviters_role_nor_its_api_key(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, ADMIN, Role.ADMIN)
    make_user(runtime, tenant, "other-owner@acme.example", Role.OWNER)
    admin = _signed_in(runtime, ADMIN)
    as_admin = _invite_from_page(admin, "privacy_officer")
    as_owner = _invite_from_page(
        _signed_in(runtime, "other-owner@acme.example"), "owner", "second@acme.example"
    )
    owner = _signed_in(runtime, OWNER)
    # Demoted to privacy officer, the admin no longer manages the team: their link is dead.
    admin_id = str(_user(runtime, ADMIN).id)
    owner.post(
        f"/team/{admin_id}/role", data={"role": "privacy_officer", "csrf_token": _csrf(owner)}
    )
    assert _accept(_browser(runtime), as_admin, NEW_PASSWORD).startswith("404 ")
    # An owner made admin can no longer make an owner.
    other_id = str(_user(runtime, "other-owner@acme.example").id)
    owner.post(f"/team/{other_id}/role", data={"role": "admin", "csrf_token": _csrf(owner)})
    assert _accept(_browser(runtime), as_owner, NEW_PASSWORD).startswith("404 ")
    # A revoked API key's invitation is dead too; the operator's (from the CLI) lives.
    with runtime.tenant_context("acme") as ctx:
        key, token = access.create_api_key(ctx, name="hr-sync", scopes=frozenset(Scope))
    r = api_client(runtime, token).post(
        "/api/v1/users", json={"email": "third@acme.example", "role": "viewer"}
    )
    assert r.status_code == 201, r.text
    by_key = r.json()["link"].removeprefix("http://127.0.0.1:8000")
    assert "API key “hr-sync”" in owner.get("/team").text
    with runtime.tenant_context("acme") as ctx:
        access.revoke_api_key(ctx, str(key.id))
    assert _accept(_browser(runtime), by_key, NEW_PASSWORD).startswith("404 ")
    by_operator = f"/invite/{_invite(runtime, 'fourth@acme.example')}"
    assert "the operator (command line)" in owner.get("/team").text
    assert _accept(_browser(runtime), by_operator, NEW_PASSWORD).startswith("200 ")
    assert _staff(runtime) == [OWNER, ADMIN, "other-owner@acme.example", "fourth@acme.example"]


def test_a_waiting_invitation_is_revoked_from_the_team_page(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    owner_id = str(_user(runtime, OWNER).id)
    owner = _signed_in(runtime, OWNER)
    path = _invite_from_page(owner, "agent")
    with runtime.tenant_context("acme") as ctx:
        [invitation] = invitations.list_invitations(ctx)
    action = f"/team/invitations/{invitation.id}/revoke"
    assert f'action="{action}"' in owner.get("/team").text
    # Without the form's CSRF token nothing is done.
    assert owner.post(action, data={}).status_code == 403
    assert _browser(runtime).get(path).status_code == 200
    r = owner.post(action, data={"csrf_token": _csrf(owner)})
    assert r.status_code == 200 and "The invitation is revoked" in r.text
    assert "No invitations waiting." in r.text
    assert _accept(_browser(runtime), path, NEW_PASSWORD).startswith("404 ")
    assert _staff(runtime) == [OWNER]
    # Again: nothing more happens, and it is audited once, by user id.
    assert owner.post(action, data={"csrf_token": _csrf(owner)}).status_code == 200
    revoked = [(d, a) for e, d, a in _events(runtime) if e == "user.invitation_revoked"]
    assert revoked == [({"invitation_id": str(invitation.id), "role": "agent"}, owner_id)]


def test_the_users_api_revokes_a_waiting_invitation(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    client = api_client(runtime, make_api_token(runtime, tenant))
    r = client.post("/api/v1/users", json={"email": NEWCOMER, "role": "viewer"})
    waiting, path = r.json()["id"], r.json()["link"].removeprefix("http://127.0.0.1:8000")
    r = client.delete(f"/api/v1/users/invitations/{waiting}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None, r.text
    assert _accept(_browser(runtime), path, NEW_PASSWORD).startswith("404 ")
    # An accepted one is no longer the invitation's to take back: disable the user.
    r = client.post("/api/v1/users", json={"email": "second@acme.example", "role": "viewer"})
    accepted, path = r.json()["id"], r.json()["link"].removeprefix("http://127.0.0.1:8000")
    assert _accept(_browser(runtime), path, NEW_PASSWORD).startswith("200 ")
    r = client.delete(f"/api/v1/users/invitations/{accepted}")
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    # Only an owner revokes an invitation to be an owner; an API key never is one.
    owners = f"/invite/{_invite(runtime, 'third@acme.example', 'owner')}"
    with runtime.tenant_context("acme") as ctx:
        [for_owner] = invitations.list_invitations(ctx)
    assert client.delete(f"/api/v1/users/invitations/{for_owner.id}").status_code == 403
    reader = api_client(runtime, make_api_token(runtime, tenant, frozenset({Scope.AUDIT_READ})))
    assert reader.delete(f"/api/v1/users/invitations/{for_owner.id}").status_code == 403
    assert _browser(runtime).get(owners).status_code == 200


# ---------------------------------------------------------------------------------------------
# The rules


def test_only_an_owner_makes_an_owner(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, ADMIN, Role.ADMIN)
    make_user(runtime, tenant, AGENT, Role.AGENT)
    agent_id = str(_user(runtime, AGENT).id)
    admin = _signed_in(runtime, ADMIN)
    r = admin.post(
        "/team/invite", data={"email": NEWCOMER, "role": "owner", "csrf_token": _csrf(admin)}
    )
    assert r.status_code == 403 and "Only an owner may make an owner." in r.text
    assert 'role="alert" id="form-error"' in r.text and NEWCOMER in r.text  # typed, kept
    r = admin.post(f"/team/{agent_id}/role", data={"role": "owner", "csrf_token": _csrf(admin)})
    assert r.status_code == 403 and "Only an owner may make an owner." in r.text
    # Nor may an admin change or disable an owner.
    owner_id = str(_user(runtime, OWNER).id)
    r = admin.post(f"/team/{owner_id}/role", data={"role": "viewer", "csrf_token": _csrf(admin)})
    assert r.status_code == 403 and "only an owner may change an owner" in r.text.lower()
    r = admin.post(f"/team/{owner_id}/disable", data={"csrf_token": _csrf(admin)})
    assert r.status_code == 403
    # An admin may bring in anyone but an owner.
    r = admin.post(f"/team/{agent_id}/role", data={"role": "admin", "csrf_token": _csrf(admin)})
    assert r.status_code == 200 and "The role is changed." in r.text

    owner = _signed_in(runtime, OWNER)
    r = owner.post(
        f"/team/{agent_id}/role",
        data={"role": "owner", "csrf_token": _csrf(owner)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _user(runtime, AGENT).role == "owner" and _user(runtime, OWNER).role == "owner"


def test_an_api_key_never_makes_an_owner_nor_grants_more_than_it_holds(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, AGENT, Role.AGENT)
    agent_id = str(_user(runtime, AGENT).id)
    every = api_client(runtime, make_api_token(runtime, tenant))
    r = every.post("/api/v1/users", json={"email": NEWCOMER, "role": "owner"})
    assert r.status_code == 403 and r.json()["detail"] == "only an owner may make an owner"
    assert every.patch(f"/api/v1/users/{agent_id}", json={"role": "owner"}).status_code == 403
    owner_id = str(_user(runtime, OWNER).id)
    assert every.post(f"/api/v1/users/{owner_id}/disable").status_code == 403
    # A key holding only users:manage cannot bring in someone holding more.
    narrow = api_client(runtime, make_api_token(runtime, tenant, frozenset({Scope.USERS_MANAGE})))
    r = narrow.post("/api/v1/users", json={"email": NEWCOMER, "role": "admin"})
    assert r.status_code == 403 and "subjects:erase" in r.json()["detail"]
    assert narrow.patch(f"/api/v1/users/{agent_id}", json={"role": "viewer"}).status_code == 403
    with runtime.tenant_context("acme") as ctx:
        assert invitations.list_invitations(ctx) == []
    assert _user(runtime, AGENT).role == "agent"


def test_a_key_holding_only_users_manage_cannot_give_an_admin_back_every_permission(
    runtime: Runtime, tenant: str
) -> None:
    """The same key may not make an agent a viewer (it lacks a viewer's scopes), nor enable a
    disabled admin — every permission, granted by a key holding one — nor take them away."""
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, ADMIN, Role.ADMIN)
    make_user(runtime, tenant, AGENT, Role.AGENT)
    with runtime.tenant_context(tenant) as ctx:
        access.disable_user(ctx, access.user_by_email(ctx, ADMIN))
    narrow = api_client(runtime, make_api_token(runtime, tenant, frozenset({Scope.USERS_MANAGE})))
    admin_id = str(_user(runtime, ADMIN).id)
    r = narrow.post(f"/api/v1/users/{admin_id}/enable")
    assert r.status_code == 403 and "subjects:erase" in r.json()["detail"], r.text
    assert _user(runtime, ADMIN).disabled_at is not None
    agent_id = str(_user(runtime, AGENT).id)
    r = narrow.post(f"/api/v1/users/{agent_id}/disable")
    assert r.status_code == 403 and "disable a user with the role agent" in r.json()["detail"]
    assert _user(runtime, AGENT).disabled_at is None
    # A key holding a viewer's permissions too may not demote an admin to viewer.
    with runtime.tenant_context(tenant) as ctx:
        access.enable_user(ctx, access.user_by_email(ctx, ADMIN))
    wider = api_client(
        runtime,
        make_api_token(runtime, tenant, frozenset({Scope.USERS_MANAGE}) | ROLE_SCOPES[Role.VIEWER]),
    )
    r = wider.patch(f"/api/v1/users/{admin_id}", json={"role": "viewer"})
    assert r.status_code == 403 and "role admin" in r.json()["detail"], r.text
    assert _user(runtime, ADMIN).role == "admin"


def test_an_owner_demoted_meanwhile_does_not_act_as_one(runtime: Runtime, tenant: str) -> None:
    """PostgreSQL: one owner demotes another who, at that moment, makes someone an owner; the
    second waits for the demotion and finds itself an admin."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, "other-owner@acme.example", Role.OWNER)
    make_user(runtime, tenant, AGENT, Role.AGENT)
    owner_id = str(_user(runtime, OWNER).id)
    other_id = str(_user(runtime, "other-owner@acme.example").id)
    second: list[str] = []

    def other_owner() -> None:
        actor = Actor(ActorKind.USER, other_id)
        try:
            with runtime.tenant_context("acme", actor) as ctx:
                access.change_role(ctx, access.user_by_email(ctx, AGENT), "owner")
            second.append("made an owner")
        except Forbidden:
            second.append("refused")

    with runtime.tenant_context("acme", Actor(ActorKind.USER, owner_id)) as ctx:
        access.change_role(ctx, access.get_user(ctx, other_id), "admin")
        other = threading.Thread(target=other_owner)
        other.start()
        until_done_or_blocked(runtime, other, "the other owner")
    other.join()
    assert second == ["refused"]
    assert _user(runtime, AGENT).role == "agent"


def test_nobody_changes_their_own_role_or_disables_themselves(
    runtime: Runtime, tenant: str
) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, ADMIN, Role.ADMIN)
    admin_id = str(_user(runtime, ADMIN).id)
    admin = _signed_in(runtime, ADMIN)
    r = admin.post(f"/team/{admin_id}/role", data={"role": "viewer", "csrf_token": _csrf(admin)})
    assert r.status_code == 403 and "You cannot change your own role" in r.text
    r = admin.post(f"/team/{admin_id}/disable", data={"csrf_token": _csrf(admin)})
    assert r.status_code == 403 and "You cannot disable your own account" in r.text
    assert _user(runtime, ADMIN).role == "admin" and _user(runtime, ADMIN).disabled_at is None
    assert admin.get("/team").status_code == 200  # still signed in


def test_the_last_active_owner_is_never_demoted_or_disabled(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, "gone@acme.example", Role.OWNER)
    with runtime.tenant_context("acme") as ctx:
        access.disable_user(ctx, access.user_by_email(ctx, "gone@acme.example"))
    # A disabled owner does not count: the operator cannot take the last active one away.
    with runtime.tenant_context("acme") as ctx:
        last = access.user_by_email(ctx, OWNER)
        with pytest.raises(Conflict, match="last active owner"):
            access.change_role(ctx, last, "admin")
        with pytest.raises(Conflict, match="last active owner"):
            access.disable_user(ctx, last)
    assert _user(runtime, OWNER).role == "owner" and _user(runtime, OWNER).disabled_at is None
    # With the other owner back, the owner can demote that one, and be demoted by them.
    owner = _signed_in(runtime, OWNER)
    gone_id = str(_user(runtime, "gone@acme.example").id)
    r = owner.post(f"/team/{gone_id}/enable", data={"csrf_token": _csrf(owner)})
    assert r.status_code == 200 and "can sign in again" in r.text
    r = owner.post(f"/team/{gone_id}/role", data={"role": "admin", "csrf_token": _csrf(owner)})
    assert r.status_code == 200 and "The role is changed." in r.text
    # Now the owner is the last one: as an admin the other cannot take the role away.
    other = _signed_in(runtime, "gone@acme.example")
    owner_id = str(_user(runtime, OWNER).id)
    r = other.post(f"/team/{owner_id}/role", data={"role": "admin", "csrf_token": _csrf(other)})
    assert r.status_code == 403
    assert _user(runtime, OWNER).role == "owner"


def test_disabling_from_the_page_signs_the_user_out_at_once(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, AGENT, Role.AGENT)
    agent = _signed_in(runtime, AGENT)
    assert agent.get("/subjects", follow_redirects=False).status_code == 200
    owner = _signed_in(runtime, OWNER)
    agent_id = str(_user(runtime, AGENT).id)
    r = owner.post(f"/team/{agent_id}/disable", data={"csrf_token": _csrf(owner)})
    assert r.status_code == 200 and "disabled and signed out everywhere" in r.text
    assert agent.get("/subjects", follow_redirects=False).status_code == 303
    r = owner.post(f"/team/{agent_id}/enable", data={"csrf_token": _csrf(owner)})
    assert r.status_code == 200
    _signed_in(runtime, AGENT)  # signs in again


def test_a_demoted_user_loses_the_permissions_at_once(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, ADMIN, Role.ADMIN)
    admin = _signed_in(runtime, ADMIN)
    assert admin.get("/team").status_code == 200
    owner = _signed_in(runtime, OWNER)
    admin_id = str(_user(runtime, ADMIN).id)
    owner.post(f"/team/{admin_id}/role", data={"role": "viewer", "csrf_token": _csrf(owner)})
    assert admin.get("/team").status_code == 403
    assert '<a href="/team"' not in admin.get("/").text


def test_the_team_page_and_link_need_users_manage(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, "officer@acme.example", Role.PRIVACY_OFFICER)
    officer = _signed_in(runtime, "officer@acme.example")
    assert '<a href="/team"' not in officer.get("/").text
    assert officer.get("/team").status_code == 403
    owner_id = str(_user(runtime, OWNER).id)
    r = officer.post(f"/team/{owner_id}/disable", data={"csrf_token": _csrf(officer)})
    assert r.status_code == 403
    r = officer.post(
        "/team/invite", data={"email": NEWCOMER, "role": "viewer", "csrf_token": _csrf(officer)}
    )
    assert r.status_code == 403
    # Without the form's CSRF token nothing is done, even for an owner.
    owner = _signed_in(runtime, OWNER)
    r = owner.post("/team/invite", data={"email": NEWCOMER, "role": "viewer"})
    assert r.status_code == 403
    with runtime.tenant_context("acme") as ctx:
        assert invitations.list_invitations(ctx) == []
    assert _user(runtime, OWNER).disabled_at is None


# ---------------------------------------------------------------------------------------------
# The API


def test_the_users_api(runtime: Runtime, tenant: str) -> None:
    make_user(runtime, tenant, OWNER, Role.OWNER)
    make_user(runtime, tenant, AGENT, Role.AGENT)
    client = api_client(runtime, make_api_token(runtime, tenant))
    r = client.get("/api/v1/users")
    assert r.status_code == 200
    assert [(u["email"], u["role"], u["second_factor"]) for u in r.json()] == [
        (OWNER, "owner", False),
        (AGENT, "agent", False),
    ]
    r = client.post("/api/v1/users", json={"email": NEWCOMER, "role": "viewer"})
    assert r.status_code == 201, r.text
    link = r.json()["link"]
    assert link.startswith("http://127.0.0.1:8000/invite/") and r.json()["role"] == "viewer"
    path = link.removeprefix("http://127.0.0.1:8000")
    assert _accept(_browser(runtime), path, NEW_PASSWORD).startswith("200 ")
    agent_id = str(_user(runtime, AGENT).id)
    r = client.patch(f"/api/v1/users/{agent_id}", json={"role": "privacy_officer"})
    assert r.status_code == 200 and r.json()["role"] == "privacy_officer"
    r = client.post(f"/api/v1/users/{agent_id}/disable")
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    r = client.post(f"/api/v1/users/{agent_id}/enable")
    assert r.status_code == 200 and r.json()["disabled_at"] is None
    r = client.patch(f"/api/v1/users/{agent_id}", json={"role": "god"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = client.post("/api/v1/users", json={"email": "not an address", "role": "viewer"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    # An API key is not a user: the audit log names it as the actor.
    actors = {(e, a) for e, _, a in _events(runtime) if e == "user.role_changed"}
    assert len(actors) == 1
    reader = api_client(runtime, make_api_token(runtime, tenant, frozenset({Scope.AUDIT_READ})))
    assert reader.get("/api/v1/users").status_code == 403


def test_an_invitation_is_for_its_own_tenant(runtime: Runtime, tenant: str) -> None:
    make_tenant(runtime, "other")
    token = _invite(runtime)
    assert _accept(_browser(runtime), f"/invite/{token}", NEW_PASSWORD).startswith("200 ")
    with runtime.tenant_context("other") as ctx:
        assert access.list_users(ctx) == []
    # The tenant in the link is the invitation's: another tenant's id with it finds nothing.
    with runtime.tenant_context("other") as ctx:
        other_hex = ctx.tenant_id.hex
    again = _invite(runtime, "second@acme.example")
    forged = ".".join([other_hex, *again.split(".")[1:]])
    assert _browser(runtime).get(f"/invite/{forged}").status_code == 404
    with runtime.tenant_context("acme") as ctx:
        assert len(invitations.list_invitations(ctx)) == 1


def test_a_link_opened_in_two_tabs_at_once_makes_one_account(runtime: Runtime, tenant: str) -> None:
    """PostgreSQL: the second tab's claim waits for the first's, then finds the link used."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    token = _invite(runtime)
    second: list[str] = []

    def other_tab() -> None:
        try:
            with transaction(runtime.sessions) as session:
                invitations.accept_invitation(
                    session, runtime.keystore, token, "the other password"
                )
            second.append("accepted")
        except invitations.InvitationInvalid:
            second.append("invalid")

    with transaction(runtime.sessions) as session:
        invitations.accept_invitation(session, runtime.keystore, token, NEW_PASSWORD)
        tab = threading.Thread(target=other_tab)
        tab.start()
        until_done_or_blocked(runtime, tab, "the second tab")
    tab.join()
    assert second == ["invalid"]
    _signed_in(runtime, NEWCOMER, NEW_PASSWORD)  # the first tab's password is the one
