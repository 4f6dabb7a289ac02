"""Appending to and verifying a tenant's audit chain.

Every entry is written through `record` (or `record_many`) with the session of the act it
describes, so the entry commits or rolls back with the act (DESIGN.md §4 invariant 3).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from pledge.access.context import Actor, TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.core.clock import utcnow
from pledge.core.db import (
    after_commit,
    bulk_insert,
    is_read_only,
    read_transaction,
    transaction_memo,
)
from pledge.crypto.keystore import Checkpoint, KeyStore
from pledge.tenants.models import Tenant

GENESIS = bytes(32)


def canonical(
    seq: int,
    occurred_at: datetime,
    event: str,
    actor_kind: str,
    actor_id: str | None,
    subject_id: uuid.UUID | None,
    details: dict[str, Any],
) -> bytes:
    """The exact bytes an entry's MAC covers: sorted-key JSON, no whitespace, UTF-8."""
    doc = [
        seq,
        occurred_at.isoformat(timespec="microseconds"),
        event,
        actor_kind,
        actor_id,
        str(subject_id) if subject_id else None,
        details,
    ]
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, prev: bytes, content: bytes) -> bytes:
    return hmac.new(key, prev + content, hashlib.sha256).digest()


def init_chain(session: Session, tenant_id: uuid.UUID) -> None:
    session.add(AuditHead(tenant_id=tenant_id, seq=0, mac=GENESIS))


@dataclass(frozen=True)
class PendingEntry:
    event: AuditEvent
    subject_id: uuid.UUID | None = None
    details: dict[str, Any] | None = None


def record(
    ctx: TenantContext,
    event: AuditEvent,
    *,
    subject_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry in the caller's transaction; returns its sequence number."""
    return record_many(ctx, [PendingEntry(event, subject_id, details)])[0]


def record_many(ctx: TenantContext, entries: Sequence[PendingEntry]) -> list[int]:
    return append(ctx.session, ctx.keystore, ctx.tenant_id, ctx.actor, entries)


_HEADS = cast(Table, AuditHead.__table__)
_ENTRIES = cast(Table, AuditEntry.__table__)
_TENANTS = cast(Table, Tenant.__table__)
# Prebuilt Core statements (an append is on the hot path of every gate check): built and
# cache-keyed once, no ORM unit of work for the head.
_LOCK_HEAD = (
    select(_HEADS.c.seq, _HEADS.c.mac)
    .where(_HEADS.c.tenant_id == bindparam("tenant_id"))
    .with_for_update()
)
_MOVE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.tenant_id == bindparam("head_tenant_id"))
    .values(seq=bindparam("head_seq"), mac=bindparam("head_mac"))
)
_HOLD_TENANT = (
    select(_TENANTS.c.id)
    .where(_TENANTS.c.id == bindparam("tenant_id"))
    .with_for_update(read=True, key_share=True)  # FOR KEY SHARE (without `read`: NO KEY UPDATE)
)
_TENANT_HELD = "tenant-row-held"


def _hold_tenant(conn: Connection, memo: dict[Any, Any], tenant_id: uuid.UUID) -> None:
    """On PostgreSQL, the tenant row FOR KEY SHARE to the end of the transaction, once per
    transaction, before the head is locked. The entries' foreign key takes that lock anyway,
    but after the head: a change of the tenant's settings locks the row FOR UPDATE and then
    audits itself (the head), and the two orders deadlocked. The lock order is the tenant row,
    then request rows, then the head (decision 0005). KEY SHARE waits for nothing an insert
    of the entries would not wait for. SQLite's writers take turns: no statement there."""
    if conn.dialect.name == "sqlite" or memo.get((_TENANT_HELD, tenant_id)):
        return
    conn.execute(_HOLD_TENANT, {"tenant_id": tenant_id})
    memo[(_TENANT_HELD, tenant_id)] = True


def tenant_held(session: Session, tenant_id: uuid.UUID) -> None:
    """The caller has locked the tenant row in this transaction, FOR KEY SHARE or stronger
    (`rights.service.hold_clock_settings`, a settings change's FOR UPDATE): an append need
    not lock it again."""
    transaction_memo(session)[(_TENANT_HELD, tenant_id)] = True


