"""The audit chain: any edit, deletion, insertion, reordering or truncation is caught, and the
entry named is the first one that does not fit. Entries cut from the end with the head rewound
to match are caught by the checkpoint in the keystore."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from pledge import worker
from pledge.access.context import Actor, ActorKind
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.core.db import transaction
from pledge.crypto.keystore import AuditCheckpoint
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.audit.conftest import LENGTH
from tests.conftest import make_tenant

# An entry's columns but its place (tenant, seq): what a swap of two entries exchanges.
ENTRY_CONTENT = (
    "occurred_at",
    "event",
    "actor_kind",
    "actor_id",
    "subject_id",
    "details",
    "prev_mac",
    "mac",
)


def _entries(session: Session, tenant_id: uuid.UUID) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.tenant_id == tenant_id).order_by(AuditEntry.seq)
        )
    )


def _shift_up(session: Session, tenant_id: uuid.UUID, from_seq: int) -> None:
    for seq in range(LENGTH, from_seq - 1, -1):  # from the end, so no key collides
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq == seq)
            .values(seq=seq + 1)
        )


def tamper(session: Session, tenant_id: uuid.UUID, kind: str, i: int, j: int) -> int:
    """Apply one tampering; return the seq that verification must name."""
    where = (AuditEntry.tenant_id == tenant_id, AuditEntry.seq == i)
    if kind == "edit":
        session.execute(update(AuditEntry).where(*where).values(details={"n": "forged"}))
        return i
    if kind == "edit_event":
        session.execute(
            update(AuditEntry).where(*where).values(event=AuditEvent.SUBJECT_ERASED.value)
        )
        return i
    if kind == "edit_time":
        session.execute(
            update(AuditEntry).where(*where).values(occurred_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
        return i
    if kind == "delete":
        session.execute(delete(AuditEntry).where(*where))
        return i
    if kind == "truncate":
        session.execute(
            delete(AuditEntry).where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq >= i)
        )
        return i
    if kind == "truncate_and_rewind":
        # What someone with write access to the data store alone can do: cut the tail and
        # point the head at the new last entry, so the chain and its head agree.
        last = session.get(AuditEntry, (tenant_id, i - 1)) if i > 1 else None
        session.execute(
            delete(AuditEntry).where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq >= i)
        )
        session.execute(
            update(AuditHead)
            .where(AuditHead.tenant_id == tenant_id)
            .values(seq=i - 1, mac=last.mac if last else audit.GENESIS)
        )
        return i
    if kind == "insert":
        template = session.get(AuditEntry, (tenant_id, i))
        assert template is not None
        _shift_up(session, tenant_id, i)
        session.execute(
            insert(AuditEntry).values(
                tenant_id=tenant_id,
                seq=i,
                occurred_at=template.occurred_at,
                event=template.event,
                actor_kind=template.actor_kind,
                actor_id=template.actor_id,
                subject_id=uuid.uuid4(),
                details={"n": "inserted"},
                prev_mac=template.prev_mac,
                mac=bytes(32),
            )
        )
        return i
    if kind == "reorder":
        a, b = sorted((i, j))
        if a == b:
            b = a + 1 if a < LENGTH else a - 1
            a, b = sorted((a, b))
        ea, eb = session.get(AuditEntry, (tenant_id, a)), session.get(AuditEntry, (tenant_id, b))
        assert ea is not None and eb is not None
        va = {c: getattr(ea, c) for c in ENTRY_CONTENT}
        vb = {c: getattr(eb, c) for c in ENTRY_CONTENT}
        session.expunge_all()
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq == a)
            .values(**vb)
        )
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq == b)
            .values(**va)
        )
        return a
    raise AssertionError(kind)


def test_an_untouched_chain_verifies(runtime: Runtime, chain: uuid.UUID) -> None:
    with transaction(runtime.sessions) as session:
        result = audit.verify_chain(session, runtime.keystore, chain)
    assert result.ok and result.checked == LENGTH


def _checkpoint(runtime: Runtime, tenant_id: uuid.UUID) -> audit.CheckpointResult:
    with transaction(runtime.sessions) as session:
        return audit.checkpoint(session, runtime.keystore, tenant_id)


def _drop_checkpoints(runtime: Runtime) -> None:
    with runtime.keystore.engine.begin() as conn:
        conn.execute(delete(AuditCheckpoint))


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(
        [
            "edit",
            "edit_event",
            "edit_time",
            "delete",
            "truncate",
            "truncate_and_rewind",
            "insert",
            "reorder",
        ]
    ),
    i=st.integers(min_value=1, max_value=LENGTH),
    j=st.integers(min_value=1, max_value=LENGTH),
    anchored=st.booleans(),
)
def test_any_tampering_is_caught_at_the_first_bad_entry(
    runtime: Runtime, chain: uuid.UUID, kind: str, i: int, j: int, anchored: bool
) -> None:
    # Cut before any checkpoint, with the head rewound, the chain is whole as far as the data
    # store can tell: that window is documented in decision 0005, not claimed here.
    assume(anchored or kind != "truncate_and_rewind")
    if anchored:
        assert _checkpoint(runtime, chain).checkpoint is not None
    session = runtime.sessions()
    try:
        expected = tamper(session, chain, kind, i, j)
        session.flush()
        session.expire_all()
        result = audit.verify_chain(session, runtime.keystore, chain)
        assert not result.ok, f"{kind} at {i} went unnoticed"
        assert result.first_bad_seq == expected, (kind, i, j, result)
    finally:
        session.rollback()
        session.close()
        _drop_checkpoints(runtime)


def test_entries_cut_after_a_checkpoint_are_caught_though_the_head_was_rewound(
    runtime: Runtime, chain: uuid.UUID
) -> None:
    taken = _checkpoint(runtime, chain)
    assert taken.verified.ok and taken.moved
    assert taken.checkpoint is not None and taken.checkpoint.seq == LENGTH
    with transaction(runtime.sessions) as session:
        tamper(session, chain, "truncate_and_rewind", 10, 0)
    with transaction(runtime.sessions) as session:
        result = audit.verify_chain(session, runtime.keystore, chain)
    assert not result.ok and result.first_bad_seq == 10
    day = f"{taken.checkpoint.taken_at:%Y-%m-%d}"
    assert result.reason is not None
    assert result.reason.startswith(f"entries after 9 are gone: a checkpoint of {day}")
    assert result.reason.endswith(f"recorded entry {LENGTH}")
    # Nor does a checkpoint taken now anchor the shortened chain.
    again = _checkpoint(runtime, chain)
    assert not again.verified.ok and not again.moved
    assert again.checkpoint == taken.checkpoint


def test_a_chain_rebuilt_to_the_checkpoint_length_is_caught_at_the_anchored_entry(
    runtime: Runtime, chain: uuid.UUID
) -> None:
    """Cut the tail and append as many new entries (what the audit key allows): the chain
    holds together and reaches the checkpoint, but not with the entry anchored."""
    assert _checkpoint(runtime, chain).moved
    with transaction(runtime.sessions) as session:
        tamper(session, chain, "truncate_and_rewind", LENGTH - 2, 0)
    with runtime.tenant_context("acme") as ctx:
        for n in range(3):
            audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"n": f"again {n}"})
    with transaction(runtime.sessions) as session:
        result = audit.verify_chain(session, runtime.keystore, chain)
    assert not result.ok and result.first_bad_seq == LENGTH
    assert result.reason is not None and "is not the one a checkpoint" in result.reason


def test_a_checkpoint_is_refused_on_a_tampered_chain(runtime: Runtime, chain: uuid.UUID) -> None:
    with transaction(runtime.sessions) as session:
        tamper(session, chain, "edit", 5, 0)
    refused = _checkpoint(runtime, chain)
    assert not refused.verified.ok and refused.verified.first_bad_seq == 5
    assert refused.checkpoint is None and not refused.moved
    assert runtime.keystore.audit_checkpoint(chain) is None


def test_checkpoints_follow_the_chain_forward_only(runtime: Runtime, chain: uuid.UUID) -> None:
    first = _checkpoint(runtime, chain)
    with runtime.tenant_context("acme") as ctx:
        audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"n": "later"})
    later = _checkpoint(runtime, chain)
    assert first.checkpoint is not None and later.checkpoint is not None
    assert (first.checkpoint.seq, later.checkpoint.seq) == (LENGTH, LENGTH + 1) and later.moved
    # Nothing new: the checkpoint stays, with the date it was taken.
    same = _checkpoint(runtime, chain)
    assert same.checkpoint == later.checkpoint and not same.moved


def test_the_worker_checkpoints_every_tenant_and_reports_a_broken_chain(
    runtime: Runtime, chain: uuid.UUID
) -> None:
    other = make_tenant(runtime, "other")
    with transaction(runtime.sessions) as session:
        tamper(session, other, "edit", 1, 0)
    report = worker.run_once(runtime)
    anchored = runtime.keystore.audit_checkpoint(chain)
    assert anchored is not None and anchored.seq == LENGTH
    assert runtime.keystore.audit_checkpoint(other) is None
    assert report.audit_broken == ["other: entry 1"] and "AUDIT CHAIN BROKEN" in report.summary()
    # The next cycles walk only what came after the checkpoint, and move it along.
    with runtime.tenant_context("acme") as ctx:
        audit.record(ctx, AuditEvent.SUBJECT_CREATED, subject_id=uuid.uuid4())
    worker.run_once(runtime)
    moved = runtime.keystore.audit_checkpoint(chain)
    assert moved is not None and moved.seq == LENGTH + 1
    # An entry after the checkpoint edited: the next cycle reports it and anchors nothing.
    with runtime.tenant_context("acme") as ctx:
        audit.record(ctx, AuditEvent.SUBJECT_CREATED, subject_id=uuid.uuid4())
    with transaction(runtime.sessions) as session:
        tamper(session, chain, "edit", LENGTH + 2, 0)
    report = worker.run_once(runtime)
    assert f"acme: entry {LENGTH + 2}" in report.audit_broken
    assert runtime.keystore.audit_checkpoint(chain) == moved


def test_a_checkpoint_is_never_taken_in_a_transaction_that_appended(
    runtime: Runtime, chain: uuid.UUID
) -> None:
    with pytest.raises(RuntimeError), runtime.tenant_context("acme") as ctx:
        audit.record(ctx, AuditEvent.SUBJECT_VIEWED)
        audit.checkpoint(ctx.session, ctx.keystore, ctx.tenant_id)
    assert runtime.keystore.audit_checkpoint(chain) is None


def test_verifying_from_the_console_checkpoints_once_committed(
    runtime: Runtime, chain: uuid.UUID
) -> None:
    with pytest.raises(RuntimeError), runtime.tenant_context("acme") as ctx:
        assert audit.verify_and_record(ctx).verified.ok
        raise RuntimeError("the request failed after verifying")
    assert runtime.keystore.audit_checkpoint(chain) is None
    with runtime.tenant_context("acme") as ctx:
        assert audit.verify_and_record(ctx).verified.ok
    anchored = runtime.keystore.audit_checkpoint(chain)
    assert anchored is not None and anchored.seq == LENGTH
    with runtime.tenant_context("acme") as ctx:
        # The verification itself was recorded after the entry anchored, and the chain holds.
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok


def test_an_entry_forged_without_the_key_is_caught(runtime: Runtime, chain: uuid.UUID) -> None:
    """Someone with write access to the database but not the keystore cannot extend the
    chain: the MAC is keyed."""
    import hashlib

    with transaction(runtime.sessions) as session:
        last = _entries(session, chain)[-1]
        content = audit.canonical(
            LENGTH + 1, last.occurred_at, "subject.viewed", "user", None, None, {}
        )
        session.execute(
            insert(AuditEntry).values(
                tenant_id=chain,
                seq=LENGTH + 1,
                occurred_at=last.occurred_at,
                event="subject.viewed",
                actor_kind="user",
                actor_id=None,
                subject_id=None,
                details={},
                prev_mac=last.mac,
                mac=hashlib.sha256(last.mac + content).digest(),
            )
        )
        result = audit.verify_chain(session, runtime.keystore, chain)
        session.rollback()
    assert not result.ok and result.first_bad_seq == LENGTH + 1


def test_an_entry_commits_or_rolls_back_with_its_act(runtime: Runtime, tenant: str) -> None:
    with pytest.raises(RuntimeError), runtime.tenant_context(tenant) as ctx:
        subjects.create_subject(ctx, [FieldInput("email", "ghost@example.com")])
        raise RuntimeError("the request failed after the write")
    with runtime.tenant_context(tenant) as ctx:
        events = [e.event for e in _entries(ctx.session, ctx.tenant_id)]
        assert events == ["tenant.created"]
        assert reading.count_subjects(ctx) == {}
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok


def test_a_rolled_back_savepoint_takes_its_entries_and_the_chain_goes_on(
    runtime: Runtime, tenant: str
) -> None:
    # Appends after the first in a transaction take the head from the transaction's memo; a
    # savepoint rolled back (a page's form that failed) must not leave it pointing past the
    # entries it took with it.
    with runtime.tenant_context(tenant) as ctx:
        before = audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"n": "before"})
        with pytest.raises(RuntimeError), ctx.session.begin_nested():
            audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"n": "undone"})
            raise RuntimeError("the form's action failed")
        after = audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"n": "after"})
        kept = audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"n": "last"})
    assert (after, kept) == (before + 1, before + 2)
    with runtime.tenant_context(tenant) as ctx:
        entries = _entries(ctx.session, ctx.tenant_id)
        assert [e.details.get("n") for e in entries[1:]] == ["before", "after", "last"]
        result = audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id)
    assert result.ok and result.checked == 4


def test_concurrent_appends_keep_one_unbroken_chain(runtime: Runtime, tenant: str) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for k in range(15):
                with runtime.tenant_context(tenant, Actor(ActorKind.SYSTEM, f"w{n}")) as ctx:
                    audit.record(ctx, AuditEvent.SUBJECT_VIEWED, details={"w": n, "k": k})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with runtime.tenant_context(tenant) as ctx:
        result = audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id)
    assert result.ok and result.checked == 1 + 4 * 15


def test_entries_hold_ids_not_personal_values(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = subjects.create_subject(
            ctx,
            [
                FieldInput("email", "private.person@example.com"),
                FieldInput("first_name", "Privata", "user.name.first"),
            ],
        )
        reading.read_subject(ctx, sid)
        rows = _entries(ctx.session, ctx.tenant_id)
    text = repr([(e.event, e.actor_id, e.subject_id, e.details) for e in rows])
    assert "private.person" not in text and "Privata" not in text
    assert str(sid) in text
