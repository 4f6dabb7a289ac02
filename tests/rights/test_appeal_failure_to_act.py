"""Seed 000, Colorado: "If we have not responded to your request ... within 45 days after you
send us a request, you have the right to appeal our failure to take action." Where the law
grants an appeal, an open request past its due date may be appealed; the request stays to be
answered — on both databases."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen
from pledge.core.errors import Conflict, InvalidInput
from pledge.rights import fulfilment, status_links, transitions, workflow
from pledge.rights import service as rights
from pledge.runtime import Runtime
from pledge.tenants import service as tenants
from pledge.web.app import create_app
from tests.conftest import api_client, make_api_token
from tests.rights.test_pages import staff_client
from tests.rights.test_requests import PHONE, _submit, _verify, letter_text, person

__all__ = ["person"]  # the fixture, shared

RECEIVED = datetime(2026, 1, 5, 9, tzinfo=UTC)  # 45 days: due on 19 February 2026
DUE = date(2026, 2, 19)
LATE = datetime(2026, 2, 24, 9, tzinfo=UTC)  # day 50: no answer, no extension


def _verified(runtime: Runtime, tenant: str, jurisdiction: str = "US-CO") -> str:
    """An access request received on 5 January 2026 and verified the same day."""
    with frozen(RECEIVED):
        handle = _submit(runtime, tenant, "access", jurisdiction)
        _verify(runtime, tenant, handle, data_points=PHONE)
    return handle.split("|")[0]


def _appeal(runtime: Runtime, tenant: str, request_id: str, at: datetime) -> str:
    """Appeal at `at`; the request's state after."""
    with frozen(at), runtime.tenant_context(tenant) as ctx:
        return transitions.appeal(ctx, rights.get_request(ctx, request_id)).state


def _status_page(runtime: Runtime, tenant: str, request_id: str) -> tuple[TestClient, str, str]:
    """A browser on the privacy center; the request's status page address; its CSRF token."""
    with runtime.tenant_context(tenant) as ctx:
        token = status_links.status_token(ctx, rights.get_request(ctx, request_id))
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.headers.update({"accept": "text/html"})
    client.get(f"/p/{tenant}/requests")
    return client, f"/p/{tenant}/requests/status/{token}", client.cookies["pledge_csrf"]


def test_colorado_requester_may_appeal_our_failure_to_act_after_45_days(
    runtime: Runtime, person: str
) -> None:
    request_id = _verified(runtime, person)
    assert _appeal(runtime, person, request_id, LATE) == "appealed"
    with frozen(LATE), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        # The appeal's clock: 45 days from the appeal (CPA 6-1-1306(3)); the queue sorts on it.
        assert rights.deadlines(ctx, request).appeal_due == date(2026, 4, 10)
        assert request.due_on == date(2026, 4, 10)
        [event] = [e for e in rights.timeline(ctx, request) if e.kind == "appealed"]
        assert (event.from_state, event.to_state) == ("verified", "appealed")
        assert event.details == {"ground": "no_answer_in_time", "due": "2026-02-19"}
        audited = [
            e.details
            for e in ctx.session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.tenant_id == ctx.tenant_id,
                    AuditEntry.event == AuditEvent.RIGHTS_REQUEST_CHANGED.value,
                )
                .order_by(AuditEntry.seq)
            )
            if e.details.get("request_id") == request_id
        ]
        assert audited[-1] == {
            "request_id": request_id,
            "kind": "appealed",
            "from": "verified",
            "to": "appealed",
            "ground": "no_answer_in_time",
            "due": "2026-02-19",
        }
        # One appeal of our silence: a second is refused.
        with pytest.raises(Conflict, match="appealed already"):
            transitions.appeal(ctx, request)


