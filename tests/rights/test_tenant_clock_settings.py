"""A tenant's clock settings, as an operator sets them and staff and the API then see them: a
promise faster than the law (seed 000's erasure form), closing days in business-day
deadlines, the open requests' cached due dates following each change, bad input refused with
nothing written, and every change audited — on both databases."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import frozen
from pledge.core.errors import InvalidInput
from pledge.rights import service as rights
from pledge.rights import transitions, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.tenants import service as tenants
from tests.cli.test_cli import run
from tests.conftest import api_client, make_api_token
from tests.rights.test_clock_cases import at, due_in_queue, verified
from tests.rights.test_pages import EMAIL, person, staff_client

__all__ = ["person"]  # the fixture: Clik's purposes and a customer with a phone on file


def received(runtime: Runtime, day: str, rtype: str, jurisdiction: str = "EU") -> str:
    with frozen(at(day)), runtime.tenant_context("acme") as ctx:
        request = rights.submit(ctx, RequestInput(rtype, Requester(EMAIL, "Paula"), jurisdiction))
        return str(request.id)


def due_on(runtime: Runtime, request_id: str) -> str:
    """The cached due date, as the queue, the overdue list and the API read it."""
    with runtime.tenant_context("acme") as ctx:
        due = rights.get_request(ctx, request_id).due_on
        return due.isoformat() if due else ""


def settings_audit(runtime: Runtime) -> list[tuple[str, dict[str, Any]]]:
    events = {AuditEvent.TENANT_RIGHTS_PROMISE_SET.value, AuditEvent.TENANT_CLOSING_DAYS_SET.value}
    with runtime.tenant_context("acme") as ctx:
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok
        return [
            (e.event, e.details) for e in audit.list_entries(ctx, limit=1000) if e.event in events
        ]


def test_a_faster_promise_sets_the_due_date_the_api_and_the_queue_show(
    runtime: Runtime, person: str
) -> None:
    # Received 5 January: the law's month runs to 5 February.
    before = received(runtime, "2026-01-05", "erasure")
    assert due_on(runtime, before) == "2026-02-05"
    with runtime.tenant_context(person) as ctx:
        assert tenants.set_rights_promise(ctx, "erasure", "10 days") == 1  # the open one moved
    assert due_on(runtime, before) == "2026-01-15"

    erasure = received(runtime, "2026-01-06", "erasure")
    access = received(runtime, "2026-01-06", "access")  # no promise for access: the law's
    assert due_on(runtime, erasure) == "2026-01-16"
    assert due_on(runtime, access) == "2026-02-06"
    client = api_client(runtime, make_api_token(runtime, person))
    assert client.get(f"/api/v1/requests/{erasure}").json()["due_on"] == "2026-01-16"
    with frozen(at("2026-01-08")):
        staff, _csrf = staff_client(runtime)
        queue = staff.get("/requests").text
        page = staff.get(f"/requests/{erasure}").text
    assert due_in_queue(queue, erasure) == "2026-01-16 · Due in 8 days"
    assert due_in_queue(queue, access) == "2026-02-06 · Due in 29 days"
    assert "<dt>Due</dt><dd>2026-01-16</dd>" in page

    # Removed: back to the law's month, for the open requests too.
    with runtime.tenant_context(person) as ctx:
        assert tenants.set_rights_promise(ctx, "erasure", None) == 2
    assert due_on(runtime, before) == "2026-02-05"
    assert due_on(runtime, erasure) == "2026-02-06"
    assert client.get(f"/api/v1/requests/{erasure}").json()["due_on"] == "2026-02-06"


def test_a_promise_that_restarts_on_information_runs_again_from_the_answer(
    runtime: Runtime, person: str
) -> None:
    # Seed 000: "within [10 days] of receipt of your request or of any further information we
    # ask for, whichever is later". Received 5 January, asked 10 January, answered 1 February.
    with runtime.tenant_context(person) as ctx:
        tenants.set_rights_promise(ctx, "*", "10 days", restart_on_information=True)
    request_id = received(runtime, "2026-01-05", "access")
    verified(runtime, person, request_id, "2026-01-05")
    assert due_on(runtime, request_id) == "2026-01-15"
    with frozen(at("2026-01-10")), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        workflow.ask_for_information(ctx, request, "clarification", "which account do you mean?")
    with frozen(at("2026-02-01")), runtime.tenant_context(person) as ctx:
        transitions.resume(ctx, rights.get_request(ctx, request_id))
    assert due_on(runtime, request_id) == "2026-02-11"  # ten days from the answer

    # The same promise without the restart only stops while the law's clock stops: its end
    # (15 January) moves by the 22 days waited.
    with frozen(at("2026-02-02")), runtime.tenant_context(person) as ctx:
        assert tenants.set_rights_promise(ctx, "*", "10 days") == 1
    assert due_on(runtime, request_id) == "2026-02-06"


def test_a_closing_day_moves_business_day_deadlines_only(runtime: Runtime, person: str) -> None:
    # California: an opt-out within 15 business days; an access request acknowledged within
    # 10 business days, answered within 45 (calendar) days. Received Monday 2 March 2026.
    opt_out = received(runtime, "2026-03-02", "opt_out_sale", "US-CA")
    access = received(runtime, "2026-03-02", "access", "US-CA")
    gdpr = received(runtime, "2026-03-02", "access", "EU")
    assert due_on(runtime, opt_out) == "2026-03-23"
    assert due_on(runtime, access) == "2026-04-16"

    with runtime.tenant_context(person) as ctx:
        days, moved = tenants.set_closing_days(
            ctx, [date(2026, 3, 10), date(2026, 3, 7), date(2026, 4, 30)]
        )
        assert days == [date(2026, 3, 7), date(2026, 3, 10), date(2026, 4, 30)]
        assert moved == 1  # a Saturday and a day after the deadline move nothing
        acknowledge_by = rights.deadlines(ctx, rights.get_request(ctx, access)).acknowledge_by
    assert acknowledge_by == date(2026, 3, 17)  # 16 March without the closing day
    assert due_on(runtime, opt_out) == "2026-03-24"  # the open request's cached date moved
    assert due_on(runtime, access) == "2026-04-16"  # calendar days: no change
    assert due_on(runtime, gdpr) == "2026-04-02"  # a month: no change
    fresh = received(runtime, "2026-03-02", "opt_out_sale", "US-CA")
    assert due_on(runtime, fresh) == "2026-03-24"

    with runtime.tenant_context(person) as ctx:
        days, moved = tenants.set_closing_days(ctx, remove=[date(2026, 3, 10)])
        assert days == [date(2026, 3, 7), date(2026, 4, 30)] and moved == 2
    assert due_on(runtime, opt_out) == due_on(runtime, fresh) == "2026-03-23"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ctx: tenants.set_rights_promise(ctx, "deletion", "10 days"), "unknown request"),
        (lambda ctx: tenants.set_rights_promise(ctx, "erasure", "ten days"), "not a duration"),
        (lambda ctx: tenants.set_rights_promise(ctx, "erasure", "10 weeks"), "not a duration"),
        (lambda ctx: tenants.set_rights_promise(ctx, "erasure", "0 days"), "needs a duration"),
        (lambda ctx: tenants.set_rights_promise(ctx, "erasure", "9999 months"), "at most 12"),
        (lambda ctx: tenants.set_rights_promise(ctx, "access", None), "no promise"),
        (
            lambda ctx: tenants.set_closing_days(ctx, [date(2026, 3, 10)], [date(2026, 3, 10)]),
            "both added and removed",
        ),
        (
            lambda ctx: tenants.set_closing_days(ctx, [date(2026, 3, 11)], [date(2026, 3, 12)]),
            "2026-03-12 is not a closing day",
        ),
        (lambda ctx: tenants.set_closing_days(ctx, [date(1, 1, 1)]), "a closing day between"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_written(
    runtime: Runtime, person: str, change: Any, message: str
) -> None:
    opt_out = received(runtime, "2026-03-02", "opt_out_sale", "US-CA")
    with runtime.tenant_context(person) as ctx:
        tenants.set_rights_promise(ctx, "erasure", "1 months", restart_on_information=True)
        tenants.set_closing_days(ctx, [date(2026, 3, 9)])
    audited = settings_audit(runtime)
    with pytest.raises(InvalidInput, match=message), runtime.tenant_context(person) as ctx:
        change(ctx)
    with runtime.tenant_context(person) as ctx:
        assert ctx.tenant.rights_promises == {
            "erasure": {"respond": "1 months", "restart_on_information": True}
        }
        assert ctx.tenant.closing_days == ["2026-03-09"]
    assert due_on(runtime, opt_out) == "2026-03-24"
    assert settings_audit(runtime) == audited


def test_each_change_is_audited(runtime: Runtime, person: str) -> None:
    received(runtime, "2026-03-02", "opt_out_sale", "US-CA")
    with runtime.tenant_context(person) as ctx:
        tenants.set_rights_promise(ctx, "erasure", " 1  months ", restart_on_information=True)
        tenants.set_rights_promise(ctx, "erasure", None)
        tenants.set_closing_days(ctx, [date(2026, 3, 10), date(2026, 3, 11)])
        tenants.set_closing_days(ctx, [date(2026, 3, 11)], [date(2026, 3, 10)])
    promise, closing = (
        AuditEvent.TENANT_RIGHTS_PROMISE_SET.value,
        AuditEvent.TENANT_CLOSING_DAYS_SET.value,
    )
    assert settings_audit(runtime) == [
        (
            promise,
            {
                "type": "erasure",
                "respond": "1 months",
                "restart_on_information": True,
                "due_dates_moved": 0,
            },
        ),
        (
            promise,
            {
                "type": "erasure",
                "respond": None,
                "restart_on_information": False,
                "due_dates_moved": 0,
            },
        ),
        (
            closing,
            {"added": ["2026-03-10", "2026-03-11"], "removed": [], "due_dates_moved": 1},
        ),
        (closing, {"added": [], "removed": ["2026-03-10"], "due_dates_moved": 1}),
    ]


def test_the_settings_through_the_cli(
    runtime: Runtime, person: str, cli_env: dict[str, str]
) -> None:
    erasure = received(runtime, "2026-01-05", "erasure")
    opt_out = received(runtime, "2026-03-02", "opt_out_sale", "US-CA")
    code, out = run(
        "tenant",
        "rights-promise",
        "--tenant",
        person,
        "erasure",
        "--respond",
        "10 days",
        "--restart-on-information",
    )
    assert code == 0, out
    assert "erasure requests of acme: answered within 10 days, again from any" in out, out
    assert "1 open request(s) due on a new date" in out
    assert due_on(runtime, erasure) == "2026-01-15"
    code, out = run("tenant", "rights-promise", "--tenant", person, "erasure", "--remove")
    assert code == 0 and "erasure requests of acme: the law's deadline" in out, out
    assert due_on(runtime, erasure) == "2026-02-05"

    code, out = run(
        "tenant", "closing-days", "-t", person, "--add", "2026-03-10", "--add", "2026-12-24"
    )
    assert code == 0, out
    assert "Closing days of acme: 2026-03-10, 2026-12-24." in out
    assert "1 open request(s) due on a new date" in out
    assert due_on(runtime, opt_out) == "2026-03-24"
    code, out = run("tenant", "closing-days", "-t", person)
    assert code == 0 and "Closing days of acme: 2026-03-10, 2026-12-24." in out, out

    # Bad input: a clear error, nothing written.
    for args, message in [
        (("rights-promise", "-t", person, "erasure", "--respond", "soon"), "not a duration"),
        (("rights-promise", "-t", person, "erasure"), "either --respond or --remove"),
        (("rights-promise", "-t", person, "deletion", "--respond", "1 days"), "unknown request"),
        (("closing-days", "-t", person, "--add", "2026-02-30"), "not a date: '2026-02-30'"),
        (("closing-days", "-t", person, "--add", "24/12/2026"), "use YYYY-MM-DD"),
        (("closing-days", "-t", person, "--remove", "2026-03-11"), "not a closing day"),
    ]:
        code, out = run("tenant", *args)
        assert code == 1 and message in out, (args, out)
    with runtime.tenant_context(person) as ctx:
        assert ctx.tenant.rights_promises == {}
        assert ctx.tenant.closing_days == ["2026-03-10", "2026-12-24"]
    assert due_on(runtime, opt_out) == "2026-03-24"
