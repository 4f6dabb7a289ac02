"""Ids and timestamps read from SQLite take a faster path than SQLAlchemy's own (a bulk
export reads tens of thousands); they must be the very same values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from pledge.core.db import ID, UTCDateTime
from pledge.core.ids import uuid_from_bytes

DIALECT = sqlite.dialect()
SQLITE_DATETIME = sqlite.DATETIME()  # type: ignore[no-untyped-call]  # what a DateTime column is on SQLite


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


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)))
def test_timestamps_are_what_sqlalchemy_reads(moment: datetime) -> None:
    stored = UTCDateTime().process_bind_param(moment.replace(tzinfo=UTC), DIALECT)
    write = SQLITE_DATETIME.bind_processor(DIALECT)
    read = SQLITE_DATETIME.result_processor(DIALECT, None)
    ours = UTCDateTime().result_processor(DIALECT, None)
    assert write is not None and read is not None and ours is not None
    text = write(stored)
    assert isinstance(text, str)
    theirs = read(text)
    got = ours(text)
    assert isinstance(theirs, datetime) and isinstance(got, datetime)
    assert got == theirs.replace(tzinfo=UTC) == moment.replace(tzinfo=UTC) and got.tzinfo is UTC
    assert ours(None) is None


def test_timestamps_written_by_sqlite_itself_are_read_too() -> None:
    ours = UTCDateTime().result_processor(DIALECT, None)
    assert ours is not None
    assert ours("2026-12-05 04:30:00") == datetime(2026, 12, 5, 4, 30, tzinfo=UTC)
