"""A line written on a request's timeline by something other than an action on that request
— an erasure cancelling the person's transfer still waiting, a restriction lifted, a
request found repetitive as an earlier one is verified — while staff act on the request
(PostgreSQL: SQLite's writers take turns).

The lock order is the tenant row, then request rows, then the audit chain's head (decisions
0005, 0010). An erasure held the head (its request started, what it reached audited), then
wrote the cancelled transfer's line on the person's other request, which waits for a staff
member holding that request — who then waited for the head. A lift locked the person, then
wrote to the request, while staff answering it again held the request and went on to the
person. A verification counted the address's later requests again and audited the first one
found repetitive, then wrote the second's line and flag, which waits for staff holding it, who
waited for the head. Each waited for the other and PostgreSQL aborted one (a deadlock): the
erasure, the confirmation or the staff's page failed. Now each waits for the other's end, and
both are done."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.core.clock import utcnow
from pledge.rights import fulfilment, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.models import SubjectStatus
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import Second
from tests.lock_order import at_once, chain_holds, postgresql_only, waits_time_out
from tests.messaging.test_webhooks_review12 import _fulfilled as fulfilled_by_api
from tests.messaging.test_webhooks_review12 import _verified as _verified_by_api
from tests.rights.test_api_and_webhooks import Receiver, clik_with_wanda
from tests.rights.test_restriction_grounds import EMAIL as ROSA
from tests.rights.test_restriction_grounds import PHONE, _restricted, _verified, person

__all__ = ["person"]  # the fixture, shared

EMAIL = "wanda.lockorder@example.com"
CANCELLED = "cancelled: the person was erased"


def _timeline(runtime: Runtime, tenant: str, request_id: str) -> list[tuple[str, dict[str, str]]]:
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        return [(e.kind, e.details or {}) for e in rights.timeline(ctx, request)]


# ---------------------------------------------------------------------------------------------
# An erasure cancels the person's transfer while staff act on the request it came from


@pytest.fixture
def other_org(private_targets: None) -> Iterator[Receiver]:
    """The organisation the person sends their copy to: its server is down."""
    with Receiver() as r:
        r.status = 503
        yield r


def _erases(request_id: str) -> Callable[[TenantContext], int]:
    def erases(ctx: TenantContext) -> int:
        waits_time_out(ctx)
        # Started and answered at once, as the request page's "Fulfil" does.
        fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
        return 1

    return erases


def test_an_erasure_while_staff_act_on_the_transfer_it_cancels(
    runtime: Runtime, tenant: str, client: TestClient, other_org: Receiver
) -> None:
    # Wanda sent her copy to another organisation, whose server is down; she then asks to be
    # erased. A member of staff answers the erasure as another unassigns her portability
    # request.
    postgresql_only(runtime)
    clik_with_wanda(runtime, tenant, EMAIL)
    portability = fulfilled_by_api(
        runtime, tenant, client, "portability", {"transfer_url": other_org.url}, EMAIL
    )
    erasure = _verified_by_api(runtime, tenant, client, "erasure", EMAIL)

    with runtime.tenant_context(tenant) as ctx:
        waits_time_out(ctx)
        request = rights.get_request(ctx, portability)
        transitions.hold(ctx, request)  # the unassignment's first step
        erasing = Second(runtime, utcnow(), tenant, _erases(erasure))
        transitions.assign(ctx, request, None)
    # Both done: the erasure, and the line on the portability request saying the copy never
    # went, beside the staff's unassignment.
    assert erasing.result() == 1
    with runtime.tenant_context(tenant) as ctx:
        transfer = ctx.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event == "portability.transfer")
        ).one()
        assert (transfer.status, transfer.last_error) == ("failed", CANCELLED)
        wanda = subjects.get_subject_row(ctx, rights.get_request(ctx, erasure).subject_id or "")
        assert wanda.status == SubjectStatus.ERASED.value
    lines = _timeline(runtime, tenant, portability)
    assert "assigned" in [kind for kind, _ in lines]
    failed = [details for kind, details in lines if kind == "delivery_failed"]
    assert [(d["event"], d["error"]) for d in failed] == [("portability.transfer", CANCELLED)]
    assert chain_holds(runtime, tenant)


# ---------------------------------------------------------------------------------------------
# A restriction lifted while staff answer its request again (an appeal granted)


def _lifts(request_id: str) -> Callable[[TenantContext], int]:
    def lifts(ctx: TenantContext) -> int:
        waits_time_out(ctx)
        fulfilment.lift_restriction(
            ctx, rights.get_request(ctx, request_id), "the dispute is settled"
        )
        return 1

    return lifts


def test_a_restriction_lifted_while_staff_answer_its_appeal(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # Virginia: Rosa's restriction was answered and she appealed; the appeal was granted and
    # a member of staff answers the request again as another lifts the restriction.
    postgresql_only(runtime)
    asked = _verified(runtime, tenant, "restriction", "US-VA")
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, asked)
        fulfilment.fulfil(ctx, request)
        transitions.appeal(ctx, request)
        workflow.decide_appeal(ctx, request, grant=True, reason="")
        assert request.state == "in_progress"
    assert _restricted(runtime, tenant)

    with runtime.tenant_context(tenant) as ctx:
        waits_time_out(ctx)
        request = rights.get_request(ctx, asked)
        transitions.hold(ctx, request)  # the answer's first step (`transitions.lock`)
        lifting = Second(runtime, utcnow(), tenant, _lifts(asked))
        assert fulfilment.fulfil(ctx, request).state == "completed"
    # Both done, one after the other: the answer (restricted again), then the lift.
    assert lifting.result() == 1
    assert not _restricted(runtime, tenant)
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, asked)
        assert (request.state, request.outcome_code) == ("completed", "restriction_lifted")
        person_row = subjects.get_subject_row(ctx, uuid.UUID(person))
        assert person_row.restriction_grounds == []
    kinds = [kind for kind, _ in _timeline(runtime, tenant, asked)]
    assert (kinds.count("completed"), kinds.count("restriction_lifted")) == (2, 1)
    assert chain_holds(runtime, tenant)


# ---------------------------------------------------------------------------------------------
# A request found repetitive as an earlier one is verified, while staff act on it


def test_a_confirmation_while_staff_act_on_a_later_request_it_makes_repetitive(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # Rosa asked for her data four times within a year, twice under Virginia's law (two free
    # a year), twice under the GDPR (excessive from the fourth). Her second request waits for
    # her code; the third and fourth were verified and are free. She confirms the second as
    # a member of staff unassigns the fourth: both later ones become repetitive.
    postgresql_only(runtime)
    _verified(runtime, tenant, "access", "EU")
    with runtime.tenant_context(tenant) as ctx:
        waiting = rights.submit(ctx, RequestInput("access", Requester(ROSA, "Rosa"), "EU"))
        challenge = verification.begin(ctx, waiting)
        assert challenge is not None
        waiting_id, code = waiting.id, challenge.code
    later = [_verified(runtime, tenant, "access", place) for place in ("US-VA", "EU")]
    with runtime.tenant_context(tenant) as ctx:
        assert [rights.get_request(ctx, i).repetitive for i in later] == [False, False]

    def confirms(ctx: TenantContext) -> object:
        request = rights.get_request(ctx, waiting_id)
        return verification.confirm(ctx, request, code=code, data_points={"phone": PHONE})

    def unassigns(ctx: TenantContext) -> object:
        return transitions.assign(ctx, rights.get_request(ctx, later[-1]), None).state

    confirmed, unassigned = at_once(runtime, tenant, confirms, unassigns)
    assert confirmed == verification.Outcome(True)
    assert unassigned == "verified"
    with runtime.tenant_context(tenant) as ctx:
        assert [rights.get_request(ctx, i).repetitive for i in later] == [True, True]
    for request_id in later:
        kinds = [kind for kind, _ in _timeline(runtime, tenant, request_id)]
        assert kinds.count("repetitive_reassessed") == 1
    assert "assigned" in [kind for kind, _ in _timeline(runtime, tenant, later[-1])]
    assert chain_holds(runtime, tenant)
