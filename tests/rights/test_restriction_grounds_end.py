"""Where a person's restriction grounds end: an erasure that leaves nothing of the person ends
them all (a ground left behind kept its request from the 24-month purge for ever), and a
correction of an erased person is answered, never refused for want of someone to restrict."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen, utcnow
from pledge.core.errors import Conflict
from pledge.rights import fulfilment, transitions, workflow
from pledge.rights import service as rights
from pledge.runtime import Runtime
from pledge.subjects import erasure
from pledge.subjects import service as subjects
from tests.conftest import until_done_or_blocked
from tests.rights.test_restriction_grounds import (
    _letter_names,
    _put_restricted,
    _verified,
    person,
)

__all__ = ["person"]  # the fixture, shared


def _changes(runtime: Runtime, tenant: str, subject_id: str) -> list[dict[str, str]]:
    with runtime.tenant_context(tenant) as ctx:
        return [
            dict(d)
            for d in ctx.session.scalars(
                select(AuditEntry.details)
                .where(
                    AuditEntry.tenant_id == ctx.tenant_id,
                    AuditEntry.subject_id == uuid.UUID(subject_id),
                    AuditEntry.event == AuditEvent.PRIVACY_STATE_CHANGED.value,
                )
                .order_by(AuditEntry.seq)
            )
        ]


def test_a_full_erasure_ends_every_ground_and_lets_the_purge_take_the_request(
    runtime: Runtime, tenant: str, person: str, client: TestClient
) -> None:
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, asked))
    _put_restricted(client, person, True)
    with runtime.tenant_context(tenant) as ctx:
        assert erasure.erase_subject(ctx, uuid.UUID(person)).status == "erased"
    answer = client.get(f"/api/v1/subjects/{person}/privacy-state").json()
    assert answer["restricted"] is False and answer["restriction_grounds"] == []
    # One entry per ground ended, naming the ground; the last lifts the flag.
    ended = [c for c in _changes(runtime, tenant, person) if c["source"] == "erased"]
    assert [(c["change"], c["ground"]) for c in ended] == [
        ("restriction_ground_removed", f"request:{asked}"),
        ("restriction_lifted", "api"),
    ]
    with frozen(utcnow() + timedelta(days=741)), runtime.tenant_context(tenant) as ctx:
        assert workflow.purge_expired(ctx) == 1
    # Erasing again (finishing an interrupted erasure) writes nothing more.
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, uuid.UUID(person))
    assert [c for c in _changes(runtime, tenant, person) if c["source"] == "erased"] == ended


def test_a_partial_erasure_keeps_the_restriction_on_what_is_kept(
    runtime: Runtime, tenant: str, person: str
) -> None:
    """Data kept under a legal duty stays restricted as the person asked."""
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, asked))
        result = erasure.erase_subject(ctx, uuid.UUID(person), keep_classes=["standard"])
        assert result.status == "partially_erased"
        row = subjects.get_subject_row(ctx, uuid.UUID(person))
        assert row.restriction_grounds == [f"request:{asked}"]
        assert row.restricted_at is not None


def test_a_correction_verified_before_an_erasure_is_answered_after_it(
    runtime: Runtime, tenant: str, person: str
) -> None:
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, uuid.UUID(person))
    with runtime.tenant_context(tenant) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, correction))
        assert result.state == "completed"
    with frozen(utcnow() + timedelta(days=741)), runtime.tenant_context(tenant) as ctx:
        assert workflow.purge_expired(ctx) == 1


def test_an_appeal_on_a_correction_of_an_erased_person_can_be_granted(
    runtime: Runtime, tenant: str, person: str
) -> None:
    correction = _verified(
        runtime, tenant, "rectification", "US-VA", proposed={"first_name": "Rosalind"}
    )
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, correction)
        fulfilment.fulfil(ctx, request)
        erasure.erase_subject(ctx, uuid.UUID(person))
        transitions.appeal(ctx, request)
        workflow.decide_appeal(ctx, request, grant=True, reason="")
        assert request.state == "in_progress"
        assert fulfilment.fulfil(ctx, request).state == "completed"


def test_two_lifts_at_once_send_one_letter(runtime: Runtime, tenant: str, person: str) -> None:
    """PostgreSQL: staff lift the person's restriction twice at once (two tabs, a retried
    API call): the second waits for the first, then finds nothing left to lift."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, asked))
    failures: list[BaseException] = []

    def lift_again() -> None:
        try:
            with runtime.tenant_context(tenant) as ctx:
                request = rights.get_request(ctx, asked)
                fulfilment.lift_restriction(ctx, request, "the dispute is settled too")
        except BaseException as exc:  # looked at in the test's thread
            failures.append(exc)

    with runtime.tenant_context(tenant) as ctx:
        fulfilment.lift_restriction(ctx, rights.get_request(ctx, asked), "the dispute is settled")
        other = threading.Thread(target=lift_again)
        other.start()
        until_done_or_blocked(runtime, other, "the second lift")
    other.join()
    assert [type(f) for f in failures] == [Conflict]
    assert _letter_names(runtime, tenant, asked).count("restriction_lifting.txt") == 1
