"""Shared building blocks: identifiers, the clock."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from pledge.core.clock import frozen, utcnow
from pledge.core.ids import new_id, parse_id


def test_ids_are_uuid7_and_sort_by_creation() -> None:
    first = new_id()
    time.sleep(0.002)
    ids = [new_id() for _ in range(1000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in [first, *ids])
    assert first < min(ids)
    assert len(set(ids)) == 1000
    assert abs((first.int >> 80) - time.time_ns() // 1_000_000) < 5_000


def test_parse_id_says_none_for_garbage() -> None:
    assert parse_id("not-an-id") is None
    assert parse_id("") is None
    good = new_id()
    assert parse_id(str(good)) == good


def test_the_clock_can_be_frozen_with_an_aware_time_only() -> None:
    at = datetime(2026, 1, 31, 12, tzinfo=UTC)
    with frozen(at):
        assert utcnow() == at
    assert utcnow() != at
    with pytest.raises(ValueError), frozen(datetime(2026, 1, 31)):
        pass
