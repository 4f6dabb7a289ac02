"""Identifiers: UUIDv7, so primary keys sort by creation time (cursors, index locality)."""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> uuid.UUID:
    # RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, 74 random bits, variant 10.
    # Written by hand because Python 3.11's `uuid` has no uuid7 (3.14 adds it).
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 64) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


def parse_id(text: str) -> uuid.UUID | None:
    """Parse a public id; None when it is not a UUID (callers answer 404, not 500)."""
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None


_new_object = object.__new__
_set_slot = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """`uuid.UUID(bytes=raw)` at half the cost: `UUID.__init__` checks and branches on five
    ways of being called; this fills the two slots of an immutable `UUID` (`int`, `is_safe`)
    as that constructor does. For ids read in bulk (an audience, a subject's interactions);
    a property test holds the two equal."""
    if len(raw) != 16:
        raise ValueError("an id is 16 bytes")
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", int.from_bytes(raw))
    _set_slot(made, "is_safe", _UNKNOWN)
    return made
