"""Each read of personal data and each key created leaves its entry in the tenant's audit log:
the event, who did it and which subjects, by id — never a personal value (issue 2, §5)."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.audit.models import AuditEntry
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app
from tests.cli.test_cli import run
from tests.conftest import api_client, login, make_api_token, make_user

EMAIL = "rosalind.quill@example.com"
FIRST = "Rosalind"
LAST = "Quillfeather"
PHONE = "+447700900461"
PLAINTEXT = (EMAIL, FIRST, LAST, PHONE, "rosalind", "quill")
OTHER_EMAIL = "hal.brisk@example.com"
STAFF = "staff@acme.example"


def _seed(runtime: Runtime, tenant: str) -> tuple[uuid.UUID, uuid.UUID]:
    with runtime.tenant_context(tenant) as ctx:
        one = subjects.create_subject(
            ctx,
            [
                FieldInput("email", EMAIL),
                FieldInput("phone", PHONE),
                FieldInput("first_name", FIRST, "user.name.first"),
                FieldInput("last_name", LAST, "user.name.last"),
            ],
        )
        two = subjects.create_subject(ctx, [FieldInput("email", OTHER_EMAIL)])
    return one, two


def _last_seq(runtime: Runtime, tenant: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        return max(ctx.session.scalars(select(AuditEntry.seq)))


def _entries_after(runtime: Runtime, tenant: str, seq: int) -> list[AuditEntry]:
    """The entries written since `seq`, with nothing in them a plaintext value."""
    with runtime.tenant_context(tenant) as ctx:
        rows = list(
            ctx.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq > seq)
                .order_by(AuditEntry.seq)
            )
        )
        ctx.session.expunge_all()
    text = repr([(e.event, e.actor_id, e.subject_id, e.details) for e in rows]).lower()
    for value in (*PLAINTEXT, OTHER_EMAIL):
        assert value.lower() not in text, f"{value!r} in the audit log"
    return rows


def _events(rows: list[AuditEntry], event: str) -> list[AuditEntry]:
    return [e for e in rows if e.event == event]


def test_the_cli_export_is_audited_by_subject_id(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    sid, _ = _seed(runtime, tenant)
    before = _last_seq(runtime, tenant)
    code, out = run("subjects", "export", "-t", tenant, "--email", EMAIL)
    assert code == 0 and FIRST in out  # the record itself, decrypted, went to stdout
    exported = _events(_entries_after(runtime, tenant, before), "subject.exported")
    assert [(e.subject_id, e.actor_kind) for e in exported] == [(sid, "operator")]
    assert exported[0].details == {"fields": 4, "interactions": 0}
    # A look-up that finds nobody exports nothing and records no export.
    before = _last_seq(runtime, tenant)
    code, _out = run("subjects", "export", "-t", tenant, "--email", "nobody@example.com")
    assert code == 1
    assert _events(_entries_after(runtime, tenant, before), "subject.exported") == []


def test_a_key_created_on_the_cli_is_audited_without_its_secret(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    before = _last_seq(runtime, tenant)
    code, out = run(
        "apikey", "create", "-t", tenant, "--scope", "subjects:read", "--name", "crm sync"
    )
    assert code == 0
    token = out.split()[-1]
    _prefix, _tenant, key_id, secret = token.split("_", 3)
    created = _events(_entries_after(runtime, tenant, before), "api_key.created")
    assert len(created) == 1
    entry = created[0]
    assert entry.actor_kind == "operator"
    assert entry.details == {
        "api_key_id": str(uuid.UUID(key_id)),
        "name": "crm sync",
        "scopes": ["subjects:read"],
    }
    assert secret not in repr(entry.details) and token not in repr(entry.details)


def test_api_search_is_audited_and_the_list_shows_no_personal_value(
    runtime: Runtime, tenant: str
) -> None:
    sid, other = _seed(runtime, tenant)
    client = api_client(runtime, make_api_token(runtime, tenant))
    before = _last_seq(runtime, tenant)
    r = client.post("/api/v1/subjects/search", json={"email": EMAIL.upper()})
    assert r.status_code == 200 and [s["id"] for s in r.json()["items"]] == [str(sid)]
    r = client.post("/api/v1/subjects/search", json={"phone": PHONE})
    assert r.status_code == 200 and [s["id"] for s in r.json()["items"]] == [str(sid)]
    listed = _events(_entries_after(runtime, tenant, before), "subjects.listed")
    assert [e.actor_kind for e in listed] == ["api_key", "api_key"]
    assert [e.details for e in listed] == [
        {"via": "api_search", "count": 1, "subject_ids": [str(sid)]}
    ] * 2
    # The API's list gives ids, status and times only: no personal value is read to answer it.
    r = client.get("/api/v1/subjects")
    assert r.status_code == 200
    assert {s["id"] for s in r.json()["items"]} == {str(sid), str(other)}
    assert not any(value.lower() in r.text.lower() for value in PLAINTEXT)


def test_the_subjects_pages_audit_each_listing_search_and_view(
    runtime: Runtime, tenant: str
) -> None:
    sid, other = _seed(runtime, tenant)
    make_user(runtime, tenant, STAFF)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    before = _last_seq(runtime, tenant)
    csrf = login(client, tenant, STAFF)
    signed_in = _entries_after(runtime, tenant, before)
    assert [e.event for e in signed_in] == ["user.login"]
    staff_id = signed_in[0].actor_id
    assert staff_id is not None

    before = _last_seq(runtime, tenant)
    page = client.get("/subjects")
    assert page.status_code == 200 and FIRST in page.text
    r = client.post("/subjects/search", data={"email": EMAIL, "csrf_token": csrf})
    assert r.status_code == 200 and FIRST in r.text and OTHER_EMAIL not in r.text
    r = client.get(f"/subjects/{sid}")
    assert r.status_code == 200 and LAST in r.text
    rows = _entries_after(runtime, tenant, before)
    assert {(e.actor_kind, e.actor_id) for e in rows} == {("user", staff_id)}
    listed = _events(rows, "subjects.listed")
    assert [e.details for e in listed] == [
        {"via": "page_list", "count": 2, "subject_ids": [str(sid), str(other)]},
        {"via": "page_search", "count": 1, "subject_ids": [str(sid)]},
    ]
    assert [e.subject_id for e in _events(rows, "subject.viewed")] == [sid]
