"""The 24-month purge beside a restriction ground being added or lifted at the same moment
(PostgreSQL): the purge keeps, this run, the requests of a person another transaction is
changing — deleted, the request a new ground names would leave the person restricted with no
request to lift it from — and neither waits for the other: the purge skips a person another
transaction holds (a lift holds its request, then the person)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from pledge.consent import privacy_state
from pledge.core.clock import utcnow
from pledge.rights import fulfilment, workflow
from pledge.rights import service as rights
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from tests.conftest import Second
from tests.rights.test_restriction_grounds import _restricted, _verified, person

__all__ = ["person"]  # the fixture, shared


def test_a_ground_added_while_the_purge_runs_keeps_its_request(
    runtime: Runtime, tenant: str, person: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, asked)
        assert request.subject_id == uuid.UUID(person)
        request.purge_after = utcnow() - timedelta(days=1)  # its 24 months are over
    ground = privacy_state.request_ground(uuid.UUID(asked))
    with runtime.tenant_context(tenant) as ctx:
        # Staff restrict processing on the request; not yet committed when the purge runs.
        privacy_state.add_restriction_ground(ctx, uuid.UUID(person), ground, "requested")
        purge = Second(runtime, utcnow(), tenant, workflow.purge_expired)  # the worker
    assert purge.result() == 0
    with runtime.tenant_context(tenant) as ctx:
        assert rights.get_request(ctx, asked).id == uuid.UUID(asked)
        assert subjects.get_subject_row(ctx, uuid.UUID(person)).restriction_grounds == [ground]
    assert _restricted(runtime, tenant)


def test_a_lift_beside_the_purge_neither_waits_nor_deadlocks(
    runtime: Runtime, tenant: str, person: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, asked))
    with runtime.tenant_context(tenant) as ctx:
        rights.get_request(ctx, asked).purge_after = utcnow() - timedelta(days=1)
    with runtime.tenant_context(tenant) as ctx:
        # Staff hold the person's row (their grounds) and lift the restriction, while the
        # worker's purge runs.
        request = rights.get_request(ctx, asked)
        privacy_state.held_restriction_grounds(ctx, uuid.UUID(person))
        purge = Second(runtime, utcnow(), tenant, workflow.purge_expired)  # the worker
        fulfilment.lift_restriction(ctx, request, "the dispute is settled")
    assert purge.result() == 0  # its person was busy: kept for a later run
    assert not _restricted(runtime, tenant)
    with runtime.tenant_context(tenant) as ctx:
        assert workflow.purge_expired(ctx) == 1  # the next run, the ground lifted
