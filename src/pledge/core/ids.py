"""Identifiers: UUIDv7, so primary keys sort by creation time (cursors, index locality)."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_COUNTER_MAX = 0xFFF  # the 12 bits after the version


def new_id() -> uuid.UUID:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, a 12-bit counter, variant 10,
    62 random bits. Written by hand because Python 3.11's `uuid` has no uuid7 (3.14 adds it).

    Within a process the ids strictly increase (RFC 9562 §6.2, method 1): the counter orders
    ids made in the same millisecond, and a clock that steps back does not take them back.
    So ordering by id is ordering by creation — the tie-break of timelines whose rows share
    a timestamp, and of cursors."""
    global _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big")
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, 0
        elif _counter < _COUNTER_MAX:
            _counter += 1
        else:  # 4,096 ids in one millisecond: borrow the next one
            _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return _from_int(value)


def parse_id(text: str) -> uuid.UUID | None:
    """Parse a public id; None when it is not a UUID (callers answer 404, not 500)."""
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None


_new_object = object.__new__
_set_slot = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _from_int(value: int) -> uuid.UUID:
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", _UNKNOWN)
    return made


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """`uuid.UUID(bytes=raw)` at half the cost: `UUID.__init__` checks and branches on five
    ways of being called; this fills the two slots of an immutable `UUID` (`int`, `is_safe`)
    as that constructor does. For ids read in bulk (an audience, a subject's interactions);
    a property test holds the two equal."""
    if len(raw) != 16:
        raise ValueError("an id is 16 bytes")
    return _from_int(int.from_bytes(raw))
