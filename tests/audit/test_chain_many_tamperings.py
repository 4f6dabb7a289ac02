"""Several tamperings of one chain at once — edits, deletions, insertions, reorderings, cuts —
and `verify` still names the lowest entry that is not the one written there.

The expectation comes from a model of the chain, not from `verify`'s mechanics: each seq maps
to what the data store now holds there (the original entry of some seq, edited or not, or a
forgery). The first bad entry is the lowest seq, up to the end the head and checkpoint
record, that does not hold its own original entry unedited. Tamperings can undo each other
(two swaps of the same pair); the model follows, and then the chain must verify."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, and_, delete, insert, select, update
from sqlalchemy.orm import Session

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.runtime import Runtime
from tests.audit.conftest import LENGTH
from tests.audit.test_chain import ENTRY_CONTENT, _checkpoint, _drop_checkpoints


@dataclass(frozen=True)
class Held:
    """What the data store holds at a seq: the original entry of `origin`, maybe edited, or
    a forgery (`origin` None)."""

    origin: int | None
    edited: bool = False


class Tamperer:
    """Tamperings by SQL on the data store, each mirrored on the model."""

    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.model = {seq: Held(seq) for seq in range(1, LENGTH + 1)}
        self.forged = 0

    def seqs(self) -> list[int]:
        return sorted(self.model)

    def _at(self, seq: int) -> ColumnElement[bool]:
        return and_(AuditEntry.tenant_id == self.tenant_id, AuditEntry.seq == seq)

    def _edited(self, seq: int) -> None:
        self.model[seq] = Held(self.model[seq].origin, edited=True)

    def edit(self, seq: int, what: str) -> None:
        values: dict[str, object] = {
            "details": {"n": "forged"},
            "event": AuditEvent.SUBJECT_ERASED.value,
            "occurred_at": datetime(2020, 1, 1, tzinfo=UTC),
        }
        self.session.execute(update(AuditEntry).where(self._at(seq)).values({what: values[what]}))
        self._edited(seq)

    def delete(self, seq: int) -> None:
        self.session.execute(delete(AuditEntry).where(self._at(seq)))
        del self.model[seq]

    def insert(self, seq: int) -> None:
        """A made-up entry at `seq`, everything from there on moved one up."""
        template = self.session.get(AuditEntry, (self.tenant_id, seq))
        assert template is not None
        values = {c: getattr(template, c) for c in ENTRY_CONTENT}
        self.session.expunge_all()
        for s in reversed([s for s in self.seqs() if s >= seq]):  # from the end: no key clash
            self.session.execute(update(AuditEntry).where(self._at(s)).values(seq=s + 1))
            self.model[s + 1] = self.model.pop(s)
        self.forged += 1
        values.update(subject_id=uuid.uuid4(), details={"n": f"inserted {self.forged}"})
        values["mac"] = bytes(32)
        self.session.execute(insert(AuditEntry).values(tenant_id=self.tenant_id, seq=seq, **values))
        self.model[seq] = Held(None)

    def swap(self, a: int, b: int) -> None:
        """Two entries trade places: each keeps its content and MACs, under the other's seq."""
        ea = self.session.get(AuditEntry, (self.tenant_id, a))
        eb = self.session.get(AuditEntry, (self.tenant_id, b))
        assert ea is not None and eb is not None
        va = {c: getattr(ea, c) for c in ENTRY_CONTENT}
        vb = {c: getattr(eb, c) for c in ENTRY_CONTENT}
        self.session.expunge_all()
        self.session.execute(update(AuditEntry).where(self._at(a)).values(**vb))
        self.session.execute(update(AuditEntry).where(self._at(b)).values(**va))
        self.model[a], self.model[b] = self.model[b], self.model[a]

    def cut(self, seq: int, *, rewind: bool) -> None:
        """Every entry from `seq` on deleted; with `rewind`, the head moved back to the entry
        before (what write access to the data store alone allows)."""
        last = self.session.get(AuditEntry, (self.tenant_id, seq - 1))
        mac = last.mac if last is not None else audit.GENESIS
        self.session.expunge_all()
        self.session.execute(
            delete(AuditEntry).where(AuditEntry.tenant_id == self.tenant_id, AuditEntry.seq >= seq)
        )
        for s in [s for s in self.seqs() if s >= seq]:
            del self.model[s]
        if rewind:
            self.session.execute(
                update(AuditHead)
                .where(AuditHead.tenant_id == self.tenant_id)
                .values(seq=seq - 1, mac=mac)
            )

    def first_bad(self) -> int | None:
        """The lowest seq not holding its own original entry, unedited; the chain must reach
        LENGTH (the head's seq, or the checkpoint's when the head was rewound)."""
        end = max([LENGTH, *self.model])
        for seq in range(1, end + 1):
            if self.model.get(seq) != Held(seq):
                return seq
        return None


