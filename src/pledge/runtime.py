"""The running system's handles: settings, the data store and the keystore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pledge.access.context import (
    OPERATOR,
    TENANT_COLUMNS_BY_SLUG,
    Actor,
    TenantContext,
    TenantSettings,
)
from pledge.access.permissions import ALL_SCOPES
from pledge.core.config import Settings, get_settings
from pledge.core.db import make_engine, make_sessionmaker, read_transaction, transaction
from pledge.core.errors import NotFound
from pledge.crypto.keystore import KeyStore, load_master_key, make_keystore_engine


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keystore: KeyStore

    @classmethod
    def open(cls, settings: Settings | None = None) -> Runtime:
        settings = settings or get_settings()
        engine = make_engine(settings.data_url)
        keystore = KeyStore(make_keystore_engine(settings.keys_url), load_master_key(settings))
        return cls(settings, engine, make_sessionmaker(engine), keystore)

    def close(self) -> None:
        self.engine.dispose()
        self.keystore.engine.dispose()

    @contextmanager
    def tenant_context(
        self, slug: str, actor: Actor = OPERATOR, *, read_only: bool = False
    ) -> Iterator[TenantContext]:
        """One transaction in a tenant, as the operator (CLI, jobs) with every scope.
        `read_only`: a `read_transaction` — one snapshot, no write lock (long checks that
        write nothing must not stop writers: on SQLite every writer takes the one lock)."""
        opened = read_transaction(self.sessions) if read_only else transaction(self.sessions)
        with opened as session:
            # Every CLI command and job (and each check a job makes in its own transaction)
            # starts here: the tenant's columns in the statement that finds it, for the
            # settings its services read (`TenantContext.settings`); no ORM object.
            row = session.connection().execute(TENANT_COLUMNS_BY_SLUG, {"slug": slug})
            found = cast(TenantSettings | None, row.one_or_none())
            if found is None:
                raise NotFound(f"no tenant {slug!r}")
            yield TenantContext.lazy(
                session, self.keystore, found.id, actor, ALL_SCOPES, settings=found
            )
