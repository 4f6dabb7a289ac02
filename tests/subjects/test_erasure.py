"""Erasure by crypto-shredding reaches the backups; data under a legal duty survives."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pledge.crypto.keystore import KeyShredded, SubjectKey
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading, service
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Interaction, SubjectIdentity, SubjectRecord
from pledge.subjects.service import FieldInput
from tests.conftest import Backend, backup_data_store

WHEN = "2026-02-01T09:00:00+00:00"


def _person(email: str) -> list[FieldInput]:
    return [
        FieldInput("email", email),
        FieldInput("first_name", email.split("@")[0].title(), "user.name.first"),
        FieldInput(
            "invoice_address", "1 Billing Street", "user.contact.address", "direct", "billing"
        ),
    ]


def _populate(runtime: Runtime, tenant: str) -> tuple[uuid.UUID, uuid.UUID]:
    from datetime import datetime

    with runtime.tenant_context(tenant) as ctx:
        erased = service.create_subject(ctx, _person("gone@example.com"))
        kept = service.create_subject(ctx, _person("stays@example.com"))
        for sid in (erased, kept):
            service.add_interaction(
                ctx,
                sid,
                kind="call",
                occurred_at=datetime.fromisoformat(WHEN),
                category="user.content.private",
                payload={"summary": "asked about the invoice"},
            )
            service.add_interaction(
                ctx,
                sid,
                kind="order",
                occurred_at=datetime.fromisoformat(WHEN),
                category="user.behavior.purchase_history",
                payload={"invoice": "INV-7"},
                retention_class="billing",
            )
    return erased, kept


def _open_copy(runtime: Runtime, url: str) -> Runtime:
    """The backup, opened with the *live* keystore and master key."""
    return Runtime.open(runtime.settings.model_copy(update={"database_url": url}))


def test_a_backup_taken_before_erasure_cannot_be_read_for_that_subject(
    runtime: Runtime, backend: Backend, tenant: str
) -> None:
    erased, kept = _populate(runtime, tenant)
    backup_url = backup_data_store(backend, "backup_full")

    with runtime.tenant_context(tenant) as ctx:
        result = erasure.erase_subject(ctx, erased)
    assert result.status == "erased"
    assert result.shredded_classes == ["billing", "standard"]

    copy = _open_copy(runtime, backup_url)
    try:
        with copy.tenant_context(tenant) as ctx:
            # The backup still holds the erased subject's rows…
            stale = reading.read_subject(ctx, erased, interactions=10, audited=False)
            assert sorted(stale.unreadable_classes) == ["billing", "standard"]
            assert stale.fields == []
            assert all(i.payload is None for i in stale.interactions)
            with pytest.raises(KeyShredded):
                copy.keystore.subject_key(ctx.tenant_id, stale.id, "standard")
            # …and every other subject in it is as readable as ever.
            other = reading.read_subject(ctx, kept, interactions=10, audited=False)
            assert other.value("email") == "stays@example.com"
            assert {
                (i.payload or {})["invoice"] for i in other.interactions if i.kind == "order"
            } == {"INV-7"}
    finally:
        copy.close()


def test_partial_erasure_keeps_only_the_exempt_class(
    runtime: Runtime, backend: Backend, tenant: str
) -> None:
    erased, _kept = _populate(runtime, tenant)
    backup_url = backup_data_store(backend, "backup_partial")
    with runtime.tenant_context(tenant) as ctx:
        result = erasure.erase_subject(ctx, erased, keep_classes=["billing"])
    assert (result.status, result.shredded_classes, result.kept_classes) == (
        "partially_erased",
        ["standard"],
        ["billing"],
    )
    with runtime.tenant_context(tenant) as ctx:
        live = reading.read_subject(ctx, erased, interactions=10)
        assert [(f.name, f.retention_class) for f in live.fields] == [
            ("invoice_address", "billing")
        ]
        assert [i.kind for i in live.interactions] == ["order"]
        # Nobody can look the person up any more.
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "gone@example.com") is None
    copy = _open_copy(runtime, backup_url)
    try:
        with copy.tenant_context(tenant) as ctx:
            stale = reading.read_subject(ctx, erased, interactions=10, audited=False)
            assert [f.name for f in stale.fields] == ["invoice_address"]
            assert stale.unreadable_classes == ["standard"]
            assert {i.kind for i in stale.interactions if i.payload is not None} == {"order"}
    finally:
        copy.close()


def test_erasure_deletes_the_rows_and_is_idempotent(runtime: Runtime, tenant: str) -> None:
    erased, kept = _populate(runtime, tenant)
    for _ in range(2):
        with runtime.tenant_context(tenant) as ctx:
            erasure.erase_subject(ctx, erased)
    with runtime.tenant_context(tenant) as ctx:
        for model in (SubjectRecord, SubjectIdentity, Interaction):
            n = ctx.session.scalar(
                select(func.count()).select_from(model).where(model.subject_id == erased)
            )
            assert n == 0, model.__tablename__
        view = reading.read_subject(ctx, erased)
        assert view.status == "erased" and view.fields == []
        assert reading.read_subject(ctx, kept).value("email") == "stays@example.com"


def test_shredded_key_bytes_are_gone_from_the_keystore_files(
    runtime: Runtime, backend: Backend, tenant: str
) -> None:
    erased, _ = _populate(runtime, tenant)
    with runtime.keystore._sessions() as s:  # the wrapped keys as stored, before shredding
        wrapped = s.scalars(select(SubjectKey.wrapped).where(SubjectKey.subject_id == erased)).all()
    assert len(wrapped) == 2
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, erased)
    runtime.close()
    backend.release()
    files = [p for p in Path(backend.home).iterdir() if p.name.startswith("keystore.db")]
    assert files
    for path in files:
        content = path.read_bytes()
        for blob in wrapped:
            assert blob not in content, f"a shredded key is still in {path.name}"


def test_an_erased_subject_takes_no_new_data(runtime: Runtime, tenant: str) -> None:
    from pledge.core.errors import SubjectErased

    erased, _ = _populate(runtime, tenant)
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, erased)
    with pytest.raises(SubjectErased), runtime.tenant_context(tenant) as ctx:
        service.rectify_field(ctx, erased, FieldInput("first_name", "Zombie", "user.name.first"))


def test_keys_read_before_an_erasure_in_the_same_transaction_are_not_used_after_it(
    runtime: Runtime, tenant: str
) -> None:
    # The context keeps the data keys it reads for the rest of its transaction (a request's
    # bundle, files and letters all need them): the erasure must take them from it too.
    erased, kept = _populate(runtime, tenant)
    with runtime.tenant_context(tenant) as ctx:
        assert reading.read_subject(ctx, erased).value("first_name") == "Gone"
        assert {c for _s, c in ctx.subject_keys([(erased, "standard"), (erased, "billing")])} == {
            "standard",
            "billing",
        }
        erasure.erase_subject(ctx, erased, keep_classes=["billing"])
        with pytest.raises(KeyShredded):
            ctx.subject_key(erased, "standard")
        assert list(ctx.subject_keys([(erased, "standard"), (erased, "billing")])) == [
            (erased, "billing")
        ]
        view = reading.read_subject(ctx, erased, interactions=10)
        assert [i.kind for i in view.interactions] == ["order"]
        assert reading.read_subject(ctx, kept).value("first_name") == "Stays"