def _seqs(session: Session, tenant_id: uuid.UUID) -> list[int]:
    return list(
        session.scalars(
            select(AuditEntry.seq).where(AuditEntry.tenant_id == tenant_id).order_by(AuditEntry.seq)
        )
    )


KINDS = ["edit", "delete", "insert", "reorder", "truncate", "truncate_and_rewind"]


def _apply(data: st.DataObject, t: Tamperer, anchored: bool) -> str:
    """Draw one tampering that the chain as it now stands allows; apply it; describe it."""
    seqs = t.seqs()
    kinds = [
        k
        for k in KINDS
        if (k != "reorder" or len(seqs) >= 2)
        and (k not in ("truncate", "truncate_and_rewind") or len(seqs) >= 2)
        # Cut with the head rewound before any checkpoint: the data store alone cannot tell
        # (decision 0005), so only with a checkpoint taken.
        and (k != "truncate_and_rewind" or anchored)
    ]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "edit":
        seq = data.draw(st.sampled_from(seqs), label="seq")
        what = data.draw(st.sampled_from(["details", "event", "occurred_at"]), label="column")
        t.edit(seq, what)
        return f"edit {what} of {seq}"
    if kind == "delete":
        # A non-final entry: deleting the last is a cut, drawn as `truncate`.
        seq = data.draw(st.sampled_from(seqs[:-1] or seqs), label="seq")
        t.delete(seq)
        return f"delete {seq}"
    if kind == "insert":
        seq = data.draw(st.sampled_from(seqs), label="seq")
        t.insert(seq)
        return f"insert at {seq}"
    if kind == "reorder":
        a = data.draw(st.sampled_from(seqs), label="a")
        b = data.draw(st.sampled_from([s for s in seqs if s != a]), label="b")
        t.swap(a, b)
        return f"swap {a} and {b}"
    seq = data.draw(st.sampled_from(seqs[1:]), label="seq")  # keep at least one entry
    t.cut(seq, rewind=kind == "truncate_and_rewind")
    return f"{kind} from {seq}"


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), count=st.integers(min_value=2, max_value=5), anchored=st.booleans())
def test_several_tamperings_are_caught_at_the_lowest_bad_entry(
    runtime: Runtime, chain: uuid.UUID, data: st.DataObject, count: int, anchored: bool
) -> None:
    if anchored:
        assert _checkpoint(runtime, chain).checkpoint is not None
    session = runtime.sessions()
    try:
        t = Tamperer(session, chain)
        done = []
        for _ in range(count):
            if not t.seqs():
                break
            done.append(_apply(data, t, anchored))
        session.flush()
        session.expire_all()
        assert _seqs(session, chain) == t.seqs()  # the model mirrors the data store
        expected = t.first_bad()
        result = audit.verify_chain(session, runtime.keystore, chain)
        if expected is None:  # the tamperings undid each other
            assert result.ok, (done, result)
        else:
            assert not result.ok, f"{done} went unnoticed"
            assert result.first_bad_seq == expected, (done, result)
    finally:
        session.rollback()
        session.close()
        _drop_checkpoints(runtime)


def test_the_model_agrees_with_a_chain_left_alone(runtime: Runtime, chain: uuid.UUID) -> None:
    """The expectation is not vacuous: untouched, the model and `verify` both find the chain
    whole, and one swap undone by the same swap leaves it whole again."""
    session = runtime.sessions()
    try:
        t = Tamperer(session, chain)
        assert t.first_bad() is None
        t.swap(3, 7)
        session.flush()
        session.expire_all()
        assert t.first_bad() == 3
        assert audit.verify_chain(session, runtime.keystore, chain).first_bad_seq == 3
        t.swap(3, 7)
        session.flush()
        session.expire_all()
        assert t.first_bad() is None
        assert audit.verify_chain(session, runtime.keystore, chain).ok
    finally:
        session.rollback()
        session.close()
