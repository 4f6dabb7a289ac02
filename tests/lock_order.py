"""Two transactions at once on PostgreSQL, for the tests of the lock order (decisions 0005,
0010): the tenant row, then request rows, then people's rows, then the audit chain's head.

`at_once` stops one act just after it has locked the audit head and runs the other until it
waits for a lock (or is done); then the first goes on. Taken in opposite orders, the two wait
for each other and PostgreSQL aborts one (a deadlock): the act's failure is re-raised in the
test. SQLite's writers take turns (BEGIN IMMEDIATE): there the tests are skipped."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, text

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.consent import privacy_state
from pledge.core.errors import SubjectErased
from pledge.runtime import Runtime
from tests.conftest import until_done_or_blocked

# A wait the order of the locks should have made impossible fails the test, not hangs it: a
# lock is waited for 30 seconds at most, a transaction a minute.
LOCK_TIMEOUT, TIMEOUT = "30s", 60.0


def postgresql_only(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")


def waits_time_out(ctx: TenantContext) -> None:
    """A wait the order of the locks should have made impossible fails the test, not hangs
    it (for a transaction the test runs itself, not through `Run`)."""
    ctx.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


Act = Callable[[TenantContext], object]


class Run:
    """`act` in a transaction of its own, in a thread; with `pause_at_head`, stopped just
    after the transaction has locked the tenant's audit head (its SELECT … FOR UPDATE of
    `audit_heads` ran) until `resume`."""

    def __init__(
        self, runtime: Runtime, slug: str, act: Act, *, pause_at_head: bool = False
    ) -> None:
        self.outcome: list[object] = []
        self.failure: list[BaseException] = []
        self._engine = runtime.engine
        self._at_head, self._go = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(runtime, slug, act))
        self._pausing = pause_at_head
        if pause_at_head:
            event.listen(self._engine, "after_cursor_execute", self._after)
        self._thread.start()
        if pause_at_head and not self._at_head.wait(TIMEOUT):
            self.resume()
            self.join()
            raise AssertionError("the act never locked the audit head")

    def _run(self, runtime: Runtime, slug: str, act: Act) -> None:
        try:
            with runtime.tenant_context(slug) as ctx:
                waits_time_out(ctx)
                self.outcome.append(act(ctx))
        except BaseException as exc:  # re-raised in the test's thread
            self.failure.append(exc)

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            threading.current_thread() is self._thread
            and not self._at_head.is_set()
            and "FROM audit_heads" in statement
            and "FOR UPDATE" in statement
        ):
            self._at_head.set()
            self._go.wait(TIMEOUT)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def resume(self) -> None:
        self._go.set()

    def join(self) -> None:
        self._thread.join(TIMEOUT)
        if self._pausing:  # (not from the thread's own call of the listener)
            self._pausing = False
            event.remove(self._engine, "after_cursor_execute", self._after)
        assert not self._thread.is_alive(), "a transaction neither finished nor failed"

    def result(self) -> object:
        self.join()
        if self.failure:
            raise self.failure[0]
        return self.outcome[0]


def at_once(runtime: Runtime, slug: str, act: Act, change: Act) -> tuple[object, object]:
    """`act` holds the audit head; `change` begins meanwhile and runs until it waits for a
    lock (or is done); then `act` goes on. What each returned, both having committed."""
    acting = Run(runtime, slug, act, pause_at_head=True)
    try:
        changing = Run(runtime, slug, change)
        until_done_or_blocked(runtime, changing.thread, "the second transaction")
    finally:
        acting.resume()
        acting.join()
    return acting.result(), changing.result()


def chain_holds(runtime: Runtime, slug: str) -> bool:
    with runtime.tenant_context(slug) as ctx:
        return audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok


def restricts(person_id: str | uuid.UUID) -> Act:
    """The privacy-state API's change (`PUT …/privacy-state` with `restricted: true`), which
    locks the person's row, then audits: what it answered, or the refusal's kind."""

    def restricts(ctx: TenantContext) -> str:
        try:
            privacy_state.update_privacy_state(ctx, uuid.UUID(str(person_id)), restricted=True)
        except SubjectErased:
            return "subject_erased"
        return "restricted"

    return restricts
