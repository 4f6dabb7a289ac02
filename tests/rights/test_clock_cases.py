"""The clock in whole cases, as a requester or a privacy officer meets it: extensions told in
time are taken (the UK's clock starts at verification; GDPR pauses move the first period), a
paused request is not called overdue, and an extension letter gives the date it sets — on
both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from httpx2 import Response

from pledge import worker
from pledge.core.clock import frozen
from pledge.rights import service as rights
from pledge.rights import transitions, verification, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from tests.rights.test_pages import EMAIL, letters_to, person, staff_client

__all__ = ["person"]  # the fixture: Clik's purposes and a customer with a phone on file
PHONE = "+447700900123"


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def received(runtime: Runtime, tenant: str, day: str, jurisdiction: str) -> str:
    with frozen(at(day)), runtime.tenant_context(tenant) as ctx:
        request = rights.submit(
            ctx, RequestInput("access", Requester(EMAIL, "Paula"), jurisdiction)
        )
        return str(request.id)


def verified(runtime: Runtime, tenant: str, request_id: str, day: str) -> None:
    """The code sent that day, typed back with the phone number on file."""
    with frozen(at(day, 10)), runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        challenge = verification.begin(ctx, request)
        assert challenge is not None
        outcome = verification.confirm(
            ctx, request, code=challenge.code, data_points={"phone": PHONE}
        )
        assert outcome.verified, outcome.reason


def extension_letter(runtime: Runtime, tenant: str) -> str:
    found = [t for t in letters_to(runtime, tenant, EMAIL) if "We need more time" in t]
    assert len(found) == 1, found
    return found[0]


def extend_from_the_page(client: TestClient, csrf: str, request_id: str) -> Response:
    r = client.post(
        f"/requests/{request_id}/extend",
        data={"csrf_token": csrf, "reason": "ten years of support chats to go through"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client.get(r.headers["location"])


def test_uk_extension_is_taken_inside_the_month_from_verification(
    runtime: Runtime, person: str
) -> None:
    # Received 5 January, identity confirmed 20 January: the first month runs to 20 February.
    request_id = received(runtime, person, "2026-01-05", "UK")
    verified(runtime, person, request_id, "2026-01-20")
    with frozen(at("2026-02-10")):
        client, csrf = staff_client(runtime)
        page = client.get(f"/requests/{request_id}").text
        assert "<dt>End of the first period</dt><dd>2026-02-20</dd>" in page
        assert "Extend by 2 months" in page
        page = extend_from_the_page(client, csrf, request_id).text
    assert "The deadline is extended" in page and "(extended)" in page
    assert "<dt>Due</dt><dd>2026-04-20</dd>" in page
    assert "We will answer by 20 April 2026 at the latest" in extension_letter(runtime, person)


def test_gdpr_extension_after_a_pause_counts_the_days_waited(runtime: Runtime, person: str) -> None:
    # Received 5 January; waiting on the requester 10 January to 1 February (22 days): the
    # first month ends 27 February, and the extension runs to 5 April + 22 days.
    request_id = received(runtime, person, "2026-01-05", "EU")
    verified(runtime, person, request_id, "2026-01-05")
    with frozen(at("2026-01-10")), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        workflow.ask_for_information(ctx, request, "clarification", "which account do you mean?")
    with frozen(at("2026-02-01")), runtime.tenant_context(person) as ctx:
        transitions.resume(ctx, rights.get_request(ctx, request_id))
    with frozen(at("2026-02-10")), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert rights.deadlines(ctx, request).first_due.isoformat() == "2026-02-27"
        workflow.extend(ctx, request, "ten years of support chats to go through")
        assert request.due_on is not None and request.due_on.isoformat() == "2026-04-27"
    assert "We will answer by 27 April 2026 at the latest" in extension_letter(runtime, person)


def due_in_queue(page: str, request_id: str) -> str:
    row = re.search(rf'href="/requests/{request_id}">.*?class="due [^"]*">([^<]*)<', page, re.S)
    assert row, page
    return row.group(1).strip()


def test_a_paused_request_is_not_called_overdue(runtime: Runtime, person: str) -> None:
    # Two requests received 5 January (due 5 February); one paused on 30 January. On
    # 14 February the other is 9 days late; the paused one has 6 days left (15 days paused).
    paused = received(runtime, person, "2026-01-05", "EU")
    late = received(runtime, person, "2026-01-05", "EU")
    for request_id in (paused, late):
        verified(runtime, person, request_id, "2026-01-05")
    with frozen(at("2026-01-30")), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, paused)
        workflow.ask_for_information(ctx, request, "clarification", "which account do you mean?")
    with frozen(at("2026-02-14")):
        client, _csrf = staff_client(runtime)
        page = client.get(f"/requests/{paused}").text
        assert 'class="due due-soon">Due in 6 days<' in page and "Overdue" not in page
        assert "<dt>Due</dt><dd>2026-02-20</dd>" in page
        assert "Overdue by 9 days" in client.get(f"/requests/{late}").text
        # The SLA report counts the late one only, before the worker's cycle as after it.
        assert "<strong>1</strong> overdue" in client.get("/requests/sla").text
        report = worker.run_once(runtime)
        assert report.errors == [] and report.paused_due_moved == 1
        assert worker.run_once(runtime).paused_due_moved == 0  # nothing more the second time
        queue = client.get("/requests").text
        assert due_in_queue(queue, paused) == "2026-02-20 · Due in 6 days"
        assert due_in_queue(queue, late) == "2026-02-05 · Overdue by 9 days"
        assert "<strong>1</strong> overdue" in client.get("/requests/sla").text
        with runtime.tenant_context(person) as ctx:
            assert [str(r.id) for r in workflow.overdue(ctx)] == [late]
            assert [str(r.id) for r in workflow.due_soon(ctx)] == [late, paused]


def test_the_extension_letter_gives_the_extended_date_over_a_faster_promise(
    runtime: Runtime, person: str
) -> None:
    # The tenant promises one month (seed 000's promise); the law allows two more.
    with runtime.tenant_context(person) as ctx:
        ctx.tenant.rights_promises = {"*": {"respond": "1 months", "restart_on_information": True}}
    request_id = received(runtime, person, "2026-01-05", "EU")
    verified(runtime, person, request_id, "2026-01-05")
    with frozen(at("2026-01-25")):
        client, csrf = staff_client(runtime)
        assert "<dt>Due</dt><dd>2026-02-05</dd>" in client.get(f"/requests/{request_id}").text
        page = extend_from_the_page(client, csrf, request_id).text
    assert "<dt>Due</dt><dd>2026-04-05</dd>" in page
    letter = extension_letter(runtime, person)
    assert "The law lets us extend by 2 months." in letter
    assert "We will answer by 05 April 2026 at the latest" in letter