def append(
    session: Session,
    keystore: KeyStore,
    tenant_id: uuid.UUID,
    actor: Actor,
    entries: Sequence[PendingEntry],
) -> list[int]:
    if not entries:
        return []
    # The caller's pending changes reach the database first (as an ORM query would
    # autoflush): a head just added by `init_chain`, the act the entries describe.
    if session.autoflush:
        session.flush()
    conn = session.connection()
    # Lock the head: on PostgreSQL a row lock (the tenant row first, `_hold_tenant`), on
    # SQLite the write lock taken at BEGIN. Held to the end of the transaction, so the head
    # read first stays ours: later appends in the transaction take it from the memo (dropped
    # when the transaction or a savepoint ends — a rolled-back savepoint's entries are gone,
    # and the head is read again).
    memo = transaction_memo(session)
    head: tuple[int, bytes] | None = memo.get(("audit-head", tenant_id))
    if head is None:
        _hold_tenant(conn, memo, tenant_id)
        seq, prev = conn.execute(_LOCK_HEAD, {"tenant_id": tenant_id}).one()
    else:
        seq, prev = head
    key = keystore.audit_key(tenant_id)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        details = entry.details or {}
        content = canonical(
            seq, now, entry.event.value, actor.kind.value, actor.id, entry.subject_id, details
        )
        mac = _mac(key, prev, content)
        rows.append(
            {
                "tenant_id": tenant_id,
                "seq": seq,
                "occurred_at": now,
                "event": entry.event.value,
                "actor_kind": actor.kind.value,
                "actor_id": actor.id,
                "subject_id": entry.subject_id,
                "details": details,
                "prev_mac": prev,
                "mac": mac,
            }
        )
        prev = mac
    bulk_insert(session, AuditEntry, rows)
    conn.execute(_MOVE_HEAD, {"head_tenant_id": tenant_id, "head_seq": seq, "head_mac": prev})
    memo[("audit-head", tenant_id)] = (seq, prev)
    # A head loaded through the ORM in this session (`verify_chain`) shows the new end.
    loaded = session.identity_map.get((AuditHead, (tenant_id,), None))
    if loaded is not None:
        set_committed_value(loaded, "seq", seq)
        set_committed_value(loaded, "mac", prev)
    return [r["seq"] for r in rows]


# ---------------------------------------------------------------------------------------------
# Verification

# A walk's progress: told the number of entries walked so far, every `PROGRESS_EVERY` (once
# per batch the cursor fetches) and at the end of a walk that did not break (a bar's
# `completed`; a full walk counts to the head's seq, see `chain_length`).
PROGRESS_EVERY = 2000
Progress = Callable[[int], None]


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
        }


def _check_link(
    key: bytes, entry: AuditEntry, expected_seq: int, prev: bytes
) -> tuple[int, str] | None:
    """None when the entry fits the chain, else (seq to report, reason)."""
    if entry.seq != expected_seq:
        return expected_seq, f"entry {expected_seq} is missing (next entry found is {entry.seq})"
    if not hmac.compare_digest(entry.prev_mac, prev):
        return entry.seq, f"entry {entry.seq} does not link to entry {entry.seq - 1}"
    content = canonical(
        entry.seq,
        entry.occurred_at,
        entry.event,
        entry.actor_kind,
        entry.actor_id,
        entry.subject_id,
        entry.details,
    )
    if not hmac.compare_digest(_mac(key, prev, content), entry.mac):
        return entry.seq, f"entry {entry.seq} was altered (MAC mismatch)"
    return None


def verify_chain(
    session: Session,
    keystore: KeyStore,
    tenant_id: uuid.UUID,
    *,
    progress: Progress | None = None,
) -> VerifyResult:
    """Walk the chain from the start; name the first entry that does not fit.

    Catches an edited entry (its MAC no longer matches), a deleted one (a gap in the
    sequence), an inserted or reordered one (its MAC or its link to the previous MAC breaks)
    and entries cut from the end: the chain stops short of its head or, with the head rewound
    to match, of the latest checkpoint in the keystore (cut before any checkpoint, that last
    case goes unnoticed — decision 0005).
    """
    return _verify(session, keystore, tenant_id, progress=progress)[0]


