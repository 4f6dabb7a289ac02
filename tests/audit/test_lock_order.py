"""An audited act of a tenant and a change of the tenant's settings at once (PostgreSQL).

An append locked the chain's head, then wrote its entries, whose row refers to the tenant
(the tenant row FOR KEY SHARE); a settings change locks the tenant row FOR UPDATE, then
audits the change (the head). Interleaved, each waited for the other and PostgreSQL aborted
one (a deadlock): the operator's command or the act — a verification from the console, a
gate check — failed. The tenant row is taken first by both: one waits for the other's end,
and both are done."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select, text

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.models import AuditEntry
from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.gate import service as gate
from pledge.presets import clik
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from tests.conftest import until_done_or_blocked

# A wait the order of the locks should have made impossible fails the test, not hangs it: a
# lock is waited for 30 seconds at most, a transaction a minute.
LOCK_TIMEOUT, TIMEOUT = "30s", 60.0


def _postgresql_only(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")


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
                ctx.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
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


def _at_once(runtime: Runtime, slug: str, act: Act, change: Act) -> tuple[object, object]:
    """`act` holds the audit head; `change` begins meanwhile and runs until it waits for a
    lock (or is done); then `act` goes on. What each returned, both having committed."""
    acting = Run(runtime, slug, act, pause_at_head=True)
    try:
        changing = Run(runtime, slug, change)
        until_done_or_blocked(runtime, changing.thread, "the settings change")
    finally:
        acting.resume()
        acting.join()
    return acting.result(), changing.result()


def _events(runtime: Runtime, slug: str) -> list[str]:
    with runtime.tenant_context(slug) as ctx:
        return list(
            ctx.session.scalars(
                select(AuditEntry.event)
                .where(AuditEntry.tenant_id == ctx.tenant_id)
                .order_by(AuditEntry.seq)
            )
        )


def _chain_holds(runtime: Runtime, slug: str) -> bool:
    with runtime.tenant_context(slug) as ctx:
        return audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok


def test_the_chain_verified_from_the_console_while_the_privacy_contact_is_changed(
    runtime: Runtime, tenant: str
) -> None:
    _postgresql_only(runtime)

    def verifies(ctx: TenantContext) -> bool:
        return audit.verify_and_record(ctx).verified.ok

    def sets_contact(ctx: TenantContext) -> bool:
        return tenants.set_privacy_contact(ctx, "privacy@acme.example")

    verified, changed = _at_once(runtime, tenant, verifies, sets_contact)
    assert verified is True and changed is True
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.tenant.privacy_contact == "privacy@acme.example"
    # Both audited, the change after the verification it waited for; the chain holds.
    assert _events(runtime, tenant)[-2:] == ["audit.verified", "tenant.contact_set"]
    assert _chain_holds(runtime, tenant)


def test_a_gate_check_while_the_childrens_rules_are_changed(runtime: Runtime, tenant: str) -> None:
    # The app asks whether it may send the newsletter to a subscriber as the operator raises
    # the age under which a person is a child.
    _postgresql_only(runtime)
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        subject_id = intake.collect(
            ctx,
            "newsletter",
            [
                FieldInput("email", "sam@example.com"),
                FieldInput("first_name", "Sam", "user.name.first"),
            ],
            [ConsentChoice("newsletter", True)],
        ).subject_id

    def checks(ctx: TenantContext) -> bool:
        return gate.may(ctx, subject_id, "newsletter", "email").allowed

    def raises_age(ctx: TenantContext) -> list[str]:
        return tenants.set_children_rules(ctx, child_age=18)

    allowed, changed = _at_once(runtime, tenant, checks, raises_age)
    assert allowed is True and changed == ["child_age"]
    assert _events(runtime, tenant)[-2:] == ["gate.checked", "tenant.children_rules_set"]
    assert _chain_holds(runtime, tenant)
