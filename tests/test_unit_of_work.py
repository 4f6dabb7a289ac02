"""Invariant 4: side effects leave only after the transaction commits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pledge.core.clock import utcnow
from pledge.core.db import after_commit, read_transaction, transaction
from pledge.core.errors import InvalidInput
from pledge.runtime import Runtime
from pledge.subjects import reading, service
from pledge.subjects.models import Subject
from pledge.subjects.service import FieldInput
from pledge.tenants.models import Tenant


def test_side_effects_run_after_commit_and_never_after_rollback(
    runtime: Runtime, tenant: str
) -> None:
    sent: list[str] = []
    with runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, [FieldInput("email", "kept@example.com")])
        after_commit(ctx.session, lambda: sent.append("welcome mail"))
        assert sent == []  # not before the commit
    assert sent == ["welcome mail"]

    with pytest.raises(RuntimeError), runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, [FieldInput("email", "dropped@example.com")])
        after_commit(ctx.session, lambda: sent.append("must not leave"))
        raise RuntimeError("boom")
    assert sent == ["welcome mail"]


def test_a_savepoint_rolled_back_drops_only_its_own_side_effects(
    runtime: Runtime, tenant: str
) -> None:
    """A form step that fails inside a savepoint (bad input, shown on the page) undoes its
    own writes and e-mails; what the transaction queued before it, and after, still leaves."""
    sent: list[str] = []
    with runtime.tenant_context(tenant) as ctx:
        after_commit(ctx.session, lambda: sent.append("before"))
        with pytest.raises(RuntimeError), ctx.session.begin_nested():
            after_commit(ctx.session, lambda: sent.append("inside, undone"))
            with ctx.session.begin_nested():  # a savepoint in it, released
                after_commit(ctx.session, lambda: sent.append("nested inside, undone"))
            raise RuntimeError("refused")
        with ctx.session.begin_nested():  # released: its actions stand
            after_commit(ctx.session, lambda: sent.append("released"))
        assert sent == []  # a savepoint released is not the transaction's commit
        after_commit(ctx.session, lambda: sent.append("after"))
    assert sent == ["before", "released", "after"]


def test_a_failing_side_effect_does_not_undo_the_commit(runtime: Runtime, tenant: str) -> None:
    def broken() -> None:
        raise ConnectionError("mail server down")

    with runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, [FieldInput("email", "stays@example.com")])
        after_commit(ctx.session, broken)
    with transaction(runtime.sessions) as session:
        assert session.info == {}
    with runtime.tenant_context(tenant) as ctx:
        assert reading.count_subjects(ctx) == {"active": 1}


def test_a_read_transaction_reads_one_snapshot_and_never_holds_writers_up(
    runtime: Runtime, tenant: str
) -> None:
    # An audit chain's walk may take seconds: writers must go on meanwhile (on SQLite every
    # other transaction begins IMMEDIATE, and would wait behind it), and the walk must not
    # see what they commit half-way (its head and its entries would disagree).
    with runtime.tenant_context(tenant) as ctx:
        service.create_subject(ctx, [FieldInput("email", "before@example.com")])
    with read_transaction(runtime.sessions) as reading:
        count = select(func.count()).select_from(Subject)
        assert reading.scalar(count) == 1
        with runtime.tenant_context(tenant) as ctx:  # would wait for the lock, then fail
            service.create_subject(ctx, [FieldInput("email", "during@example.com")])
        assert reading.scalar(count) == 1  # the snapshot it began with
    with read_transaction(runtime.sessions) as reading:
        assert reading.scalar(count) == 2


def test_a_flush_refused_inside_a_savepoint_keeps_the_transactions_earlier_side_effects(
    runtime: Runtime, tenant: str
) -> None:
    """A savepoint whose flush fails (a unique key taken, as two sign-ups at once) is rolled
    back and the transaction goes on and commits: the e-mail queued before the savepoint
    must still leave, like when the savepoint fails any other way."""
    sent: list[str] = []
    with runtime.tenant_context(tenant) as ctx:
        after_commit(ctx.session, lambda: sent.append("before"))
        with pytest.raises(IntegrityError), ctx.session.begin_nested():
            ctx.session.add(Tenant(slug=tenant, name="Clash", created_at=utcnow()))
            ctx.session.flush()
        after_commit(ctx.session, lambda: sent.append("after"))
    assert sent == ["before", "after"]


def test_a_nul_refused_at_flush_inside_a_savepoint_keeps_earlier_side_effects(
    runtime: Runtime, tenant: str
) -> None:
    """`in_savepoint` (forms) catches InvalidInput; the NUL guard raises it from a flush."""
    sent: list[str] = []
    with runtime.tenant_context(tenant) as ctx:
        after_commit(ctx.session, lambda: sent.append("before"))
        with pytest.raises(InvalidInput), ctx.session.begin_nested():
            ctx.session.add(Tenant(slug="nul-tenant", name="a\x00b", created_at=utcnow()))
            ctx.session.flush()
    assert sent == ["before"]


def test_an_outer_savepoint_rolled_back_after_an_inner_failed_flush_drops_its_side_effects(
    runtime: Runtime, tenant: str
) -> None:
    """The failed flush forgot every savepoint's mark: the outer savepoint, rolled back later,
    then kept the e-mail queued inside it — an e-mail about work that was undone."""
    sent: list[str] = []
    with (
        runtime.tenant_context(tenant) as ctx,
        pytest.raises(RuntimeError),
        ctx.session.begin_nested(),
    ):
        with pytest.raises(IntegrityError), ctx.session.begin_nested():
            ctx.session.add(Tenant(slug=tenant, name="Clash", created_at=utcnow()))
            ctx.session.flush()
        after_commit(ctx.session, lambda: sent.append("inside the outer, undone"))
        raise RuntimeError("the form step is refused")
    assert sent == []
