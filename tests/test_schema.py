"""The schema: built by the migrations, equal to the models, ready to be distributed by tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, select

from pledge.core.db import make_engine
from pledge.crypto.keystore import KeystoreBase
from pledge.migrations import upgrade
from pledge.schema import Base
from pledge.subjects.models import Subject
from pledge.tenants.models import Tenant
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import Backend, _create_pg_database, _pg_admin_url, _pg_name

GLOBAL_TABLES = {"tenants"}


def test_every_tenant_table_leads_its_primary_key_with_tenant_id() -> None:
    tables = [t for t in Base.metadata.sorted_tables if t.name not in GLOBAL_TABLES]
    assert tables, "no tables found"
    for table in tables:
        assert "tenant_id" in table.columns, f"{table.name} has no tenant_id"
        pk = [c.name for c in table.primary_key.columns]
        assert pk[0] == "tenant_id", f"{table.name}: primary key {pk} does not start with tenant_id"


def test_every_foreign_key_carries_tenant_id() -> None:
    for table in Base.metadata.sorted_tables:
        if table.name in GLOBAL_TABLES:
            continue
        for fk in table.foreign_key_constraints:
            local = [c.name for c in fk.columns]
            remote = [e.column.name for e in fk.elements]
            assert "tenant_id" in local, f"{table.name}: foreign key {local} lacks tenant_id"
            # tenant_id must point at tenant_id (or at tenants.id), never at another column.
            pairs = dict(zip(local, remote, strict=True))
            assert pairs["tenant_id"] in {"tenant_id", "id"}, f"{table.name}: {pairs}"
            if fk.referred_table.name != "tenants":
                assert pairs["tenant_id"] == "tenant_id", f"{table.name}: {pairs}"


def test_keystore_tables_are_keyed_by_tenant_too() -> None:
    for table in KeystoreBase.metadata.sorted_tables:
        assert next(c.name for c in table.primary_key.columns) == "tenant_id", table.name


def test_migrations_build_exactly_the_models(backend: Backend) -> None:
    for engine, metadata, version_table in (
        (backend.data_engine, Base.metadata, "alembic_version"),
        (backend.keys_engine, KeystoreBase.metadata, "alembic_version_keystore"),
    ):
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": version_table}
            )
            diff = compare_metadata(ctx, metadata)
        assert diff == [], f"models and migrations disagree on {engine.dialect.name}: {diff}"


def insert_old_tenant(conn: Connection, old: MetaData, tenant_id: object, now: datetime) -> None:
    """A tenant row "old" as the first revision's table holds it (`old`: the reflected schema;
    `tenant_id` as that database stores ids), for tests of migrations over existing data."""
    conn.execute(
        old.tables["tenants"]
        .insert()
        .values(
            id=tenant_id,
            slug="old",
            name="Old Ltd",
            jurisdictions=[],
            region="EU",
            phone_region="GB",
            require_totp=False,
            retention_classes={},
            created_at=now,
        )
    )


def test_migrations_upgrade_a_populated_database(backend: Backend, tmp_path: Path) -> None:
    """Every migration runs on a database that already holds data (the first revision's
    rows survive, new columns get their defaults)."""
    if backend.kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = _create_pg_database(_pg_admin_url() or "", _pg_name("pledge_upgrade_test"))
    engine = make_engine(url)
    try:
        upgrade("datastore", engine, "0001")
        tenant_id, subject_id = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        old = MetaData()
        old.reflect(engine)

        # The first revision's column types: UUIDs are bytes on SQLite, native on PostgreSQL.
        def to_db(value: uuid.UUID) -> object:
            return value.bytes if backend.kind == "sqlite" else value

        with engine.begin() as conn:
            insert_old_tenant(conn, old, to_db(tenant_id), now)
            conn.execute(
                old.tables["subjects"]
                .insert()
                .values(
                    tenant_id=to_db(tenant_id),
                    id=to_db(subject_id),
                    status="active",
                    created_at=now,
                    updated_at=now,
                )
            )
        upgrade("datastore", engine)
        with engine.connect() as conn:
            row = conn.execute(select(Subject).where(Subject.id == subject_id)).one()
            assert row.is_child is False and row.restricted_at is None
            tenant = conn.execute(select(Tenant).where(Tenant.id == tenant_id)).one()
            assert tenant.honour_gpc is True and tenant.dnt_policy == "record"
            assert tenant.public_hosts == []
    finally:
        engine.dispose()


def test_the_upgrade_drops_what_finished_webhook_deliveries_held(
    backend: Backend, tmp_path: Path
) -> None:
    """Migration 0012: a delivery already delivered or failed keeps its record but not its
    sealed payload (it may name a person); one still to be sent keeps what it must send."""
    if backend.kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = _create_pg_database(_pg_admin_url() or "", _pg_name("pledge_upgrade_hooks"))
    engine = make_engine(url)
    try:
        upgrade("datastore", engine, "0001")
        tenant_id = uuid.uuid4()
        now = datetime.now(UTC)

        def to_db(value: uuid.UUID) -> object:
            return value.bytes if backend.kind == "sqlite" else value

        with engine.begin() as conn:
            old = MetaData()
            old.reflect(conn)
            insert_old_tenant(conn, old, to_db(tenant_id), now)
        upgrade("datastore", engine, "0011")
        ids = {status: uuid.uuid4() for status in ("delivered", "failed", "pending")}
        with engine.begin() as conn:
            before = MetaData()
            before.reflect(conn)
            for status, delivery_id in ids.items():
                conn.execute(
                    before.tables["webhook_deliveries"]
                    .insert()
                    .values(
                        tenant_id=to_db(tenant_id),
                        id=to_db(delivery_id),
                        event="subject.erasure_requested",
                        target_kind="recipient",
                        target_id=to_db(uuid.uuid4()),
                        payload_sealed=b"sealed " + status.encode(),
                        status=status,
                        attempts=1,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        upgrade("datastore", engine)
        with engine.connect() as conn:
            held = {
                row.id: row.payload_sealed
                for row in conn.execute(select(WebhookDelivery.id, WebhookDelivery.payload_sealed))
            }
        assert held == {
            ids["delivered"]: None,
            ids["failed"]: None,
            ids["pending"]: b"sealed pending",
        }
    finally:
        engine.dispose()
