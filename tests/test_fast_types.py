"""Ids read from SQLite take a faster path than `uuid.UUID(bytes=...)` (an audience or an
export reads hundreds of thousands), ids and timestamps written to it a faster path than
SQLAlchemy's chained processors; they must be the very same values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from pledge.core.db import ID, UTCDateTime, make_engine
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


@given(st.datetimes(timezones=st.timezones()))
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
