"""A database busy with another writer is told as such (503, try again), not as a bug."""

from __future__ import annotations

import pytest

from pledge.runtime import Runtime
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
