"""The chain the audit tests tamper with."""

from __future__ import annotations

import uuid

import pytest

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.runtime import Runtime

LENGTH = 12  # entries in the chain under test (the first is tenant.created)


@pytest.fixture
def chain(runtime: Runtime, tenant: str) -> uuid.UUID:
    """A tenant's chain of LENGTH entries; its id."""
    with runtime.tenant_context(tenant) as ctx:
        for n in range(LENGTH - 1):
            audit.record(ctx, AuditEvent.SUBJECT_VIEWED, subject_id=uuid.uuid4(), details={"n": n})
        return ctx.tenant_id
