"""The keystore: wrapped tenant and subject keys, kept in their own database, apart from the
data store, so that a copy of the data store (a backup, a replica, a dump) is ciphertext only.

Hierarchy (docs/decisions/0002-key-hierarchy.md):

    master key (file or env, never in a database)
      └─ tenant key             wrapped by the master key            table tenant_keys
           ├─ blind-index key   derived (HKDF)                       —
           ├─ staff key         derived (HKDF), for users' own data  —
           └─ subject data key  wrapped by the tenant key, one per   table subject_keys
                                (subject, retention class)

Shredding a subject deletes its data keys and leaves a tombstone without key material, so a
later read can say "erased" rather than "corrupt". On SQLite the keystore runs with
`secure_delete` and checkpoints its WAL after shredding, so the deleted key bytes are
overwritten in the files, not merely unlinked from the b-tree.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    BigInteger,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from pledge.core.clock import utcnow
from pledge.core.config import Settings
from pledge.core.db import ID, NAMING, UTCDateTime, bulk_insert, make_engine, read_connection
from pledge.core.errors import NotInitialised
from pledge.crypto.aead import KEY_BYTES, derive, new_key, seal, unseal


class KeystoreBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TenantKey(KeystoreBase):
    __tablename__ = "tenant_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubjectKey(KeystoreBase):
    __tablename__ = "subject_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    key_class: Mapped[str] = mapped_column(String(40), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShreddedKey(KeystoreBase):
    """Tombstone of a destroyed subject key: proof of erasure, no key material."""

    __tablename__ = "shredded_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    key_class: Mapped[str] = mapped_column(String(40), primary_key=True)
    shredded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigningKey(KeystoreBase):
    """A tenant's Ed25519 key for signing (consent receipts). The private key is wrapped by
    the tenant key; the public key is published so anyone can verify."""

    __tablename__ = "signing_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    use: Mapped[str] = mapped_column(String(40))
    wrapped_private: Mapped[bytes] = mapped_column(LargeBinary)
    public: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditCheckpoint(KeystoreBase):
    """The last entry of a tenant's audit chain seen verified: its seq and MAC, kept here,
    apart from the data store, so that entries cut from the end of the chain are noticed even
    when its head (in the data store) is rewound to match (decision 0005). One row per
    tenant, moved forward in place."""

    __tablename__ = "audit_checkpoints"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    mac: Mapped[bytes] = mapped_column(LargeBinary(32))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Checkpoint:
    """A tenant's audit checkpoint as read from the keystore."""

    seq: int
    mac: bytes
    taken_at: datetime


class KeyMissing(Exception):
    """No key for this subject and class (never created)."""


class KeyShredded(Exception):
    """The key was destroyed: the data it protected is erased."""


# ---------------------------------------------------------------------------------------------
# Master key


def load_master_key(settings: Settings) -> bytes:
    if settings.master_key:
        key = base64.b64decode(settings.master_key)
    else:
        path = settings.master_key_path
        if not path.exists():
            raise NotInitialised(f"no master key at {path}; run `pledge init` first")
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except binascii.Error:
            raise NotInitialised(f"the master key file {path} is not base64: restore it") from None
    if len(key) != KEY_BYTES:
        raise NotInitialised("the master key must be 32 bytes, base64-encoded")
    return key


