"""Isolation cases of the messaging routes (issue 3)."""

from __future__ import annotations

from pledge.runtime import Runtime
from tests.isolation_cases import Cases


def setup_a(runtime: Runtime) -> dict[str, str]:
    return {}


CASES = Cases(setup_a=setup_a)
