"""Invariant 1: no plaintext personal data at rest or in logs.

Known values go in through every path (CSV import, API, interactions, rectification, staff
accounts, page searches); then every file under PLEDGE_HOME — database, WAL and journal,
keystore — copied while the runtime still has them open and again at rest once it is closed,
and a pg_dump of the PostgreSQL data store are scanned for them.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pledge.cli.main import app
from pledge.runtime import Runtime
from tests.conftest import Backend, api_client, login, make_api_token, make_user, pg_dump

SECRETS = {
    "email": "quintessa.vdh@secret-mail.example",
    "first": "Quintessa",
    "last": "Vanderhoeven",
    "phone_e164": "+447700912345",
    "company": "Zyxwv Obscura Holdings",
    "transcript": "my diagnosis is zygomycosis",
    "api_email": "ignatius.quarrel@hidden.example",
    "api_note": "Ignatius prefers Thursdays",
    "rectified": "Quillfeather Street 99",
    "staff": "staffer.unique@acme-staff.example",
}


def _variants(value: str) -> list[bytes]:
    out = {value, value.lower(), value.upper()}
    return [v.encode(enc) for v in out for enc in ("utf-8", "utf-16-le")]


def _scan(path: Path) -> list[str]:
    data = path.read_bytes()
    return [k for k, v in SECRETS.items() for b in _variants(v) if b in data]


def _snapshot(home: Path, into: Path) -> list[Path]:
    """Copy every file under `home` into `into` while this process holds them open; returns
    the copies. `cp` runs as another process: closing a descriptor of a database file here
    would drop this process's SQLite locks on it (see `Backend.release`)."""
    subprocess.run(["cp", "-a", f"{home}/.", str(into)], check=True)
    return [p for p in into.rglob("*") if p.is_file()]


def test_known_values_are_nowhere_in_plaintext(
    runtime: Runtime,
    backend: Backend,
    tenant: str,
    cli_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    csv_path = tmp_path / "in.csv"
    csv_path.write_text(
        "email,phone,first_name,last_name,company\n"
        f"{SECRETS['email']},07700 912345,{SECRETS['first']},{SECRETS['last']},"
        f"{SECRETS['company']}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "subjects",
            "import",
            "-t",
            tenant,
            str(csv_path),
            "--category",
            "company=user.contact.organization",
        ],
    )
    assert result.exit_code == 0, result.output
    csv_path.unlink()

    client: TestClient = api_client(runtime, make_api_token(runtime, tenant))
    sid = client.post(
        "/api/v1/subjects",
        json={
            "fields": [
                {"name": "email", "value": SECRETS["api_email"]},
                {"name": "note", "value": SECRETS["api_note"], "category": "user.content.private"},
            ]
        },
    ).json()["id"]
    client.post(
        f"/api/v1/subjects/{sid}/interactions",
        json={
            "kind": "chat",
            "occurred_at": "2026-04-01T10:00:00Z",
            "category": "user.content.private",
            "payload": {"transcript": SECRETS["transcript"]},
        },
    )
    client.put(
        f"/api/v1/subjects/{sid}/fields/street",
        json={"value": SECRETS["rectified"], "category": "user.contact.address.street"},
    )
    client.post("/api/v1/subjects/search", json={"email": SECRETS["email"]})
    assert client.get(f"/api/v1/subjects/{sid}/export").status_code == 200

    make_user(runtime, tenant, SECRETS["staff"])
    pages = TestClient(client.app)
    csrf = login(pages, tenant, SECRETS["staff"])
    assert (
        SECRETS["email"]
        in pages.post("/subjects/search", data={"email": SECRETS["email"], "csrf_token": csrf}).text
    )

    # While the connections are open, the newest writes live in the `-wal` files beside the
    # databases: a copy of every file then, sidecars included, is scanned as well as every
    # file at rest once the runtime is closed (closing merges and deletes the sidecars).
    open_files = _snapshot(Path(backend.home), tmp_path / "open")
    wal = {p.name: p.stat().st_size for p in open_files if p.name.endswith("-wal")}
    assert wal.get("keystore.db-wal", 0) > 0, f"no keystore WAL scanned: {wal}"
    if backend.kind == "sqlite":
        assert wal.get("pledge.db-wal", 0) > 0, f"no data store WAL scanned: {wal}"
    runtime.close()
    backend.release()

    at_rest = [p for p in Path(backend.home).rglob("*") if p.is_file()]
    assert any(p.name.startswith("keystore.db") for p in at_rest)
    files = open_files + at_rest
    if backend.kind == "sqlite":
        assert any(p.name.startswith("pledge.db") for p in at_rest)
    else:
        dump = tmp_path / "datastore.sql"
        pg_dump(backend.data_url, dump)
        assert "subject_records" in dump.read_text()
        files.append(dump)
    found = {str(p): hits for p in files if (hits := _scan(p))}
    assert found == {}, f"plaintext personal data at rest: {found}"

    logged = "\n".join(r.getMessage() for r in caplog.records)
    leaked = [k for k, v in SECRETS.items() if v.lower() in logged.lower()]
    assert leaked == [], f"personal data in logs: {leaked}"
