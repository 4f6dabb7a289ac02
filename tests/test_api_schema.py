"""The REST API against its own contract (DESIGN.md §5), by Schemathesis: requests generated
from /openapi.json — valid ones, and invalid ones (wrong types, values out of bounds, missing
fields, bodies that are not JSON) — sent to the application in process, and every answer
checked: never a 5xx, and a status code, media type and body the contract documents; an
invalid request is refused, never taken (a `1` where the contract says boolean is not
converted to true). A failure prints the request as a curl command.

Each operation is its own test, on its own copy of tenant A, seeded as the tenant-isolation
cases seed it; a path parameter the generator made valid is swapped for the seeded resource
of that name, so the route does its real work, not only its 404. Destructive operations run
like any other: the key a revocation names is the seeded second key, never the one the test
calls with, and what one operation erased the next operation's copy still has.

SQLite only: the run would take twice as long on both databases, and what differs between
them is covered by each domain's own tests, which run on both.
"""

from __future__ import annotations

import base64
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import Engine

from pledge.core.config import Settings
from pledge.crypto.aead import new_key
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import Backend, make_api_token, make_tenant
from tests.isolation_cases import all_cases

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _contract() -> dict[str, Any]:
    """The OpenAPI document, read once when the module is collected: Schemathesis makes a test
    per operation from it then. The schema needs no data, only an application built on a
    runtime whose databases are never opened."""
    with tempfile.TemporaryDirectory() as home:
        runtime = Runtime.open(
            Settings(
                home=Path(home),
                database_url="sqlite://",
                keystore_url="sqlite://",
                master_key=base64.b64encode(new_key()).decode(),
            )
        )
        try:
            return create_app(runtime).openapi()
        finally:
            runtime.close()


# Given, not discovered: a schemathesis.toml on the machine changes nothing. The coverage
# phase sends no unlisted methods: a 405 is Starlette's, the same for every path (and a tenth
# of the run's time).
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"unexpected-methods": []}}})
schema = schemathesis.openapi.from_dict(_contract(), config=CONFIG)


@dataclass
class TenantA:
    """Tenant A seeded once for the module, kept as copies of its two databases."""

    data: sqlite3.Connection
    keys: sqlite3.Connection
    token: str  # an API key with every scope
    params: dict[str, str]  # the seeded resources, by path parameter name


@contextmanager
def _pooled(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A connection of `engine`'s own pool, to copy the database page by page: a second
    handle on the file, once closed, could drop the pool's locks on it (see conftest)."""
    pooled = engine.raw_connection()
    try:
        live = pooled.driver_connection
        assert isinstance(live, sqlite3.Connection)
        yield live
    finally:
        pooled.close()


@pytest.fixture(scope="module")
def tenant_a(backend: Backend) -> Iterator[TenantA]:
    # Seeding takes longer than most operations' runs: done once, restored for each operation.
    assert backend.kind == "sqlite"
    runtime = Runtime.open(backend.settings())
    data, keys = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    try:
        make_tenant(runtime, "tenant-a")
        params = {"tenant_slug": "tenant-a"}
        for cases in all_cases():
            params.update(cases.setup_a(runtime))
        token = make_api_token(runtime, "tenant-a")
        with _pooled(runtime.engine) as live:
            live.backup(data)
        with _pooled(runtime.keystore.engine) as live:
            live.backup(keys)
    finally:
        runtime.close()
        backend.wipe()
    yield TenantA(data, keys, token, params)
    data.close()
    keys.close()


@pytest.fixture
def app(runtime: Runtime, tenant_a: TenantA) -> FastAPI:
    """The application on a fresh copy of tenant A: what one operation's run destroys (an
    erasure, a revoked key) the next does not see."""
    with _pooled(runtime.engine) as live:
        tenant_a.data.backup(live)
    with _pooled(runtime.keystore.engine) as live:
        tenant_a.keys.backup(live)
    return create_app(runtime)


def _use_seeded_resources(case: Case[Any], params: dict[str, str]) -> None:
    """A path the generator made valid names the seeded resources instead; a path it made
    invalid on purpose (a malformed id) stays as made."""
    if not case.path_parameters or (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        return
    for name in case.path_parameters:
        if name in params:
            case.path_parameters[name] = params[name]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@schema.parametrize()
# The examples of one operation share its copy of tenant A on purpose (a revoked key stays
# revoked, as it would for a client); each operation gets a fresh copy.
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_every_operation_keeps_its_contract(
    case: Case[Any], app: FastAPI, tenant_a: TenantA
) -> None:
    _use_seeded_resources(case, tenant_a.params)
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {tenant_a.token}"}, checks=CHECKS
    )