def chain_length(session: Session, tenant_id: uuid.UUID) -> int:
    """The seq the tenant's head records (0 without one): what a full walk will count to."""
    seq = session.scalar(select(AuditHead.seq).where(AuditHead.tenant_id == tenant_id))
    return seq or 0


def _when(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.taken_at:%Y-%m-%d %H:%M} UTC"


def _verify(
    session: Session,
    keystore: KeyStore,
    tenant_id: uuid.UUID,
    *,
    from_checkpoint: bool = False,
    lock_head: bool = False,
    progress: Progress | None = None,
    resume: tuple[int, bytes, int] | None = None,
) -> tuple[VerifyResult, int, bytes]:
    """`verify_chain`, with the seq and MAC of the last entry walked (what a checkpoint
    anchors). `from_checkpoint`: walk only from the latest checkpoint's entry on — what was
    before it was verified when it was taken (the worker's cheap, frequent checkpoint; a full
    verification still walks everything). `resume` (seq, MAC, count checked): walk on after
    an entry a walk of an earlier snapshot ended at, and found sound (`verify_and_record`).

    The head and the entries must be read from one state of the chain: an entry appended
    between the two reads would look like a broken chain. A `read_transaction` reads one
    snapshot; in a transaction that writes, `lock_head` holds appends back (PostgreSQL: the
    head row FOR UPDATE, after the tenant row as an append takes them; SQLite's writers
    already wait for the transaction)."""
    key = keystore.audit_key(tenant_id)
    anchor = keystore.audit_checkpoint(tenant_id)
    if lock_head:
        _hold_tenant(session.connection(), transaction_memo(session), tenant_id)
    head = session.get(AuditHead, tenant_id, with_for_update=lock_head)
    expected_seq, prev = 1, GENESIS
    start = anchor if from_checkpoint else None
    checked = 0
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.tenant_id == tenant_id)
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=2000)
    )
    if start is not None:
        stmt = stmt.where(AuditEntry.seq >= start.seq)
        expected_seq = start.seq
    elif resume is not None:
        stmt = stmt.where(AuditEntry.seq > resume[0])
        expected_seq, prev, checked = resume[0] + 1, resume[1], resume[2]
    entries = session.scalars(stmt)
    try:
        for entry in entries:
            if start is not None and entry.seq == start.seq:
                prev = entry.prev_mac  # the anchored entry: its own MAC is checked below
            problem = _check_link(key, entry, expected_seq, prev)
            if problem:
                return VerifyResult(False, checked, problem[0], problem[1]), expected_seq - 1, prev
            if (
                anchor is not None
                and entry.seq == anchor.seq
                and not hmac.compare_digest(entry.mac, anchor.mac)
            ):
                # The chain holds together, yet this is not the entry anchored: it was
                # rebuilt from here (which takes the audit key).
                reason = (
                    f"entry {entry.seq} is not the one a checkpoint of {_when(anchor)} recorded"
                )
                return VerifyResult(False, checked, entry.seq, reason), expected_seq - 1, prev
            prev = entry.mac
            expected_seq += 1
            checked += 1
            if progress is not None and checked % PROGRESS_EVERY == 0:
                progress(checked)
    finally:
        entries.close()  # a server-side cursor on PostgreSQL: close it on early return
    if progress is not None and (checked == 0 or checked % PROGRESS_EVERY):
        progress(checked)  # the end of the walk, unless just reported
    last = expected_seq - 1
    if anchor is not None and last < anchor.seq and _holds_anchored(session, tenant_id, anchor):
        # A snapshot older than the checkpoint (`pledge audit verify` walks every tenant in
        # one, while the worker anchors what was appended since): the data store holds the
        # entry anchored, beyond what this snapshot sees. No cut; what it sees is judged.
        if from_checkpoint:
            return VerifyResult(True, 0), 0, GENESIS  # nothing of it after the checkpoint
    elif anchor is not None and last < anchor.seq:
        # The head lives in the data store and may have been rewound with the cut; the
        # checkpoint lives in the keystore.
        reason = (
            f"entries after {last} are gone: a checkpoint of {_when(anchor)} "
            f"recorded entry {anchor.seq}"
        )
        return VerifyResult(False, checked, last + 1, reason), last, prev
    if head is None:
        return VerifyResult(False, checked, 1, "the chain has no head"), last, prev
    if head.seq != last or not hmac.compare_digest(head.mac, prev):
        return (
            VerifyResult(
                False,
                checked,
                last + 1,
                f"the chain ends at entry {last} but its head records entry {head.seq}",
            ),
            last,
            prev,
        )
    return VerifyResult(True, checked), last, prev


