"""Ids read from SQLite take a faster path than `uuid.UUID(bytes=...)` (an audience or an
export reads hundreds of thousands), ids and timestamps written to it a faster path than
SQLAlchemy's chained processors; they must be the very same values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Column, Integer, LargeBinary, MetaData, String, Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from pledge.core.db import ID, JSONType, UTCDateTime, bulk_insert, make_engine
from pledge.core.ids import _from_int, uuid_from_bytes

DIALECT = sqlite.dialect()


@given(st.binary(min_size=16, max_size=16))
def test_ids_are_what_the_uuid_constructor_gives(raw: bytes) -> None:
    got, want = uuid_from_bytes(raw), uuid.UUID(bytes=raw)
    assert type(got) is uuid.UUID and got == want
    assert str(got) == str(want) and got.bytes == raw and got.hex == want.hex
    assert hash(got) == hash(want) and got.is_safe is want.is_safe
    assert got.version == want.version and got.variant == want.variant
    assert {got: 1}[want] == 1 and sorted([got, want]) == [want, want]
    processor = ID().result_processor(DIALECT, None)
    assert processor is not None and processor(raw) == want and processor(None) is None


def test_an_id_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        uuid_from_bytes(b"\x00" * 15)


# Values written to SQLite: one function per type instead of the decorator's processor and
# SQLite's chained. What reaches the database must not change.


def _chained(column_type: TypeDecorator[Any], value: object) -> object:
    """What SQLAlchemy's own chain gives: the decorator's `process_bind_param`, then the
    processor of its implementation type on SQLite."""
    bound = column_type.process_bind_param(value, DIALECT)
    impl = column_type.impl_instance.dialect_impl(DIALECT).bind_processor(DIALECT)
    return impl(bound) if impl is not None and bound is not None else bound


# Moments in any zone whose UTC time is a datetime (years 1 to 9999 in UTC: the API refuses
# others, `core.validation`); the first and last day of that range, in a zone ahead of or
# behind UTC, are not.
_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)


@given(_MOMENTS)
def test_timestamps_are_stored_as_sqlalchemy_stores_them(moment: datetime) -> None:
    processor = UTCDateTime().bind_processor(DIALECT)
    assert processor is not None
    assert processor(moment) == _chained(UTCDateTime(), moment)
    assert processor(None) is None


def test_a_naive_timestamp_is_refused() -> None:
    processor = UTCDateTime().bind_processor(DIALECT)
    assert processor is not None
    with pytest.raises(ValueError, match="naive"):
        processor(datetime(2026, 1, 1))


@given(st.uuids())
def test_ids_are_stored_as_their_16_bytes(value: uuid.UUID) -> None:
    processor = ID().bind_processor(DIALECT)
    assert processor is not None
    assert processor(value) == _chained(ID(), value) == value.bytes
    assert processor(None) is None


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_new_ids_are_what_the_uuid_constructor_gives(value: int) -> None:
    got, want = _from_int(value), uuid.UUID(int=value)
    assert type(got) is uuid.UUID and got == want and str(got) == str(want)
    assert hash(got) == hash(want) and got.is_safe is want.is_safe


def test_the_fast_processors_are_what_an_engine_writes_and_reads_back() -> None:
    engine = make_engine("sqlite://")
    table = Table("t", MetaData(), Column("id", ID), Column("at", UTCDateTime))
    table.create(engine)
    ident = uuid.uuid4()
    moment = datetime(2026, 12, 5, 10, 30, 1, 7, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": ident, "at": moment}, {"id": None, "at": None}])
        raw = [tuple(r) for r in conn.exec_driver_sql("SELECT id, at FROM t")]
        assert raw == [(ident.bytes, "2026-12-05 08:30:01.000007"), (None, None)]
        back = conn.execute(select(table).where(table.c.at >= moment)).one()
        assert back == (ident, moment) and back.at.tzinfo is UTC
    engine.dispose()


# Bulk inserts on SQLite go to the driver as tuples (`bulk_insert`): the stored rows must be
# byte for byte those of Core's executemany, constant defaults included.


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "bulk_rows"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    flag: Mapped[bool] = mapped_column(Boolean, default=False)
    count: Mapped[int] = mapped_column(Integer, default=7)
    name: Mapped[str] = mapped_column(String(20), default="")
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


# Text with no NUL: a NUL is refused in any text, a JSON value's too (decision 0013).
_TEXT = st.characters(exclude_characters="\x00")
_ROW_VALUES = st.fixed_dictionaries(
    {
        "at": st.none() | _MOMENTS,
        "data": st.none()
        | st.dictionaries(st.text(_TEXT, max_size=5), st.integers() | st.text(_TEXT)),
        "flag": st.booleans(),
        "count": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "name": st.text(_TEXT, max_size=20),
        "blob": st.none() | st.binary(max_size=40),
    }
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_ROW_VALUES, min_size=1, max_size=5), st.booleans(), st.booleans())
def test_bulk_inserts_store_what_core_stores(
    values: list[dict[str, Any]], partial: bool, shared: bool
) -> None:
    engine = make_engine("sqlite://")
    _Base.metadata.create_all(engine)
    table = cast(Table, _Row.__table__)
    tenant = uuid.uuid4()
    # `partial`: the rows leave out the columns with constant defaults (flag, count, name).
    left_out = {"flag", "count", "name"} if partial else set()
    # `shared`: every row holds the first row's objects (a batch's one time, one dict), which
    # `bulk_insert` converts once for all.
    values = [values[0]] * len(values) if shared else values
    rows = [
        {"tenant_id": tenant, "id": uuid.uuid4()}
        | {k: v for k, v in row.items() if k not in left_out}
        for row in values
    ]
    try:
        with Session(engine) as session, session.begin():
            bulk_insert(session, _Row, rows)
            ours = session.connection().exec_driver_sql("SELECT * FROM bulk_rows").all()
            session.connection().exec_driver_sql("DELETE FROM bulk_rows")
            session.connection().execute(table.insert(), rows)
            core = session.connection().exec_driver_sql("SELECT * FROM bulk_rows").all()
        assert ours == core
    finally:
        engine.dispose()


def test_a_bulk_insert_leaving_out_a_per_row_default_gets_one_per_row() -> None:
    engine = make_engine("sqlite://")
    _Base.metadata.create_all(engine)
    tenant = uuid.uuid4()
    try:
        with Session(engine) as session, session.begin():
            bulk_insert(session, _Row, [{"tenant_id": tenant}, {"tenant_id": tenant}])
            ids = session.execute(select(_Row.id)).scalars().all()
        assert len(set(ids)) == 2 and all(isinstance(i, uuid.UUID) for i in ids)
    finally:
        engine.dispose()
