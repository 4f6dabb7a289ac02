"""An export writes each interaction's id and moment as text. On SQLite it reads them as
stored, without building a UUID and a datetime per row (`reading.exported_interactions`):
what it writes must be exactly what the generic path writes, on either database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from pledge.core.db import _sqlite_datetime
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput, NewInteraction

_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(_MOMENTS)
@example(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))  # no fraction: isoformat drops it
@example(datetime(2026, 3, 1, 12, 0, 0, 500, tzinfo=UTC))
def test_a_stored_moment_is_written_as_isoformat_writes_it(at: datetime) -> None:
    stored = _sqlite_datetime(at)
    assert stored is not None
    assert reading.moment_text(stored) == at.isoformat()


@given(st.binary(min_size=16, max_size=16))
def test_a_stored_id_is_written_as_str_of_its_uuid(raw: bytes) -> None:
    assert reading.id_text(raw) == str(uuid.UUID(bytes=raw))


def test_a_moment_in_another_stored_shape_is_parsed() -> None:
    """Rows SQLite holds in a shape other than ours (no fraction) are still written right."""
    assert reading.moment_text("2026-03-01 12:00:00") == "2026-03-01T12:00:00+00:00"


def test_the_export_writes_what_the_generic_read_gives(runtime: Runtime, tenant: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [start, start + timedelta(microseconds=7), start + timedelta(days=40, seconds=1)]
    with runtime.tenant_context(tenant) as ctx:
        sid = subjects.create_subject(ctx, [FieldInput("email", "text@example.com")])
        subjects.store_interactions(
            ctx,
            [
                NewInteraction(sid, "order", at, "user.content.private", {"n": n, "t": 'a,"b'})
                for n, at in enumerate(moments)
            ],
        )
    with runtime.tenant_context(tenant) as ctx:
        generic = [
            (str(i.id), i.kind, i.occurred_at.isoformat(), *i[3:])
            for i in reading.open_interactions(ctx, sid)
        ]
        exported = reading.exported_interactions(ctx, sid)
        record = reading.export_subject(ctx, sid)
    assert exported == generic
    assert [i["occurred_at"] for i in record["interactions"]] == [
        at.isoformat() for at in reversed(moments)
    ]
    assert [i["payload"]["n"] for i in record["interactions"]] == [2, 1, 0]
