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

On both databases, like the rest of the suite. Tenant A is seeded once per database; each
operation's copy is restored from SQLite's backup of it, or on PostgreSQL from its tables'
rows as binary COPY wrote them (a template database takes half a second to copy, COPY a
fiftieth), so the run takes about as long on PostgreSQL as on SQLite.
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
from pledge.crypto.keystore import KeystoreBase
from pledge.runtime import Runtime
from pledge.schema import Base
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
    """Tenant A seeded once for the module, kept as copies of its two databases: the keystore
    (SQLite) in memory, the data store in memory on SQLite and as each table's rows in
    PostgreSQL's binary COPY format on PostgreSQL."""

    keys: sqlite3.Connection
    data: sqlite3.Connection | dict[str, bytes]
    token: str  # an API key with every scope
    params: dict[str, str]  # the seeded resources, by path parameter name


@contextmanager
def _pooled(engine: Engine) -> Iterator[Any]:
    """A DBAPI connection of `engine`'s own pool, to copy the database: on SQLite, a second
    handle on the file, once closed, could drop the pool's locks on it (see conftest)."""
    pooled = engine.raw_connection()
    try:
        yield pooled.driver_connection
    finally:
        pooled.close()


def _copy_out(engine: Engine) -> dict[str, bytes]:
    """Every table of the data store that has rows, as COPY writes it: byte for byte what the
    database holds, with no type read back and written again."""
    rows: dict[str, bytes] = {}
    with _pooled(engine) as live, live.cursor() as cursor:
        for table in Base.metadata.sorted_tables:
            with cursor.copy(f'COPY "{table.name}" TO STDOUT (FORMAT binary)') as copy:
                data = b"".join(bytes(block) for block in copy)
            if cursor.rowcount:
                rows[table.name] = data
        live.rollback()
    return rows


def _copy_in(engine: Engine, rows: dict[str, bytes]) -> None:
    """The tables `_copy_out` read, written back into an emptied data store in one
    transaction, parents before children."""
    with _pooled(engine) as live, live.cursor() as cursor:
        for table in Base.metadata.sorted_tables:
            if table.name in rows:
                with cursor.copy(f'COPY "{table.name}" FROM STDIN (FORMAT binary)') as copy:
                    copy.write(rows[table.name])
        live.commit()


def _empty(runtime: Runtime) -> None:
    """Every row of both databases deleted, as `Backend.wipe` does, but by DELETE on
    PostgreSQL too: the tables hold a few rows, and a TRUNCATE of every table costs a fifth of
    a second, more than most operations' runs."""
    for engine, tables in (
        (runtime.engine, reversed(Base.metadata.sorted_tables)),
        (runtime.keystore.engine, KeystoreBase.metadata.sorted_tables),
    ):
        with engine.begin() as conn:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture(scope="module")
def tenant_a(backend: Backend) -> Iterator[TenantA]:
    # Seeding takes longer than most operations' runs: done once, restored for each operation.
    runtime = Runtime.open(backend.settings())
    keys = sqlite3.connect(":memory:")
    data: sqlite3.Connection | dict[str, bytes]
    try:
        make_tenant(runtime, "tenant-a")
        params = {"tenant_slug": "tenant-a"}
        for cases in all_cases():
            params.update(cases.setup_a(runtime))
        token = make_api_token(runtime, "tenant-a")
        if backend.kind == "sqlite":
            data = sqlite3.connect(":memory:")
            with _pooled(runtime.engine) as live:
                live.backup(data)
        else:
            data = _copy_out(runtime.engine)
        with _pooled(runtime.keystore.engine) as live:
            live.backup(keys)
    finally:
        runtime.close()
        backend.wipe()
    yield TenantA(keys, data, token, params)
    keys.close()
    if isinstance(data, sqlite3.Connection):
        data.close()


@pytest.fixture
def app(backend: Backend, tenant_a: TenantA) -> Iterator[FastAPI]:
    """The application on a fresh copy of tenant A: what one operation's run destroys (an
    erasure, a revoked key) the next does not see."""
    runtime = Runtime.open(backend.settings())
    try:
        if isinstance(tenant_a.data, sqlite3.Connection):
            with _pooled(runtime.engine) as live:
                tenant_a.data.backup(live)
        else:
            _copy_in(runtime.engine, tenant_a.data)
        with _pooled(runtime.keystore.engine) as live:
            tenant_a.keys.backup(live)
        yield create_app(runtime)
    finally:
        _empty(runtime)
        runtime.close()


def _use_seeded_resources(case: Case[Any], params: dict[str, str]) -> None:
    """A path the generator made valid names the seeded resources instead; a path it made
    invalid on purpose (a malformed id) stays as made."""
    if not case.path_parameters or (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        return
    for name in case.path_parameters:
        if name in params:
            case.path_parameters[name] = params[name]


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
