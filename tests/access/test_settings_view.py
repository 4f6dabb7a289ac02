"""`TenantContext.settings`: the tenant's settings read without the ORM, once per transaction.
A change made in the transaction is what every later read sees."""

from __future__ import annotations

import gc

from pledge.access.context import OPERATOR, TenantContext
from pledge.access.permissions import ALL_SCOPES
from pledge.runtime import Runtime
from pledge.tenants import service as tenants


def test_a_change_in_the_transaction_is_read_back(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        before = ctx.settings.privacy_contact
        tenants.set_privacy_contact(ctx, "privacy@example.com")
        assert before != "privacy@example.com"
        assert ctx.settings.privacy_contact == "privacy@example.com"


def test_a_change_by_another_context_of_the_session_is_read_back(
    runtime: Runtime, tenant: str
) -> None:
    """Another context on the same session changes a setting and goes: the session may let
    go of the row it loaded once the change is flushed, and the first context's copy read
    before must not come back."""
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.settings.privacy_contact != "dpo@example.com"  # read, and kept

        def change() -> None:
            other = TenantContext.lazy(
                ctx.session, ctx.keystore, ctx.tenant_id, OPERATOR, ALL_SCOPES
            )
            tenants.set_privacy_contact(other, "dpo@example.com")
            ctx.session.flush()

        change()
        gc.collect()
        assert ctx.settings.privacy_contact == "dpo@example.com"


def test_the_keystore_checkpoints_at_sqlites_own_interval(runtime: Runtime) -> None:
    """The data store's WAL is copied back every 10,000 pages (fewer copies of the pages
    every transaction writes); the keystore's at SQLite's 1,000, so that a shredded key's
    page does not stay in its WAL ten times as long when the shred's own checkpoint is put
    off."""
    for engine, pages in ((runtime.engine, 10_000), (runtime.keystore.engine, 1_000)):
        if engine.dialect.name != "sqlite":
            continue
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == pages
