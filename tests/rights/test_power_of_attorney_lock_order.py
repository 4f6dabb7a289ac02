"""An agent's power of attorney accepted — the request verified, which makes the person's later
requests repetitive — while staff act on one of those (PostgreSQL: SQLite's writers take
turns).

The lock order is the tenant row, then request rows, then the audit chain's head (decisions
0005, 0010). The acceptance audited its line on the timeline, then verified the request,
which holds the address's later verified requests to decide again whether they are
repetitive: after the head. A member of staff unassigning one of them held it, then waited
for the head. Each waited for the other and PostgreSQL aborted one (a deadlock): the
acceptance or the staff's page failed. Now the acceptance's entries are recorded after the
move: one waits for the other's end, and both are done."""

from __future__ import annotations

from pledge.access.context import TenantContext
from pledge.rights import service as rights
from pledge.rights import transitions, verification, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from tests.lock_order import at_once, chain_holds, postgresql_only
from tests.rights.test_power_of_attorney import CHECKED, POA
from tests.rights.test_request_events_lock_order import _timeline
from tests.rights.test_restriction_grounds import EMAIL, _verified, person

__all__ = ["person"]  # the fixture, shared

AGENT = Requester(
    EMAIL,
    "Rosa",
    agent_name="Ada Gent",
    agent_email="ada@agency.example",
    agent_permission="signed permission PS-114",
)


def test_a_power_of_attorney_accepted_while_staff_act_on_a_later_request_it_makes_repetitive(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # California: two requests for the categories of data a year are free. Rosa's agent asked
    # under a power of attorney first; Rosa then asked twice herself and confirmed both (free:
    # the agent's request, not verified, counted for neither). Staff accept the power of
    # attorney as another unassigns Rosa's second request, which becomes her third.
    postgresql_only(runtime)
    with runtime.tenant_context(tenant) as ctx:
        asked = RequestInput("access_categories", AGENT, "US-CA", channel="authorized_agent")
        agents = workflow.receive(ctx, asked, power_of_attorney=POA).request.id
    later = [_verified(runtime, tenant, "access_categories", "US-CA") for _ in range(2)]
    with runtime.tenant_context(tenant) as ctx:
        assert [rights.get_request(ctx, i).repetitive for i in later] == [False, False]

    def accepts(ctx: TenantContext) -> object:
        request = rights.get_request(ctx, agents)
        return verification.accept_power_of_attorney(ctx, request, CHECKED).state

    def unassigns(ctx: TenantContext) -> object:
        return transitions.assign(ctx, rights.get_request(ctx, later[-1]), None).state

    accepted, unassigned = at_once(runtime, tenant, accepts, unassigns)
    assert (accepted, unassigned) == ("verified", "verified")
    with runtime.tenant_context(tenant) as ctx:
        assert [rights.get_request(ctx, i).repetitive for i in later] == [False, True]
    kinds = [kind for kind, _ in _timeline(runtime, tenant, later[-1])]
    assert kinds.count("repetitive_reassessed") == 1 and "assigned" in kinds
    assert chain_holds(runtime, tenant)