def _holds_anchored(session: Session, tenant_id: uuid.UUID, anchor: Checkpoint) -> bool:
    """Whether the data store, read now (in a snapshot of its own: the caller's may be older
    than the checkpoint), holds the entry the checkpoint anchored, with the MAC it recorded.
    Only the audit key makes another entry with that MAC: a cut cannot keep it.

    Asked of a `read_transaction` only: any other transaction reads the chain as committed
    when it began (SQLite's writers hold the lock from BEGIN) or at each statement
    (PostgreSQL), after the checkpoint was read — and may itself have cut the entries."""
    if not is_read_only(session):
        return False
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        return False  # no second connection to read with: the cut is reported
    try:
        with read_transaction(sessionmaker(bind=bind)) as now:
            mac = now.scalar(
                select(AuditEntry.mac).where(
                    AuditEntry.tenant_id == tenant_id, AuditEntry.seq == anchor.seq
                )
            )
    except SQLAlchemyError:
        return False  # unreadable now: the cut is reported rather than explained away
    return mac is not None and hmac.compare_digest(mac, anchor.mac)


@dataclass(frozen=True)
class CheckpointResult:
    """A checkpoint attempt: the verification it rests on, and the checkpoint stored after
    it (None when the tenant has none: refused on a broken chain, or an empty chain)."""

    verified: VerifyResult
    checkpoint: Checkpoint | None
    moved: bool  # this attempt anchored a later entry than the one stored before


def checkpoint(
    session: Session,
    keystore: KeyStore,
    tenant_id: uuid.UUID,
    *,
    from_checkpoint: bool = False,
    progress: Progress | None = None,
) -> CheckpointResult:
    """Verify the tenant's chain and, only if it holds, anchor its last entry in the keystore
    (`from_checkpoint`: verify only the entries since the latest checkpoint, see `_verify`).

    A tampered chain is never anchored. The checkpoint never moves backwards: one already at
    a later entry stays (a chain that no longer reaches it fails verification, so this only
    happens when another checkpoint got there first). Call it in a transaction that has not
    appended to the chain: what is anchored must be committed, or a rollback would leave the
    checkpoint ahead of the chain for good.

    In a transaction that may write (the worker's), the head is held while the entries are
    read: on PostgreSQL an entry committed between the two reads would look like a break. A
    `read_transaction` reads one snapshot, and may not lock.
    """
    if ("audit-head", tenant_id) in transaction_memo(session):
        raise RuntimeError("an audit checkpoint needs a transaction that did not append")
    snapshot = is_read_only(session)
    result, last_seq, last_mac = _verify(
        session,
        keystore,
        tenant_id,
        from_checkpoint=from_checkpoint,
        lock_head=not snapshot,
        progress=progress,
    )
    if not result.ok or last_seq == 0:
        return CheckpointResult(result, keystore.audit_checkpoint(tenant_id), False)
    return _anchor(keystore, tenant_id, result, last_seq, last_mac)


def _anchor(
    keystore: KeyStore, tenant_id: uuid.UUID, result: VerifyResult, last_seq: int, mac: bytes
) -> CheckpointResult:
    before = keystore.audit_checkpoint(tenant_id)
    stored = keystore.record_audit_checkpoint(tenant_id, last_seq, mac)
    moved = stored.seq == last_seq and (before is None or before.seq < stored.seq)
    return CheckpointResult(result, stored, moved)


@dataclass(frozen=True)
class RecordedVerification:
    """A verification from the console or the API, and where it leaves the checkpoint."""

    verified: VerifyResult
    # The checkpoint in force as the chain was verified: this verification's own is taken
    # only once its transaction has committed. None: no checkpoint taken yet.
    checkpoint: Checkpoint | None
    # The entry this verification anchors once committed, when that moves the checkpoint
    # forward; None for a broken chain (never anchored) or nothing verified beyond it.
    anchors: int | None


