"""A database busy with another writer is told as such (503, try again), not as a bug."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from pledge.core.db import make_engine
from pledge.runtime import Runtime
from pledge.web import problems
from tests.conftest import api_client, make_api_token


def test_a_request_finding_sqlite_busy_is_told_to_retry_not_a_500(
    runtime: Runtime, tenant: str
) -> None:
    """SQLite: every request's transaction begins IMMEDIATE (even a GET). A writer holding the
    lock past the busy timeout (a long import, a worker step) was a 500 "internal_error";
    a 503 with Retry-After is what a client can act on. (Waits out the 10 s timeout.)"""
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single writer lock")
    token = make_api_token(runtime, tenant)
    client = api_client(runtime, token)
    with runtime.engine.connect() as holder:
        holder.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock, held
        answer = client.get("/api/v1/subjects")
        holder.rollback()
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers["Retry-After"] == "5" and answer.json()["code"] == "busy"


def _app_failing_on_a_missing_table() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/db")
    def database_fault() -> None:
        # A database error that is not "busy" (as a missed migration, a read-only file, a
        # disk I/O error or a dropped PostgreSQL link would be).
        with make_engine("sqlite://").connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))

    return app


def test_any_other_database_error_is_a_fault_answered_500_and_raised_to_the_log() -> None:
    """Only SQLite's "busy" is a 503: another database error is answered like a bug (500)
    and raised on to the server, which logs its cause for the operator."""
    app = _app_failing_on_a_missing_table()
    with pytest.raises(OperationalError, match="no such table"):
        TestClient(app).get("/db")  # what reaches the server's log
    answer = TestClient(app, raise_server_exceptions=False).get("/db")
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