def create_master_key_file(path: Path) -> bool:
    """Create the master key file with mode 0600; False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(new_key()) + b"\n")
    return True


# ---------------------------------------------------------------------------------------------
# Keystore


def _tenant_aad(tenant_id: uuid.UUID) -> bytes:
    return b"pledge:tenant-key:v1|" + tenant_id.bytes


def _subject_aad(tenant_id: uuid.UUID, subject_id: uuid.UUID, key_class: str) -> bytes:
    return b"pledge:subject-key:v1|" + tenant_id.bytes + subject_id.bytes + key_class.encode()


def _signing_aad(tenant_id: uuid.UUID, kid: str) -> bytes:
    return b"pledge:signing-key:v1|" + tenant_id.bytes + kid.encode()


def make_keystore_engine(url: str) -> Engine:
    engine = make_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _secure_delete(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA secure_delete=ON")
            # SQLite's own checkpoint interval, not the data store's longer one: a shredded
            # key's page leaves the WAL soon even when the shred's own checkpoint is put off
            # by a reader (`_flush_deleted_pages`).
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=1000")

    return engine


_KEYS = cast(Table, SubjectKey.__table__)
# Prebuilt: the hot look-up of every subject read (`subject_keys`).
_SUBJECT_KEYS = select(_KEYS.c.subject_id, _KEYS.c.key_class, _KEYS.c.wrapped).where(
    _KEYS.c.tenant_id == bindparam("tenant_id"),
    tuple_(_KEYS.c.subject_id, _KEYS.c.key_class).in_(bindparam("pairs", expanding=True)),
)


class KeyStore:
    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._master = AESGCM(master_key)
        self._master_raw = master_key
        self._tenant_cache: dict[uuid.UUID, bytes] = {}
        # Sub-keys, kept like the tenant keys they come from (HKDF costs ~10 µs a call, and
        # a request derives four).
        self._derived_cache: dict[tuple[uuid.UUID, str], bytes] = {}
        self._lock = threading.Lock()

    # -- tenant keys ----------------------------------------------------------------------

    def create_tenant_key(self, tenant_id: uuid.UUID) -> None:
        wrapped = seal(self._master, new_key(), _tenant_aad(tenant_id))
        with self._sessions.begin() as s:
            s.add(TenantKey(tenant_id=tenant_id, wrapped=wrapped, created_at=utcnow()))

    def tenant_key(self, tenant_id: uuid.UUID) -> bytes:
        cached = self._tenant_cache.get(tenant_id)
        if cached is not None:
            return cached
        with self._sessions() as s:
            row = s.get(TenantKey, tenant_id)
        if row is None:
            raise KeyMissing(f"no key for tenant {tenant_id}")
        key = unseal(self._master, row.wrapped, _tenant_aad(tenant_id))
        with self._lock:
            self._tenant_cache[tenant_id] = key
        return key

    def derived_key(self, tenant_id: uuid.UUID, purpose: str) -> bytes:
        cached = self._derived_cache.get((tenant_id, purpose))
        if cached is None:
            cached = derive(self.tenant_key(tenant_id), b"pledge:" + purpose.encode() + b":v1")
            with self._lock:
                self._derived_cache[(tenant_id, purpose)] = cached
        return cached

    def audit_key(self, tenant_id: uuid.UUID) -> bytes:
        # From the master key, not the tenant key: the audit trail must stay verifiable after a
        # tenant's keys are destroyed at offboarding.
        cached = self._derived_cache.get((tenant_id, "\0audit-chain"))
        if cached is None:
            cached = derive(self._master_raw, b"pledge:audit-chain:v1|" + tenant_id.bytes)
            with self._lock:
                self._derived_cache[(tenant_id, "\0audit-chain")] = cached
        return cached

    # -- audit checkpoints ----------------------------------------------------------------

    def audit_checkpoint(self, tenant_id: uuid.UUID) -> Checkpoint | None:
        with self._sessions() as s:
            row = s.get(AuditCheckpoint, tenant_id)
            return None if row is None else Checkpoint(row.seq, row.mac, row.taken_at)

    def audit_checkpointed_tenants(self) -> set[uuid.UUID]:
        """Every tenant with a checkpoint: a tenant missing from the data store since is one
        whose whole chain went with it."""
        with self._sessions() as s:
            return set(s.scalars(select(AuditCheckpoint.tenant_id)))

    def record_audit_checkpoint(self, tenant_id: uuid.UUID, seq: int, mac: bytes) -> Checkpoint:
        """Anchor entry `seq` of the tenant's audit chain, with its MAC; returns the checkpoint
        now stored. Never moves backwards: at or below the stored seq, the stored checkpoint
        stays as it is (and keeps its date) — the caller compares."""
        table = AuditCheckpoint.__table__
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        # One statement, so two checkpoints taken at once cannot move it backwards.
        stmt = dialect.insert(table).values(
            tenant_id=tenant_id, seq=seq, mac=mac, taken_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.tenant_id],
            set_={
                "seq": stmt.excluded.seq,
                "mac": stmt.excluded.mac,
                "taken_at": stmt.excluded.taken_at,
            },
            where=table.c.seq < stmt.excluded.seq,
        )
        with self._sessions.begin() as s:
            s.execute(stmt)
            row = s.get(AuditCheckpoint, tenant_id)
            assert row is not None
            return Checkpoint(row.seq, row.mac, row.taken_at)

    # -- signing keys ---------------------------------------------------------------------

    def signing_key(self, tenant_id: uuid.UUID, use: str) -> tuple[str, bytes]:
        """The tenant's current Ed25519 private key (raw 32 bytes) for `use`, created on
        first use. Returns (kid, private key)."""
        tenant = AESGCM(self.tenant_key(tenant_id))
        with self._sessions.begin() as s:
            row = s.scalar(
                select(SigningKey)
                .where(SigningKey.tenant_id == tenant_id, SigningKey.use == use)
                .where(SigningKey.retired_at.is_(None))
                .order_by(SigningKey.created_at.desc())
                .limit(1)
            )
            if row is None:
                private = Ed25519PrivateKey.generate()
                raw = private.private_bytes_raw()
                kid = f"{use}-{uuid.uuid4().hex[:12]}"
                row = SigningKey(
                    tenant_id=tenant_id,
                    kid=kid,
                    use=use,
                    wrapped_private=seal(tenant, raw, _signing_aad(tenant_id, kid)),
                    public=private.public_key().public_bytes_raw(),
                    created_at=utcnow(),
                )
                s.add(row)
                return kid, raw
            return row.kid, unseal(tenant, row.wrapped_private, _signing_aad(tenant_id, row.kid))

    def public_signing_keys(self, tenant_id: uuid.UUID, use: str) -> dict[str, bytes]:
        """Every public key ever used for `use` (retired ones too: old receipts must verify)."""
        with self._sessions() as s:
            rows = s.execute(
                select(SigningKey.kid, SigningKey.public).where(
                    SigningKey.tenant_id == tenant_id, SigningKey.use == use
                )
            ).all()
        return {kid: public for kid, public in rows}

    # -- subject keys ---------------------------------------------------------------------

    def create_subject_keys(
        self, tenant_id: uuid.UUID, wanted: Sequence[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], bytes]:
        """Create data keys for (subject, class) pairs in one keystore transaction."""
        if not wanted:
            return {}
        tenant = AESGCM(self.tenant_key(tenant_id))
        now = utcnow()
        keys: dict[tuple[uuid.UUID, str], bytes] = {}
        rows = []
        for subject_id, key_class in wanted:
            key = new_key()
            keys[(subject_id, key_class)] = key
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "subject_id": subject_id,
                    "key_class": key_class,
                    "wrapped": seal(tenant, key, _subject_aad(tenant_id, subject_id, key_class)),
                    "created_at": now,
                }
            )
        with self._sessions.begin() as s:
            bulk_insert(s, SubjectKey, rows)
        return keys

    def subject_keys(
        self, tenant_id: uuid.UUID, pairs: Iterable[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], bytes]:
        """Unwrap the keys that exist for the given pairs; missing or shredded ones are absent."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return {}
        tenant = AESGCM(self.tenant_key(tenant_id))
        out: dict[tuple[uuid.UUID, str], bytes] = {}
        # A connection, not an ORM session: asked in nearly every transaction that reads a
        # subject, and nothing here needs the session's bookkeeping.
        with read_connection(self.engine) as conn:
            for chunk_start in range(0, len(wanted), 400):
                chunk = wanted[chunk_start : chunk_start + 400]
                rows = conn.execute(_SUBJECT_KEYS, {"tenant_id": tenant_id, "pairs": chunk})
                for subject_id, key_class, wrapped in rows:
                    aad = _subject_aad(tenant_id, subject_id, key_class)
                    out[(subject_id, key_class)] = unseal(tenant, wrapped, aad)
        return out

    def subject_key(self, tenant_id: uuid.UUID, subject_id: uuid.UUID, key_class: str) -> bytes:
        found = self.subject_keys(tenant_id, [(subject_id, key_class)])
        key = found.get((subject_id, key_class))
        if key is not None:
            return key
        if self.is_shredded(tenant_id, subject_id, key_class):
            raise KeyShredded(f"{subject_id}/{key_class}")
        raise KeyMissing(f"{subject_id}/{key_class}")

    def key_classes(self, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> list[str]:
        with self._sessions() as s:
            return list(
                s.scalars(
                    select(SubjectKey.key_class).where(
                        SubjectKey.tenant_id == tenant_id, SubjectKey.subject_id == subject_id
                    )
                )
            )

    def is_shredded(self, tenant_id: uuid.UUID, subject_id: uuid.UUID, key_class: str) -> bool:
        with self._sessions() as s:
            return s.get(ShreddedKey, (tenant_id, subject_id, key_class)) is not None

    def shred_subject(
        self, tenant_id: uuid.UUID, subject_id: uuid.UUID, keep: Iterable[str] = ()
    ) -> list[str]:
        """Destroy every data key of the subject except the classes in `keep`.

        Returns the classes shredded. Idempotent: shredding again destroys nothing more.
        """
        keep_set = set(keep)
        now = utcnow()
        with self._sessions.begin() as s:
            classes = [
                c
                for c in s.scalars(
                    select(SubjectKey.key_class).where(
                        SubjectKey.tenant_id == tenant_id, SubjectKey.subject_id == subject_id
                    )
                )
                if c not in keep_set
            ]
            if classes:
                s.execute(
                    delete(SubjectKey).where(
                        SubjectKey.tenant_id == tenant_id,
                        SubjectKey.subject_id == subject_id,
                        SubjectKey.key_class.in_(classes),
                    )
                )
                s.execute(
                    insert(ShreddedKey),
                    [
                        {
                            "tenant_id": tenant_id,
                            "subject_id": subject_id,
                            "key_class": c,
                            "shredded_at": now,
                        }
                        for c in classes
                    ],
                )
        if classes:
            self._flush_deleted_pages()
        return classes

    def _flush_deleted_pages(self) -> None:
        # With WAL, the page that still holds the deleted key stays in the main file until a
        # checkpoint rewrites it; TRUNCATE also empties the WAL. Best effort: a busy reader
        # postpones it to the next checkpoint.
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def count_subject_keys(self, tenant_id: uuid.UUID) -> int:
        with self._sessions() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(SubjectKey)
                    .where(SubjectKey.tenant_id == tenant_id)
                )
                or 0
            )


def open_keystore(settings: Settings) -> KeyStore:
    return KeyStore(make_keystore_engine(settings.keys_url), load_master_key(settings))
