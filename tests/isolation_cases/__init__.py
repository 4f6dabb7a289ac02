"""Tenant-isolation cases, one module per domain, collected by tests/test_isolation.py.

Each module defines `CASES`. `setup_a` creates tenant A's resources (as the operator) and
returns the values of the path parameters that name them; routes in `api_foreign` and
`page_foreign` are then called as tenant B with those values and must answer 404, exactly as
for an id that exists nowhere. Routes in `lists` are checked by `check` (B lists and searches
see none of A's data); routes in `public` hold no tenant data of their own or resolve the
tenant from their own path/token (they are checked in their domain's tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from pledge.runtime import Runtime

Route = tuple[str, str]


@dataclass
class World:
    runtime: Runtime
    api: TestClient  # tenant B, API key with every scope
    page: TestClient  # tenant B's owner, signed in
    csrf: str
    params: dict[str, str] = field(default_factory=dict)  # A's resources, by path parameter


@dataclass
class Cases:
    setup_a: Callable[[Runtime], dict[str, str]]
    api_foreign: dict[Route, dict[str, Any] | None] = field(default_factory=dict)
    page_foreign: dict[Route, dict[str, str] | None] = field(default_factory=dict)
    lists: set[Route] = field(default_factory=set)
    public: set[Route] = field(default_factory=set)
    check: Callable[[World], None] | None = None
    # Check that A is untouched at the end (runs as the operator of tenant A).
    verify_a: Callable[[Runtime, dict[str, str]], None] | None = None


def all_cases() -> list[Cases]:
    from tests.isolation_cases import lawfulness, messaging, rights, rights_pages, team, vault

    return [
        vault.CASES,
        lawfulness.CASES,
        messaging.CASES,
        rights.CASES,
        rights_pages.CASES,
        team.CASES,
    ]
