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


def test_ids_made_in_one_millisecond_or_after_the_clock_steps_back_still_increase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Timelines order rows with the same timestamp by id: ids must follow creation order
    even when many share a millisecond, more than the counter holds, or the clock goes back."""
    now = [time.time_ns() + 10**9]  # ahead of every id made so far: a fresh millisecond
    monkeypatch.setattr(time, "time_ns", lambda: now[0])
    same_ms = [new_id() for _ in range(5000)]  # more than 4,096: borrows the next millisecond
    now[0] -= 60 * 10**9  # the clock steps back a minute
    after_step = [new_id() for _ in range(10)]
    ids = same_ms + after_step
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert {i.int >> 80 for i in same_ms[:4096]} == {(now[0] + 60 * 10**9) // 1_000_000}


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
