"""A person erased, their correction started, its appeal granted or withdrawn, while their
privacy state is changed through the API (PostgreSQL: SQLite's writers take turns).

The lock order is the tenant row, then request rows, then the person's row, then the audit
chain's head (decisions 0005, 0010). A change of the privacy state locks the person, then
audits the change (the head). An erasure audited first (its request started, the letters it
reached) and then wrote the person's row; a correction's start, its appeal granted and its
withdrawal audited the request's step and then locked the person to add or end the
restriction while it is checked. Interleaved, each waited for the other and PostgreSQL
aborted one (a deadlock): the staff's answer or the API's call failed. The person is now
locked before the first entry: one waits for the other's end, and both are done."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from pledge.access.context import TenantContext
from pledge.consent import privacy_state
from pledge.core.clock import frozen
from pledge.gate import hygiene
from pledge.rights import fulfilment, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.models import RightsRequest
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading, retention
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import SubjectStatus
from pledge.subjects.service import FieldInput
from tests.lock_order import Act, at_once, chain_holds, postgresql_only, restricts
from tests.rights.test_restriction_grounds import EMAIL, _verified, person
from tests.subjects.test_retention_periods import SEVEN_YEARS_ON, _closed_account, _onecrm

__all__ = ["person"]  # the fixture, shared


def _grounds(runtime: Runtime, tenant: str, person_id: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        return list(subjects.get_subject_row(ctx, uuid.UUID(person_id)).restriction_grounds)


def _status(runtime: Runtime, tenant: str, person_id: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        return subjects.get_subject_row(ctx, uuid.UUID(person_id)).status


def _on_request(request_id: str, step: Callable[[TenantContext, RightsRequest], object]) -> Act:
    def act(ctx: TenantContext) -> object:
        return step(ctx, rights.get_request(ctx, request_id))

    return act


# ---------------------------------------------------------------------------------------------
# Erasure


def test_an_erasure_answered_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # Staff answer Rosa's erasure request (started and answered at once, as the request
    # page's "Fulfil" does) as a connected system restricts her.
    postgresql_only(runtime)
    asked = _verified(runtime, tenant, "erasure")

    def answers(ctx: TenantContext, request: RightsRequest) -> object:
        return fulfilment.fulfil(ctx, request).state

    answered, restricting = at_once(runtime, tenant, _on_request(asked, answers), restricts(person))
    # The erasure is done; the restriction, which waited for it, finds nobody to restrict.
    assert answered == "completed"
    assert restricting == "subject_erased"
    assert _status(runtime, tenant, person) == SubjectStatus.ERASED.value
    assert _grounds(runtime, tenant, person) == []
    assert chain_holds(runtime, tenant)


def test_a_direct_erasure_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # Rosa once asked for her data and never confirmed who she was: the erasure (the API's
    # `DELETE /subjects/{id}`, `pledge subjects erase`) deletes those letters and audits it
    # before the person is written.
    postgresql_only(runtime)
    with runtime.tenant_context(tenant) as ctx:
        workflow.receive(ctx, RequestInput("access", Requester(EMAIL, "Rosa"), "EU"))

    def erases(ctx: TenantContext) -> object:
        return erasure.erase_subject(ctx, uuid.UUID(person)).status

    erased, restricting = at_once(runtime, tenant, erases, restricts(person))
    assert erased == SubjectStatus.ERASED.value
    assert restricting == "subject_erased"
    assert _grounds(runtime, tenant, person) == []
    assert chain_holds(runtime, tenant)


def test_a_bulk_erasure_while_the_api_restricts_one_of_the_people(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # Two people without a lawful basis are erased in one go (the hygiene report's erasure)
    # as the API restricts the second: the first one's erasure audited, the second is
    # written after.
    postgresql_only(runtime)
    with runtime.tenant_context(tenant) as ctx:
        ids = sorted(
            [
                subjects.create_subject(ctx, [FieldInput("email", f"{name}@example.com")])
                for name in ("ann", "bob")
            ]
        )
    second = str(ids[1])

    def erases(ctx: TenantContext) -> object:
        return hygiene.erase_without_basis(ctx, ids, confirm=True).count

    erased, restricting = at_once(runtime, tenant, erases, restricts(second))
    assert erased == 2
    assert restricting == "subject_erased"
    assert _status(runtime, tenant, second) == SubjectStatus.ERASED.value
    assert chain_holds(runtime, tenant)


def test_kept_data_erased_at_the_end_of_its_period_while_the_api_restricts_one_person(
    runtime: Runtime,
) -> None:
    # 1CRM keeps billing records 7 years after an erasure; the worker erases two people's
    # as the period ends, while the API restricts the second (their billing record is
    # disputed).
    postgresql_only(runtime)
    _onecrm(runtime)
    first, second = sorted(
        _closed_account(runtime, f"{name}@example.com") for name in ("ann", "bob")
    )

    def sweeps(ctx: TenantContext) -> object:
        with frozen(SEVEN_YEARS_ON + timedelta(days=2)):
            return retention.end_kept_periods(ctx, limit=10)

    erased, restricting = at_once(runtime, "onecrm", sweeps, restricts(str(second)))
    assert erased == 2
    assert restricting == "subject_erased"
    assert _status(runtime, "onecrm", str(first)) == SubjectStatus.ERASED.value
    assert _status(runtime, "onecrm", str(second)) == SubjectStatus.ERASED.value
    assert chain_holds(runtime, "onecrm")


# ---------------------------------------------------------------------------------------------
# A correction: restricted while it is checked


def test_a_correction_started_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str
) -> None:
    postgresql_only(runtime)
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})

    def starts(ctx: TenantContext, request: RightsRequest) -> object:
        return fulfilment.start(ctx, request).state

    started, restricting = at_once(
        runtime, tenant, _on_request(correction, starts), restricts(person)
    )
    # Both grounds hold, the check's first (the API's change waited for it).
    assert (started, restricting) == ("in_progress", "restricted")
    assert _grounds(runtime, tenant, person) == _accuracy_then_api(correction)
    assert chain_holds(runtime, tenant)


def _accuracy_then_api(correction: str) -> list[str]:
    """The grounds of a person restricted for the check of a correction, then by the API."""
    return [privacy_state.accuracy_ground(uuid.UUID(correction)), privacy_state.API_GROUND]


def test_a_correction_appeal_granted_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str
) -> None:
    # Virginia: Rosa's correction was refused and she appealed; staff grant the appeal (the
    # correction is checked again, her data restricted meanwhile) as the API restricts her.
    postgresql_only(runtime)
    correction = _verified(
        runtime, tenant, "rectification", "US-VA", proposed={"first_name": "Rosalind"}
    )
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, correction)
        fulfilment.fulfil(
            ctx, request, StaffInput(approve=False, note="the proof shows another name")
        )
        transitions.appeal(ctx, request)
    assert _grounds(runtime, tenant, person) == []

    def grants(ctx: TenantContext, request: RightsRequest) -> object:
        return workflow.decide_appeal(ctx, request, grant=True, reason="").state

    granted, restricting = at_once(
        runtime, tenant, _on_request(correction, grants), restricts(person)
    )
    assert (granted, restricting) == ("in_progress", "restricted")
    assert _grounds(runtime, tenant, person) == _accuracy_then_api(correction)
    assert chain_holds(runtime, tenant)


def test_a_correction_withdrawn_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str
) -> None:
    postgresql_only(runtime)
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, correction))

    def withdraws(ctx: TenantContext, request: RightsRequest) -> object:
        return fulfilment.withdraw(ctx, request).state

    withdrawn, restricting = at_once(
        runtime, tenant, _on_request(correction, withdraws), restricts(person)
    )
    # The check's ground ended with the withdrawal; the API's, set after it, holds.
    assert (withdrawn, restricting) == ("withdrawn", "restricted")
    assert _grounds(runtime, tenant, person) == [privacy_state.API_GROUND]
    assert chain_holds(runtime, tenant)


def _needing_no_code(runtime: Runtime, tenant: str, rtype: str) -> str:
    """A request of `rtype` that needs no verification, matched by the address given (as
    `workflow.receive` does) and left for staff: its id."""
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput(rtype, Requester(EMAIL, "Rosa"), "US-CA"))
        assert verification.begin(ctx, request) is None
        request.subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert request.subject_id is not None
        return str(request.id)


@pytest.mark.parametrize("rtype", ["restriction", "opt_out_sale", "withdraw_consent"])
def test_a_request_answered_at_once_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str, rtype: str
) -> None:
    # Started and answered in one go: the start is audited before the answer writes the
    # person (a restriction's ground, an opt-out of sale) or a row of theirs (a consent).
    postgresql_only(runtime)
    if rtype == "restriction":
        asked = _verified(runtime, tenant, rtype)
    else:
        asked = _needing_no_code(runtime, tenant, rtype)

    def answers(ctx: TenantContext, request: RightsRequest) -> object:
        return fulfilment.fulfil(ctx, request).state

    answered, restricting = at_once(runtime, tenant, _on_request(asked, answers), restricts(person))
    assert (answered, restricting) == ("completed", "restricted")
    assert privacy_state.API_GROUND in _grounds(runtime, tenant, person)
    assert chain_holds(runtime, tenant)


@pytest.mark.parametrize("purposes", [["newsletter"], []])
def test_an_objection_received_while_the_api_restricts_the_person(
    runtime: Runtime, tenant: str, person: str, purposes: list[str]
) -> None:
    # Rosa objects (to the newsletter only: answered at once; to everything: the marketing
    # stops on receipt, the rest waits for her to confirm): her objections are written after
    # the receipt is audited, as a connected system restricts her.
    postgresql_only(runtime)

    def objects(ctx: TenantContext) -> object:
        details = {"purposes": purposes} if purposes else {}
        asked = RequestInput("objection", Requester(EMAIL, "Rosa"), "EU", details=details)
        return workflow.receive(ctx, asked).request.state

    received, restricting = at_once(runtime, tenant, objects, restricts(person))
    assert received == ("completed" if purposes else "awaiting_verification")
    assert restricting == "restricted"
    with runtime.tenant_context(tenant) as ctx:
        sid = uuid.UUID(person)
        objected = {p.slug for p, _ in privacy_state.privacy_state(ctx, sid).objections}
    assert "newsletter" in objected
    assert _grounds(runtime, tenant, person) == [privacy_state.API_GROUND]
    assert chain_holds(runtime, tenant)
