"""A tenant's clock settings changed while requests are open: an extension already granted
stays granted and its date never falls below the one the requester was told, and a change made
while a request is received or acted on leaves no due date counted from the old settings — on
both databases (the races on PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import pytest

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.core.clock import frozen
from pledge.rights import service as rights
from pledge.rights import transitions, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.tenants import service as tenants
from tests.cli.test_cli import run
from tests.conftest import Second, waiting_on_a_lock
from tests.lock_order import postgresql_only, waits_time_out
from tests.rights.test_clock_cases import at, extension_letter, verified
from tests.rights.test_pages import EMAIL, person, staff_client
from tests.rights.test_tenant_clock_settings import due_on, received

__all__ = ["person"]  # the fixture: Clik's purposes and a customer with a phone on file


def _uk_request_extended_on_a_closing_day(runtime: Runtime, tenant: str) -> str:
    """Received 5 January in the UK, identity confirmed Tuesday 20 January: the first month
    ends Friday 20 February, a closing day, so on Monday 23 February; the extension, notified
    that Monday, runs to Monday 20 April, a closing day too, so to Tuesday 21 April."""
    request_id = received(runtime, "2026-01-05", "access", "UK")
    verified(runtime, tenant, request_id, "2026-01-20")
    with runtime.tenant_context(tenant) as ctx:
        tenants.set_closing_days(ctx, [date(2026, 2, 20), date(2026, 4, 20)])
    with frozen(at("2026-02-23")), runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        assert rights.deadlines(ctx, request).first_due == date(2026, 2, 23)
        workflow.extend(ctx, request, "ten years of support chats to go through")
    assert "We will answer by 21 April 2026 at the latest" in extension_letter(runtime, tenant)
    assert due_on(runtime, request_id) == "2026-04-21"
    return request_id


def test_removing_closing_days_keeps_an_extension_and_the_date_the_requester_was_told(
    runtime: Runtime, person: str
) -> None:
    request_id = _uk_request_extended_on_a_closing_day(runtime, person)

    # The operator finds both days were no holidays after all: without them the first month
    # ended on 20 February, before the extension was notified, and the extended date is
    # 20 April. The change is made; the extension stays granted, and the requester keeps the
    # 21 April they were told.
    with frozen(at("2026-02-24")), runtime.tenant_context(person) as ctx:
        days, moved = tenants.set_closing_days(ctx, remove=[date(2026, 2, 20), date(2026, 4, 20)])
        assert days == [] and moved == 0
    assert due_on(runtime, request_id) == "2026-04-21"
    with frozen(at("2026-02-24")):
        staff, _csrf = staff_client(runtime)
        page = staff.get(f"/requests/{request_id}")
    assert page.status_code == 200, page.text
    assert "<dt>Due</dt><dd>2026-04-21</dd>" in page.text and "(extended)" in page.text

    # A shorter promise leaves it too: once an extension is notified, its date is the one to
    # meet.
    with frozen(at("2026-02-24")), runtime.tenant_context(person) as ctx:
        assert tenants.set_rights_promise(ctx, "*", "10 days") == 0
    assert due_on(runtime, request_id) == "2026-04-21"

    # A closing day that moves the extended date later still moves it.
    with frozen(at("2026-02-25")), runtime.tenant_context(person) as ctx:
        _days, moved = tenants.set_closing_days(ctx, [date(2026, 4, 20), date(2026, 4, 21)])
        assert moved == 1
    assert due_on(runtime, request_id) == "2026-04-22"


def test_an_extension_granted_under_a_closing_day_is_still_shown_to_the_requester(
    runtime: Runtime, person: str
) -> None:
    # The closing day is removed: the status page and the API read the request's deadlines
    # from its stored moments, which once refused the extension as late.
    request_id = _uk_request_extended_on_a_closing_day(runtime, person)
    with frozen(at("2026-02-24")), runtime.tenant_context(person) as ctx:
        tenants.set_closing_days(ctx, remove=[date(2026, 2, 20)])
    with frozen(at("2026-02-24")), runtime.tenant_context(person) as ctx:
        found = rights.deadlines(ctx, rights.get_request(ctx, request_id))
        assert found.extended and found.due == date(2026, 4, 21)


def test_the_cli_refuses_a_restart_without_a_promise_and_says_what_closing_days_are_for(
    runtime: Runtime, person: str, cli_env: dict[str, str]
) -> None:
    with runtime.tenant_context(person) as ctx:
        tenants.set_rights_promise(ctx, "erasure", "10 days")
    # "--remove --restart-on-information" once removed the promise and said nothing of the
    # restart asked for.
    code, out = run(
        "tenant", "rights-promise", "-t", person, "erasure", "--remove", "--restart-on-information"
    )
    assert code == 1 and "--restart-on-information goes with --respond" in out, out
    with runtime.tenant_context(person) as ctx:
        assert ctx.tenant.rights_promises == {
            "erasure": {"respond": "10 days", "restart_on_information": False}
        }
    # An operator reading the help learns a closing day is no company holiday: it lengthens
    # the law's deadline.
    code, out = run("tenant", "closing-days", "--help")
    assert code == 0 and "not the company's own closures" in out, out


# ---------------------------------------------------------------------------------------------
# Two transactions at once (PostgreSQL: SQLite's writers take turns)


def _receives_an_opt_out(ctx: TenantContext) -> int:
    # The public form reads the tenant first (its name, the jurisdictions it offers), then
    # submits.
    assert ctx.tenant.name
    request = rights.submit(ctx, RequestInput("opt_out_sale", Requester(EMAIL, "Paula"), "US-CA"))
    ctx.session.flush()
    return 1 if request.due_on else 0


def _opt_outs_due(runtime: Runtime, tenant: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        return sorted(
            str(r.due_on)
            for r in rights.queue(ctx)
            if r.type == "opt_out_sale" and r.due_on is not None
        )


def test_a_request_received_while_a_closing_day_is_added_is_due_by_the_new_days(
    runtime: Runtime, person: str
) -> None:
    # California: an opt-out within 15 business days. Received Monday 2 March: due 23 March,
    # 24 March with 10 March closed.
    postgresql_only(runtime)
    with frozen(at("2026-03-02")), runtime.tenant_context(person) as ctx:
        tenants.set_closing_days(ctx, [date(2026, 3, 10)])
        # A requester's opt-out arrives before the operator's change is committed.
        intake = Second(runtime, at("2026-03-02"), person, _receives_an_opt_out)
    assert intake.result() == 1
    assert _opt_outs_due(runtime, person) == ["2026-03-24"]


def test_an_extension_granted_while_a_closing_day_is_added_runs_to_the_new_date(
    runtime: Runtime, person: str
) -> None:
    # UK: identity confirmed Tuesday 20 January, the extension runs to Monday 20 April; the
    # operator closes that Monday while a member of staff extends the request.
    postgresql_only(runtime)
    request_id = received(runtime, "2026-01-05", "access", "UK")
    verified(runtime, person, request_id, "2026-01-20")

    def extends(ctx: TenantContext) -> int:
        request = rights.get_request(ctx, request_id)
        workflow.extend(ctx, request, "ten years of support chats to go through")
        return 1

    with frozen(at("2026-02-10")), runtime.tenant_context(person) as ctx:
        tenants.set_closing_days(ctx, [date(2026, 4, 20)])
        staff = Second(runtime, at("2026-02-10"), person, extends)
    assert staff.result() == 1
    assert due_on(runtime, request_id) == "2026-04-21"
    assert "We will answer by 21 April 2026 at the latest" in extension_letter(runtime, person)


# An action on a request locks it, then counts its due date from the tenant's settings; a
# change of the settings locks them, then moves the open requests' due dates. Begun in that
# order, each waited for the other and PostgreSQL aborted one (a deadlock): the staff's page
# or the operator's command failed. Each waits for the other's end instead.


def _closes(*days: date) -> Callable[[TenantContext], int]:
    def closes(ctx: TenantContext) -> int:
        waits_time_out(ctx)
        _days, moved = tenants.set_closing_days(ctx, days)
        return moved

    return closes


def _until_waiting(runtime: Runtime, sessions: int) -> None:
    """Until `sessions` sessions of the test database wait for a lock (a minute at most)."""
    for _ in range(1200):
        if waiting_on_a_lock(runtime, sessions):
            return
        time.sleep(0.05)


def test_a_closing_day_added_while_staff_extend_a_request_waits_and_moves_its_date(
    runtime: Runtime, person: str
) -> None:
    # UK: identity confirmed Tuesday 20 January, due Friday 20 February; extended, Monday 20
    # April. A member of staff begins the extension (the request locked), and the operator
    # closes both days before it is saved.
    postgresql_only(runtime)
    request_id = received(runtime, "2026-01-05", "access", "UK")
    verified(runtime, person, request_id, "2026-01-20")
    with frozen(at("2026-02-10")), runtime.tenant_context(person) as ctx:
        waits_time_out(ctx)
        request = rights.get_request(ctx, request_id)
        transitions.hold(ctx, request)  # the extension's first step (`transitions.lock`)
        operator = Second(
            runtime, at("2026-02-10"), person, _closes(date(2026, 2, 20), date(2026, 4, 20))
        )
        workflow.extend(ctx, request, "ten years of support chats to go through")
    # Both done: the operator's change waited for the extension, then moved its date.
    assert operator.result() == 1
    assert due_on(runtime, request_id) == "2026-04-21"
    assert "We will answer by 20 April 2026 at the latest" in extension_letter(runtime, person)


def _closes_unverified(ctx: TenantContext) -> int:
    waits_time_out(ctx)
    return workflow.close_unverified(ctx)


def _unassigns(request_id: str) -> Callable[[TenantContext], int]:
    def unassigns(ctx: TenantContext) -> int:
        waits_time_out(ctx)
        transitions.assign(ctx, rights.get_request(ctx, request_id), None)
        return 1

    return unassigns


@pytest.mark.parametrize("act", ["worker_closes_unverified", "staff_unassign"])
def test_a_closing_day_added_while_a_request_is_acted_on_waits_for_the_act(
    runtime: Runtime, person: str, act: str
) -> None:
    # UK: an access request waits for its code since 5 January; another, verified on 20
    # January, is due Friday 20 February. On 10 February the worker closes the first, or
    # staff unassign the second — each act waiting for the audit chain another worker is
    # checkpointing — as the operator closes 20 February.
    postgresql_only(runtime)
    with frozen(at("2026-01-05")), runtime.tenant_context(person) as ctx:
        asked = RequestInput("access", Requester(EMAIL, "Paula"), "UK")
        unverified = str(workflow.receive(ctx, asked).request.id)
    answered = received(runtime, "2026-01-05", "access", "UK")
    verified(runtime, person, answered, "2026-01-20")
    assert due_on(runtime, answered) == "2026-02-20"
    closing = act == "worker_closes_unverified"
    step = _closes_unverified if closing else _unassigns(answered)

    with frozen(at("2026-02-10")), runtime.tenant_context(person) as ctx:
        audit.checkpoint(ctx.session, ctx.keystore, ctx.tenant_id)  # the audit head held
        acting = Second(runtime, at("2026-02-10"), person, step)
        operator = Second(runtime, at("2026-02-10"), person, _closes(date(2026, 2, 20)))
        _until_waiting(runtime, 2)
    # Both done, one after the other: the act, then the change moving the open requests' due
    # dates (the one closed first has none), the answered one's to the next Monday.
    assert acting.result() == 1
    assert operator.result() == (1 if closing else 2)
    assert due_on(runtime, answered) == "2026-02-23"
    with runtime.tenant_context(person) as ctx:
        state = rights.get_request(ctx, unverified).state
    assert state == ("closed_unverified" if closing else "awaiting_verification")
