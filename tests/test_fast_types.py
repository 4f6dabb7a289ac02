"""Ids read from SQLite take a faster path than `uuid.UUID(bytes=...)` (an audience or an
export reads hundreds of thousands); they must be the very same values."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from pledge.core.db import ID
from pledge.core.ids import uuid_from_bytes

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