def test_the_decision_returns_the_request_to_be_answered_with_a_letter(
    runtime: Runtime, person: str
) -> None:
    """An appeal of our failure to act does not end the duty to answer: granted, the request
    is back where it stood; it cannot be refused into closing it unanswered. Its answer may
    then be appealed in its turn."""
    request_id = _verified(runtime, person)
    _appeal(runtime, person, request_id, LATE)
    decided = LATE + timedelta(days=3)
    with frozen(decided), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        with pytest.raises(Conflict, match="decided by answering"):
            workflow.decide_appeal(ctx, request, grant=False, reason="we were busy that month")
    with frozen(decided), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "appealed"
        workflow.decide_appeal(ctx, request, grant=True, reason="")
        assert request.state == "verified" and request.closed_at is None
        assert request.due_on == DUE  # still overdue: first in the queue
    text = letter_text(runtime, person, request_id, "appeal_decision")
    assert "we had not answered your access (a copy of your data) request in the time" in text
    assert "decided in your favour and are now handling your request again" not in text
    # Still unanswered after the appeal: the status page names the authority to complain to.
    client, page, _csrf = _status_page(runtime, person, request_id)
    with frozen(decided):
        shown = re.sub(r"\s+", " ", client.get(page).text)
    assert "You may complain to the Colorado Attorney General" in shown
    assert f'action="{page}/appeal"' not in shown
    with frozen(decided), runtime.tenant_context(person) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
    assert _appeal(runtime, person, request_id, decided + timedelta(days=1)) == "appealed"
    with frozen(decided + timedelta(days=1)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert rights.deadlines(ctx, request).appeal_due == date(2026, 4, 14)
        workflow.decide_appeal(ctx, request, grant=False, reason="the answer was complete")
        assert request.state == "appeal_denied"


def test_no_appeal_of_our_silence_before_the_due_date(runtime: Runtime, person: str) -> None:
    request_id = _verified(runtime, person)
    on_the_day = datetime(2026, 2, 19, 23, tzinfo=UTC)
    with (
        pytest.raises(Conflict, match="2026-02-19"),
        frozen(on_the_day),
        runtime.tenant_context(person) as ctx,
    ):
        transitions.appeal(ctx, rights.get_request(ctx, request_id))
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, request_id).state == "verified"
    assert _appeal(runtime, person, request_id, on_the_day + timedelta(hours=2)) == "appealed"


def test_a_tenant_promising_faster_is_late_for_an_appeal_only_after_the_law_s_date(
    runtime: Runtime, person: str
) -> None:
    """The tenant promises 30 days: the queue shows it overdue on day 31, but the right to
    appeal our silence comes with the 45 days the law gives."""
    with runtime.tenant_context(person) as ctx:
        tenants.set_rights_promise(ctx, "*", "30 days")
    request_id = _verified(runtime, person)
    with pytest.raises(Conflict, match="2026-02-19"):
        _appeal(runtime, person, request_id, RECEIVED + timedelta(days=40))
    assert _appeal(runtime, person, request_id, LATE) == "appealed"


def test_an_extended_request_is_late_only_after_the_extended_date(
    runtime: Runtime, person: str
) -> None:
    request_id = _verified(runtime, person)
    with frozen(RECEIVED + timedelta(days=10)), runtime.tenant_context(person) as ctx:
        workflow.extend(ctx, rights.get_request(ctx, request_id), "many systems to search")
    for at in (LATE, datetime(2026, 4, 5, 20, tzinfo=UTC)):  # 90 days: 5 April
        with pytest.raises(Conflict, match="2026-04-05"):
            _appeal(runtime, person, request_id, at)
    assert _appeal(runtime, person, request_id, datetime(2026, 4, 6, 9, tzinfo=UTC)) == "appealed"


def test_a_colorado_request_waiting_on_the_requester(runtime: Runtime, person: str) -> None:
    """Confirming who they are is the requester's part: not our failure. Asked for more
    information, the Colorado clock runs on (it stops for no pause): late all the same."""
    with frozen(RECEIVED):
        unconfirmed = _submit(runtime, person, "access", "US-CO").split("|")[0]
    with pytest.raises(Conflict, match="confirm"):
        _appeal(runtime, person, unconfirmed, LATE)
    paused = _verified(runtime, person)
    with frozen(RECEIVED + timedelta(days=20)), runtime.tenant_context(person) as ctx:
        workflow.ask_for_information(
            ctx, rights.get_request(ctx, paused), "clarification", "which account do you mean?"
        )
    assert _appeal(runtime, person, paused, LATE) == "appealed"
    with frozen(LATE), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, paused)
        workflow.decide_appeal(ctx, request, grant=True, reason="")
        assert request.state == "in_progress"


