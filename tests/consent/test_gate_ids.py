"""The audience's fast id conversion is `uuid.UUID(bytes=...)`, value for value."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pledge.gate.service import uuids_from_bytes


@given(st.lists(st.binary(min_size=16, max_size=16), max_size=50))
def test_same_uuids_as_the_constructor(raw: list[bytes]) -> None:
    made = uuids_from_bytes(raw)
    expected = [uuid.UUID(bytes=b) for b in raw]
    assert made == expected
    for got, want in zip(made, expected, strict=True):
        assert type(got) is uuid.UUID
        assert str(got) == str(want) and got.bytes == want.bytes
        assert hash(got) == hash(want) and got.is_safe is want.is_safe
        assert got.version == want.version and got.variant == want.variant
        assert {got: 1}[want] == 1


def test_an_id_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        uuids_from_bytes([b"\x00" * 15])
