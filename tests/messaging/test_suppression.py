"""The suppression list: an address that said no to marketing stays off the lists after its
person is erased, without keeping the address (docs/decisions/0008)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text
from typer.testing import CliRunner

from pledge.audit.models import AuditEntry
from pledge.cli.main import app
from pledge.consent import service as consent
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.preferences import service as preferences
from pledge.preferences import suppression
from pledge.preferences.models import Suppression
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput
from tests.conftest import api_client, make_api_token
from tests.messaging.conftest import anonymous, subscribe

EMAIL = "Nora.Nobody@Example.com"


def _unsubscribe_and_erase(runtime: Runtime, tenant: str) -> None:
    sid = subscribe(runtime, tenant, EMAIL)
    with runtime.tenant_context(tenant) as ctx:
        from pledge.preferences import tokens

        url = tokens.issue_token(ctx, sid, "email", "newsletter")
    assert anonymous(runtime).post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, sid)


def test_erasure_keeps_only_a_keyed_hash_of_an_unsubscribed_address(
    runtime: Runtime, clik_tenant: str
) -> None:
    _unsubscribe_and_erase(runtime, clik_tenant)
    with runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM suppressions")).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert set(row) == {"tenant_id", "kind", "blind_index", "channel", "reason", "created_at"}
    assert (row["kind"], row["channel"], row["reason"]) == (
        "email",
        "email",
        "opted_out_then_erased",
    )
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert EMAIL.lower().encode() not in raw and b"nora" not in raw.lower()
    with runtime.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "suppression.added")).one()
        assert entry.details["via"] == "erasure" and entry.details["channels"] == ["email"]
    with runtime.tenant_context(clik_tenant) as ctx:
        # The same address in any spelling is found; the erased person is not.
        assert suppression.suppressed_channels(ctx, "email", " nora.nobody@example.COM ") == [
            "email"
        ]
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL) is None


def test_a_re_imported_address_gets_no_marketing_but_service_messages(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _unsubscribe_and_erase(runtime, clik_tenant)
    # A later import (a purchased list, an old CRM export) brings the address back…
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(f"email,first_name\n{EMAIL},Nora\n")
    result = CliRunner().invoke(app, ["subjects", "import", "-t", clik_tenant, str(csv_path)])
    assert result.exit_code == 0, result.output
    with runtime.tenant_context(clik_tenant) as ctx:
        again = reading.require_subject(ctx, IdentityKind.EMAIL, EMAIL)
        consent.add_relationship(ctx, again, "product-marketing")
        consent.add_relationship(ctx, again, "provide-service")
    with runtime.tenant_context(clik_tenant) as ctx:
        # …and the gate still says no to marketing, yes to the service.
        marketing = gate.may(ctx, again, "product-marketing", "email", topic="product-news")
        assert marketing.reasons == [Reason.SUPPRESSED]
        assert gate.may(ctx, again, "product-marketing", "post").allowed  # no e-mail involved
        assert gate.may(ctx, again, "provide-service", "email", topic="account").allowed
        assert gate_audience.audience(ctx, "product-marketing", "email").allowed == []
        assert gate_audience.audience(ctx, "provide-service", "email").allowed == [again]


def test_an_api_create_of_the_address_is_suppressed_too(runtime: Runtime, clik_tenant: str) -> None:
    _unsubscribe_and_erase(runtime, clik_tenant)
    client = api_client(runtime, make_api_token(runtime, clik_tenant))
    r = client.post("/api/v1/subjects", json={"fields": [{"name": "email", "value": EMAIL}]})
    assert r.status_code == 201
    with runtime.tenant_context(clik_tenant) as ctx:
        consent.add_relationship(ctx, r.json()["id"], "product-marketing")
    r = client.post(
        "/api/v1/gate/check",
        json={"subject_id": r.json()["id"], "purpose": "product-marketing", "channel": "email"},
    )
    assert r.status_code == 200 and r.json()["reasons"] == ["suppressed"], r.text


def test_erasing_someone_who_never_said_no_keeps_nothing(
    runtime: Runtime, clik_tenant: str
) -> None:
    sid = subscribe(runtime, clik_tenant, "happy@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        erasure.erase_subject(ctx, sid)
        assert suppression.list_suppressions(ctx) == []


def test_only_the_channels_that_were_refused(runtime: Runtime, clik_tenant: str) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = subjects.create_subject(
            ctx, [FieldInput("email", "pat@example.com"), FieldInput("phone", "07700 900123")]
        )
        preferences.opt_out(ctx, sid, "sms", "*", "api")
        erasure.erase_subject(ctx, sid)
    with runtime.tenant_context(clik_tenant) as ctx:
        assert suppression.suppressed_channels(ctx, "phone", "+44 7700 900123") == ["sms"]
        assert suppression.suppressed_channels(ctx, "email", "pat@example.com") == []


def test_manual_entries_through_the_api(runtime: Runtime, clik_tenant: str) -> None:
    client = api_client(runtime, make_api_token(runtime, clik_tenant))
    r = client.post("/api/v1/suppressions", json={"email": EMAIL, "reason": "complaint"})
    assert r.status_code == 201 and r.json() == {"entries": 1}
    assert client.post("/api/v1/suppressions", json={"email": EMAIL}).json() == {"entries": 0}
    r = client.post("/api/v1/suppressions", json={"phone": "+447700900555"})
    assert r.json() == {"entries": 2}  # text messages and calls
    listed = client.get("/api/v1/suppressions")
    assert listed.status_code == 200 and EMAIL.lower() not in listed.text.lower()
    assert sorted((e["kind"], e["channel"]) for e in listed.json()) == [
        ("email", "email"),
        ("phone", "phone"),
        ("phone", "sms"),
    ]
    check = client.post("/api/v1/suppressions/check", json={"email": EMAIL.upper()})
    assert check.json() == {"suppressed": True, "channels": ["email"]}
    bad = client.post("/api/v1/suppressions", json={"email": EMAIL, "phone": "+447700900555"})
    assert bad.status_code == 422
    bad = client.post("/api/v1/suppressions", json={"email": EMAIL, "channels": ["sms"]})
    assert bad.status_code == 422
    r = client.post("/api/v1/suppressions/remove", json={"email": EMAIL})
    assert r.json() == {"entries": 1}
    check = client.post("/api/v1/suppressions/check", json={"email": EMAIL})
    assert check.json() == {"suppressed": False, "channels": []}
    with runtime.sessions() as s:
        events = [
            e.event
            for e in s.scalars(
                select(AuditEntry)
                .where(AuditEntry.event.like("suppression.%"))
                .order_by(AuditEntry.seq)
            )
        ]
        details = [
            e.details
            for e in s.scalars(select(AuditEntry).where(AuditEntry.event.like("suppression.%")))
        ]
    assert events == ["suppression.added", "suppression.added", "suppression.removed"]
    assert EMAIL.lower() not in str(details).lower()


def test_manual_entries_through_the_cli(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str]
) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["preferences", "suppress", "-t", clik_tenant, "--email", EMAIL])
    assert r.exit_code == 0 and "1 suppression entry added" in r.output, r.output
    r = runner.invoke(app, ["preferences", "suppressions", "-t", clik_tenant])
    assert r.exit_code == 0 and "manual" in r.output and "nora" not in r.output.lower()
    r = runner.invoke(app, ["preferences", "unsuppress", "-t", clik_tenant, "--email", EMAIL])
    assert r.exit_code == 0 and "1 suppression entry removed" in r.output
    r = runner.invoke(app, ["preferences", "suppress", "-t", clik_tenant])
    assert r.exit_code == 1 and "exactly one of" in r.output
    with runtime.sessions() as s:
        assert s.scalars(select(Suppression)).all() == []
