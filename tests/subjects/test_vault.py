"""The subject vault: fields with categories and sources, identities, interactions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from pledge.audit.models import AuditEntry
from pledge.core.errors import Conflict, InvalidInput
from pledge.crypto.aead import DecryptionFailed
from pledge.runtime import Runtime
from pledge.subjects import reading, service
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import SubjectRecord
from pledge.subjects.service import FieldInput

ALICE = [
    FieldInput("email", "Alice.Smith@Example.com"),
    FieldInput("phone", "07700 900123"),
    FieldInput("first_name", "Alice", "user.name.first"),
    FieldInput("company", "Smith & Daughters", "user.contact.organization", "third_party"),
    FieldInput("card_last4", "4242", "user.financial.credit_card", "direct", "billing"),
]


def test_a_subject_keeps_each_field_with_its_category_source_and_class(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(ctx, ALICE)
    with runtime.tenant_context(tenant) as ctx:
        view = reading.read_subject(ctx, sid)
    fields = {f.name: f for f in view.fields}
    assert fields["email"].value == "alice.smith@example.com"  # normal form
    assert fields["email"].category == "user.contact.email"  # implied for identities
    assert fields["phone"].value == "+447700900123"  # E.164, tenant's phone region GB
    assert fields["company"].source == "third_party"
    assert fields["card_last4"].retention_class == "billing"
    assert fields["card_last4"].category == "user.financial.credit_card"


def test_lookup_by_email_ignores_case_and_spacing_and_uses_no_plaintext(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(ctx, ALICE)
    with runtime.tenant_context(tenant) as ctx:
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "  ALICE.smith@example.COM ") == sid
        assert reading.find_subject_id(ctx, IdentityKind.PHONE, "+44 7700 900123") == sid
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "bob@example.com") is None


def test_the_same_identity_cannot_belong_to_two_subjects(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, ALICE)
    with pytest.raises(Conflict), runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, [FieldInput("email", "alice.smith@EXAMPLE.com")])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([FieldInput("first_name", "A", "user.name.first")], "at least one identity"),
        ([FieldInput("email", "not an address")], "not a valid e-mail"),
        ([FieldInput("email", "a@example.com"), FieldInput("x", "1")], "needs a data category"),
        (
            [FieldInput("email", "a@example.com"), FieldInput("x", "1", "user.made_up")],
            "Fides taxonomy",
        ),
        (
            [FieldInput("email", "a@example.com"), FieldInput("x", "1", "user.name", "gossip")],
            "source",
        ),
        (
            [
                FieldInput("email", "a@example.com"),
                FieldInput("x", "1", "user.name", "direct", "forever"),
            ],
            "retention class",
        ),
        (
            [FieldInput("email", "a@example.com"), FieldInput("Bad Name", "1", "user.name")],
            "field name",
        ),
    ],
)
def test_bad_fields_are_refused_with_a_reason(
    runtime: Runtime, tenant: str, fields: list[FieldInput], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message), runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, fields)
    with runtime.tenant_context(tenant) as ctx:
        assert reading.count_subjects(ctx) == {}  # nothing half-written


def test_a_custom_category_may_extend_the_taxonomy(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(
            ctx,
            [
                FieldInput("email", "a@example.com"),
                FieldInput("vat", "GB1", "user.financial.vat_number"),
            ],
        )
        assert reading.read_subject(ctx, sid).value("vat") == "GB1"


def test_rectification_replaces_the_value_and_keeps_no_old_copy(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(ctx, ALICE)
    with runtime.tenant_context(tenant) as ctx:
        service.rectify_field(
            ctx, sid, FieldInput("company", "Smith Holdings", "user.contact.organization")
        )
        service.rectify_field(ctx, sid, FieldInput("email", "alice@new.example"))
    with runtime.tenant_context(tenant) as ctx:
        export = reading.export_subject(ctx, sid)
        values = [f["value"] for f in export["fields"]]
        assert "Smith Holdings" in values and "Smith & Daughters" not in values
        # The old e-mail no longer finds her; the new one does.
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "alice.smith@example.com") is None
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "alice@new.example") == sid
        events = ctx.session.scalars(
            select(AuditEntry.details).where(AuditEntry.event == "subject.field_rectified")
        ).all()
        assert [e["field"] for e in events] == ["company", "email"]
        assert all("Smith" not in str(e) for e in events)  # the trail names fields, not values


def test_a_field_moved_to_another_retention_class_lives_in_one_class_only(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(ctx, ALICE)
        service.rectify_field(
            ctx,
            sid,
            FieldInput(
                "company", "Smith & Daughters", "user.contact.organization", "direct", "billing"
            ),
        )
        fields = [f for f in reading.read_subject(ctx, sid).fields if f.name == "company"]
    assert [(f.retention_class, f.value) for f in fields] == [("billing", "Smith & Daughters")]


def test_interactions_are_sealed_listed_and_exported(runtime: Runtime, tenant: str) -> None:
    when = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(ctx, ALICE)
        service.add_interaction(
            ctx,
            sid,
            kind="chat",
            occurred_at=when,
            category="user.content.private",
            payload={"transcript": "I need help with my invoice"},
        )
        service.add_interaction(
            ctx,
            sid,
            kind="order",
            occurred_at=when,
            category="user.behavior.purchase_history",
            payload={"order": "INV-1", "amount": "99.00"},
            retention_class="billing",
        )
    with runtime.tenant_context(tenant) as ctx:
        items = reading.read_interactions(ctx, sid, limit=10)
        export = reading.export_subject(ctx, sid)
    assert {i.kind for i in items} == {"chat", "order"}
    assert {i["payload"].get("transcript") for i in export["interactions"]} >= {
        "I need help with my invoice"
    }
    with pytest.raises(InvalidInput, match="time zone"), runtime.tenant_context(tenant) as ctx:
        service.add_interaction(
            ctx,
            sid,
            kind="note",
            occurred_at=datetime(2026, 1, 1),
            category="user.content",
            payload={},
        )


def test_a_ciphertext_moved_to_another_subject_does_not_open(runtime: Runtime, tenant: str) -> None:
    """AES-GCM associated data binds each record to its tenant, subject and class."""
    with runtime.tenant_context(tenant) as ctx:
        alice = service.create_subject(ctx, ALICE)
        bob = service.create_subject(ctx, [FieldInput("email", "bob@example.com")])
    with runtime.tenant_context(tenant) as ctx:
        sealed = ctx.session.scalar(
            select(SubjectRecord.sealed).where(
                SubjectRecord.subject_id == alice, SubjectRecord.key_class == "standard"
            )
        )
        ctx.session.execute(
            update(SubjectRecord).where(SubjectRecord.subject_id == bob).values(sealed=sealed)
        )
        with pytest.raises(DecryptionFailed):
            reading.read_subject(ctx, bob)
        ctx.session.rollback()


def test_reads_are_audited_by_subject_id(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = service.create_subject(ctx, ALICE)
    with runtime.tenant_context(tenant) as ctx:
        reading.read_subject(ctx, sid)
        reading.export_subject(ctx, sid)
        rows = ctx.session.execute(
            select(AuditEntry.event, AuditEntry.subject_id).order_by(AuditEntry.seq)
        ).all()
    assert [(e, s) for e, s in rows if s == sid] == [
        ("subject.created", sid),
        ("subject.viewed", sid),
        ("subject.exported", sid),
    ]
