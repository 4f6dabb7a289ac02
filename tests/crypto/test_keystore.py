"""The keystore: keys wrapped under the master key, apart from the data store."""

from __future__ import annotations

import base64
import stat
import uuid
from pathlib import Path

import pytest

from pledge.core.config import Settings
from pledge.core.errors import NotInitialised
from pledge.crypto.aead import DecryptionFailed, new_key
from pledge.crypto.keystore import (
    KeyMissing,
    KeyStore,
    create_master_key_file,
    load_master_key,
    make_keystore_engine,
)
from pledge.migrations import upgrade
from pledge.runtime import Runtime
from tests.conftest import Backend, _create_pg_database, _pg_admin_url, _pg_name, make_tenant


def test_master_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "home" / "master.key"
    assert create_master_key_file(path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert create_master_key_file(path) is False and path.read_bytes() == first
    assert len(load_master_key(Settings(home=tmp_path / "home"))) == 32


def test_a_missing_or_malformed_master_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotInitialised, match="pledge init"):
        load_master_key(Settings(home=tmp_path))
    # A key in the environment is checked with the other settings (`core.config`); one in
    # the file when it is read.
    (tmp_path / "master.key").write_text(base64.b64encode(b"short").decode())
    with pytest.raises(NotInitialised, match="32 bytes"):
        load_master_key(Settings(home=tmp_path))
    (tmp_path / "master.key").write_text("not base64 at all!\n")
    with pytest.raises(NotInitialised, match="not base64"):
        load_master_key(Settings(home=tmp_path))


def test_the_wrong_master_key_opens_nothing(runtime: Runtime) -> None:
    tenant_id = make_tenant(runtime, "acme")
    assert len(runtime.keystore.tenant_key(tenant_id)) == 32
    impostor = KeyStore(runtime.keystore.engine, new_key())
    with pytest.raises(DecryptionFailed):
        impostor.tenant_key(tenant_id)


def test_subject_keys_are_bound_to_their_tenant(runtime: Runtime) -> None:
    a, b = make_tenant(runtime, "tenant-a"), make_tenant(runtime, "tenant-b")
    subject = uuid.uuid4()
    key = runtime.keystore.create_subject_keys(a, [(subject, "standard")])[(subject, "standard")]
    assert runtime.keystore.subject_key(a, subject, "standard") == key
    with pytest.raises(KeyMissing):
        runtime.keystore.subject_key(b, subject, "standard")
    assert runtime.keystore.derived_key(a, "blind-index") != runtime.keystore.derived_key(
        b, "blind-index"
    )
    assert runtime.keystore.audit_key(a) != runtime.keystore.audit_key(b)


def test_an_audit_checkpoint_only_moves_forward(runtime: Runtime, backend: Backend) -> None:
    """The keystore refuses to anchor an earlier entry than the one it holds, or another
    entry at the same place: rewinding it would reopen the truncation it guards against."""
    _checkpoints_only_move_forward(runtime.keystore)
    if backend.kind == "postgresql":
        # The test keystore is SQLite; a deployment's may be PostgreSQL (its own upsert).
        engine = make_keystore_engine(
            _create_pg_database(_pg_admin_url() or "", _pg_name("pledge_keystore_test"))
        )
        try:
            upgrade("keystore", engine)
            _checkpoints_only_move_forward(KeyStore(engine, new_key()))
        finally:
            engine.dispose()


def _checkpoints_only_move_forward(ks: KeyStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert ks.audit_checkpoint(a) is None
    first = ks.record_audit_checkpoint(a, 57, b"\x01" * 32)
    assert (first.seq, first.mac) == (57, b"\x01" * 32)
    assert ks.record_audit_checkpoint(a, 41, b"\x02" * 32) == first
    assert ks.record_audit_checkpoint(a, 57, b"\x03" * 32) == first
    assert ks.audit_checkpoint(a) == first
    later = ks.record_audit_checkpoint(a, 60, b"\x04" * 32)
    assert (later.seq, later.mac) == (60, b"\x04" * 32) and later.taken_at >= first.taken_at
    assert ks.audit_checkpoint(b) is None  # one per tenant


def test_services_ask_the_context_for_subjects_keys_never_the_keystore() -> None:
    """A context keeps the data keys it reads for its transaction and forgets those it
    shreds (`TenantContext.subject_keys`, `shred_subject`). A service reaching the keystore
    directly would get around that: a key shredded that way would stay usable from the
    memo for the rest of the transaction. Only the context calls these."""
    import re

    import pledge

    calls = re.compile(r"keystore\.(subject_keys?|create_subject_keys|shred_subject)\(")
    root = Path(pledge.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in root.rglob("*.py")
        if path.name != "keystore.py" and path != root / "access" / "context.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if calls.search(line)
    ]
    assert offenders == []
