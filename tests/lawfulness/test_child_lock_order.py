"""A person found to be a child — their date of birth corrected, or marked through the
privacy-state API — under a tenant that erases children on discovery, while they unsubscribe
(PostgreSQL: SQLite's writers take turns).

The lock order is the tenant row, then request rows, then the person's row, then the audit
chain's head (decision 0005). The correction wrote the person's row (FOR NO KEY UPDATE) and
audited it, then marked and erased the child, whose erasure holds the person FOR UPDATE —
after the head. An opt-out being recorded refers to the person (its row's foreign key: FOR
KEY SHARE, which a row written but not held lets by) and then audits. Interleaved, each
waited for the other and PostgreSQL aborted one (a deadlock): the staff's correction or the
person's unsubscribe failed. The person is now held before the first entry: one waits for
the other's end, and both are done."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from pledge.access.context import TenantContext
from pledge.consent import privacy_state
from pledge.preferences import service as preferences
from pledge.preferences.models import ALL_MARKETING
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.models import SubjectStatus
from pledge.subjects.service import DATE_OF_BIRTH, FieldInput
from pledge.tenants import service as tenants
from pledge.tenants.models import ChildrenPolicy
from tests.lock_order import Act, at_once, chain_holds, postgresql_only
from tests.rights.test_restriction_grounds import person

__all__ = ["person"]  # the fixture, shared


def _date_corrected(person_id: uuid.UUID) -> Act:
    """Staff correct Rosa's date of birth (`PUT /subjects/{id}/fields/date_of_birth`): she
    is 11."""

    def corrects(ctx: TenantContext) -> object:
        return subjects.rectify_field(
            ctx, person_id, FieldInput("date_of_birth", "2015-04-01", DATE_OF_BIRTH)
        ).value

    return corrects


def _marked_a_child(person_id: uuid.UUID) -> Act:
    """The privacy-state API marks Rosa a child (`is_child: true`), no parent's consent."""

    def marks(ctx: TenantContext) -> object:
        return privacy_state.update_privacy_state(ctx, person_id, is_child=True).is_child

    return marks


def _unsubscribes(person_id: uuid.UUID) -> Act:
    """Rosa stops all marketing by e-mail (a one-click unsubscribe): whether it changed."""

    def unsubscribes(ctx: TenantContext) -> object:
        return preferences.opt_out(ctx, person_id, "email", ALL_MARKETING, "unsubscribe")

    return unsubscribes


@pytest.mark.parametrize("found", [_date_corrected, _marked_a_child])
def test_a_child_found_and_erased_while_they_unsubscribe(
    runtime: Runtime, tenant: str, person: str, found: Callable[[uuid.UUID], Act]
) -> None:
    postgresql_only(runtime)
    rosa = uuid.UUID(person)
    with runtime.tenant_context(tenant) as ctx:
        tenants.set_children_rules(ctx, policy=ChildrenPolicy.ERASE_ON_DISCOVERY.value)

    marked, unsubscribed = at_once(runtime, tenant, found(rosa), _unsubscribes(rosa))
    # Both done: the child erased (the tenant's policy), the unsubscribe answered.
    assert marked in ("2015-04-01", True)
    assert unsubscribed is True
    with runtime.tenant_context(tenant) as ctx:
        assert subjects.get_subject_row(ctx, rosa).status == SubjectStatus.ERASED.value
    assert chain_holds(runtime, tenant)