def test_the_status_page_offers_the_appeal_of_our_silence(runtime: Runtime, person: str) -> None:
    request_id = _verified(runtime, person)
    client, page, csrf = _status_page(runtime, person, request_id)
    with frozen(RECEIVED + timedelta(days=44)):
        r = client.get(page)
    assert r.status_code == 200 and "Appeal: no answer in time" not in r.text
    assert f'action="{page}/appeal"' not in r.text
    with frozen(LATE):
        r = client.get(page)
        assert r.status_code == 200
        assert "The time the law gives us to answer ended on 19 February 2026" in r.text
        assert "Appeal: no answer in time" in r.text and f'action="{page}/appeal"' in r.text
        r = client.post(f"{page}/appeal", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        r = client.get(r.headers["location"])
    shown = re.sub(r"\s+", " ", r.text)
    assert "We received your appeal. We will decide by 10 April 2026." in shown
    assert "Appeal decided by</dt><dd>10 April 2026" in shown
    assert "Appeal: no answer in time" not in shown
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, request_id).state == "appealed"


def test_the_api_records_the_appeal_of_our_silence(runtime: Runtime, person: str) -> None:
    request_id = _verified(runtime, person)
    client = api_client(runtime, make_api_token(runtime, person))
    with frozen(RECEIVED + timedelta(days=30)):
        r = client.post(f"/api/v1/requests/{request_id}/appeal")
    assert r.status_code == 409 and "2026-02-19" in r.text
    with frozen(LATE):
        r = client.post(f"/api/v1/requests/{request_id}/appeal")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "appealed"
    assert r.json()["deadlines"]["appeal_due"] == "2026-04-10"


def test_an_overdue_gdpr_request_shows_the_complaint_route_not_an_appeal(
    runtime: Runtime, person: str
) -> None:
    """GDPR has no appeal to the controller: late, the person may complain to the authority
    (Art. 77) — the status page says so."""
    request_id = _verified(runtime, person, "EU")
    client, page, _csrf = _status_page(runtime, person, request_id)
    with frozen(RECEIVED + timedelta(days=20)):
        r = client.get(page)
    assert "supervisory authority" not in r.text  # not late yet
    with frozen(LATE):
        r = client.get(page)
    shown = re.sub(r"\s+", " ", r.text)
    assert "The time the law gives us to answer ended on 05 February 2026" in shown
    assert "You may complain to the supervisory authority of your country" in shown
    assert "Appeal" not in shown and f'action="{page}/appeal"' not in shown
    with pytest.raises(InvalidInput, match="grants no appeal"):
        _appeal(runtime, person, request_id, LATE)


def test_staff_see_the_appeal_of_our_silence_and_decide_it_on_the_request_page(
    runtime: Runtime, person: str
) -> None:
    request_id = _verified(runtime, person)
    _appeal(runtime, person, request_id, LATE)
    client, csrf = staff_client(runtime, person)
    with frozen(LATE):
        r = client.get("/requests?state=appealed")
        assert re.findall(r'<a href="/requests/([0-9a-f-]{36})">', r.text) == [request_id]
        r = client.get(f"/requests/{request_id}")
    shown = re.sub(r"\s+", " ", r.text)
    assert "Appeal decided by</dt><dd>2026-04-10" in shown
    assert "ground:</span> no_answer_in_time" in shown and "Decide the appeal" in shown
    with frozen(LATE):
        r = client.post(
            f"/requests/{request_id}/appeal-decision",
            data={"csrf_token": csrf, "decision": "grant", "reason": ""},
        )
    assert r.status_code == 200 and "The appeal is decided; the requester is told." in r.text
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, request_id).state == "verified"


def test_staff_are_offered_to_record_an_appeal_of_our_silence_only_once_it_is_late(
    runtime: Runtime, person: str
) -> None:
    """The request page's "Record an appeal" form follows the same rule as the service: on
    day 44 of a Colorado request there is nothing to appeal yet; on day 50 there is."""
    request_id = _verified(runtime, person)
    client, _csrf = staff_client(runtime, person)
    for moment, offered in ((RECEIVED + timedelta(days=44), False), (LATE, True)):
        with frozen(moment):
            page = client.get(f"/requests/{request_id}").text
        assert ("Record the appeal" in page) is offered, moment


def test_an_appeal_not_made_cannot_be_decided(runtime: Runtime, person: str) -> None:
    """Before its due date nothing was appealed: "granting" an appeal (a stale form, a script)
    must not start the request on an appeal that was never made."""
    request_id = _verified(runtime, person)
    with (
        pytest.raises(Conflict, match="only an appealed request"),
        frozen(RECEIVED + timedelta(days=1)),
        runtime.tenant_context(person) as ctx,
    ):
        workflow.decide_appeal(ctx, rights.get_request(ctx, request_id), grant=True, reason="")
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "verified" and request.appeal_decided_at is None
        assert "appeal_granted" not in [e.kind for e in rights.timeline(ctx, request)]
