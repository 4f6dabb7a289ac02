"""The one source of "now". Time is injectable so deadlines and expiries are testable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_override: ContextVar[Callable[[], datetime] | None] = ContextVar("pledge_clock", default=None)


def utcnow() -> datetime:
    fn = _override.get()
    return fn() if fn is not None else datetime.now(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Freeze the clock at `at` (timezone-aware) inside the block."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    token = _override.set(lambda: at)
    try:
        yield
    finally:
        _override.reset(token)
