"""The one place that says what a tenant may see.

Every query of a tenant-scoped table goes through `for_tenant` (lists) or `get_in_tenant`
(single rows) — or, for a hot statement built once, filters on the tenant's id as a bound
parameter (`tenant_id == bindparam("tenant_id")`, given `ctx.tenant_id`). A row of another
tenant is reported exactly like a missing row — `NotFound` — so a caller cannot learn that
an id exists elsewhere (DESIGN.md §4 invariant 2).
`tests/test_isolation.py` enumerates every route and proves it.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from pledge.core.db import get_row
from pledge.core.errors import NotFound
from pledge.core.ids import parse_id


class TenantScoped(Protocol):
    tenant_id: Any


M = TypeVar("M")
S = TypeVar("S", bound=Select[Any])


def for_tenant(stmt: S, model: type[Any], tenant_id: uuid.UUID) -> S:
    column: InstrumentedAttribute[uuid.UUID] = model.tenant_id
    return stmt.where(column == tenant_id)


def get_in_tenant(
    session: Session, model: type[M], tenant_id: uuid.UUID, *key: Any, what: str = "resource"
) -> M:
    """Fetch by primary key (after tenant_id) or raise NotFound, whoever owns it."""
    parsed = [parse_id(k) if isinstance(k, str) else k for k in key]
    if any(p is None for p in parsed):
        raise NotFound(f"no such {what}")
    row = get_row(session, model, (tenant_id, *parsed))
    if row is None:
        raise NotFound(f"no such {what}")
    return row