def verify_and_record(
    ctx: TenantContext, *, progress: Progress | None = None
) -> RecordedVerification:
    """Verify the tenant's chain and record that it was checked, and with what outcome; a
    chain that holds is checkpointed once the transaction has committed (the entries
    anchored may include this transaction's own).

    The long walk reads a snapshot of its own and holds nothing: holding the head (FOR UPDATE
    on PostgreSQL) for the walk of a long chain held back every audited act of the tenant.
    Then the head is taken, as an append takes it, and the entries committed since the
    snapshot are walked on from where it ended — a short walk.

    On SQLite the caller's transaction has held the database's write lock since its first
    statement (BEGIN IMMEDIATE: for a route, the sign-in's look-up), which would hold back
    every writer of every tenant for the walk: what it did so far (reads, the sign-in's
    bookkeeping) is committed first, and the record below is made in a new transaction."""
    session = ctx.session
    if (
        session.get_bind().dialect.name == "sqlite"
        and session.in_transaction()
        and not is_read_only(session)
    ):
        session.commit()
    result, last_seq, last_mac = _walk_a_snapshot(ctx, progress)
    if result.ok:
        result, last_seq, last_mac = _verify(
            ctx.session,
            ctx.keystore,
            ctx.tenant_id,
            lock_head=True,
            resume=(last_seq, last_mac, result.checked),
        )
    # Read after the walk, with the head held: the chain cannot grow meanwhile, so no
    # checkpoint taken since (the worker's, `pledge audit verify`) passes `last_seq`.
    before = ctx.keystore.audit_checkpoint(ctx.tenant_id)
    record(
        ctx,
        AuditEvent.AUDIT_VERIFIED,
        details={"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq},
    )
    if result.ok and last_seq:
        keystore, tenant_id = ctx.keystore, ctx.tenant_id

        def anchor() -> None:
            _anchor(keystore, tenant_id, result, last_seq, last_mac)

        after_commit(ctx.session, anchor)
    moves = result.ok and last_seq > 0 and (before is None or before.seq < last_seq)
    return RecordedVerification(result, before, last_seq if moves else None)


def _walk_a_snapshot(
    ctx: TenantContext, progress: Progress | None
) -> tuple[VerifyResult, int, bytes]:
    """`_verify` in a `read_transaction` of its own (one snapshot, no lock), or — with no
    engine to open one on, or in a read-only transaction already — in the caller's."""
    # Asked only of a transaction under way: asking begins one (on SQLite, IMMEDIATE).
    read_only = ctx.session.in_transaction() and is_read_only(ctx.session)
    bind = ctx.session.get_bind()
    if read_only or not isinstance(bind, Engine):
        return _verify(
            ctx.session, ctx.keystore, ctx.tenant_id, lock_head=not read_only, progress=progress
        )
    with read_transaction(sessionmaker(bind=bind)) as snapshot:
        return _verify(snapshot, ctx.keystore, ctx.tenant_id, progress=progress)


# ---------------------------------------------------------------------------------------------
# Reading


def list_entries(
    ctx: TenantContext,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 50,
    subject_id: uuid.UUID | None = None,
    newest_first: bool = False,
) -> list[AuditEntry]:
    stmt = for_tenant(select(AuditEntry), AuditEntry, ctx.tenant_id)
    if subject_id is not None:
        stmt = stmt.where(AuditEntry.subject_id == subject_id)
    if after_seq is not None:
        stmt = stmt.where(AuditEntry.seq > after_seq)
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    order = AuditEntry.seq.desc() if newest_first else AuditEntry.seq
    return list(ctx.session.scalars(stmt.order_by(order).limit(limit)))


def entry_as_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "occurred_at": entry.occurred_at.isoformat(),
        "event": entry.event,
        "actor": {"kind": entry.actor_kind, "id": entry.actor_id},
        "subject_id": str(entry.subject_id) if entry.subject_id else None,
        "details": entry.details,
        "mac": entry.mac.hex(),
    }
