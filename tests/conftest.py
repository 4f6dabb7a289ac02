"""Test fixtures: real databases, built by the migrations.

Every test that takes `runtime` runs twice: on SQLite and on PostgreSQL. The PostgreSQL URL
comes from `PLEDGE_TEST_PG_URL` (scripts/test.sh starts a throwaway cluster); without it the
PostgreSQL runs are skipped — unless `PLEDGE_TEST_REQUIRE_PG=1`, when they fail instead.
Each test gets empty tables (truncated after the test) and a fresh keystore.
"""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp

from pledge.access import service as access
from pledge.access.context import TenantContext
from pledge.access.permissions import ALL_SCOPES, Role, Scope
from pledge.core.clock import frozen
from pledge.core.config import Settings, reset_settings_cache
from pledge.core.db import make_engine, transaction
from pledge.crypto.aead import new_key
from pledge.crypto.keystore import KeystoreBase, make_keystore_engine
from pledge.migrations import upgrade
from pledge.runtime import Runtime
from pledge.schema import Base
from pledge.tenants import service as tenants
from pledge.web.app import create_app

# What these tests check is behaviour, not speed (the benchmarks measure that): no per-example
# deadline, which a slow or busy machine trips on a first, cold call (a holiday calendar).
settings.register_profile("pledge", deadline=None)
settings.load_profile("pledge")

BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery staple"
STARTUP_TIMEOUT = 10.0  # seconds for the live server to start or stop


def _pg_admin_url() -> str | None:
    return os.environ.get("PLEDGE_TEST_PG_URL")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# Databases this process created on the test cluster; dropped when its session ends.
_PG_CREATED: set[str] = set()


def _pg_name(base: str) -> str:
    """A database name of this test process: two test runs on one PostgreSQL cluster (two
    developers' terminals) must not drop each other's databases."""
    name = f"{base}_{_worker()}_{os.getpid()}"
    _PG_CREATED.add(name)
    return name


def _drop_pg_databases(admin_url: str) -> None:
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in sorted(_PG_CREATED):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    _PG_CREATED.clear()


def _create_pg_database(admin_url: str, name: str) -> str:
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


class Backend:
    """A migrated data store and keystore for one database kind, for the whole session."""

    def __init__(self, kind: str, home: Path) -> None:
        self.kind = kind
        self.home = home
        self.master_key = base64.b64encode(new_key()).decode()
        if kind == "sqlite":
            self.data_url = f"sqlite:///{home / 'pledge.db'}"
        else:
            admin = _pg_admin_url()
            assert admin
            self.data_url = _create_pg_database(admin, _pg_name("pledge_test"))
        self.keys_url = f"sqlite:///{home / 'keystore.db'}"
        self.data_engine = make_engine(self.data_url)
        self.keys_engine = make_keystore_engine(self.keys_url)
        upgrade("datastore", self.data_engine)
        upgrade("keystore", self.keys_engine)

    def settings(self) -> Settings:
        return Settings(
            home=self.home,
            database_url=self.data_url,
            keystore_url=self.keys_url,
            master_key=self.master_key,
        )

    def env(self) -> dict[str, str]:
        return {
            "PLEDGE_HOME": str(self.home),
            "PLEDGE_DATABASE_URL": self.data_url,
            "PLEDGE_KEYSTORE_URL": self.keys_url,
            "PLEDGE_MASTER_KEY": self.master_key,
        }

    def release(self) -> None:
        """Close pooled connections. Needed before this process reads the database files
        itself: closing any file descriptor of a file drops *all* of the process's POSIX
        locks on it, SQLite's included, and another process could then corrupt the WAL."""
        self.data_engine.dispose()
        self.keys_engine.dispose()

    def wipe(self) -> None:
        _wipe(self.data_engine, [t.name for t in reversed(Base.metadata.sorted_tables)])
        _wipe(self.keys_engine, [t.name for t in KeystoreBase.metadata.sorted_tables])


def _wipe(engine: Engine, tables: list[str]) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    kind: str = request.param
    if kind == "postgresql" and not _pg_admin_url():
        if os.environ.get("PLEDGE_TEST_REQUIRE_PG") == "1":
            pytest.fail("PLEDGE_TEST_REQUIRE_PG=1 but PLEDGE_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured (run `make test`, which starts one)")
    home = tmp_path_factory.mktemp(f"home-{kind}")
    b = Backend(kind, home)
    yield b
    b.data_engine.dispose()
    b.keys_engine.dispose()
    if kind == "postgresql":
        _drop_pg_databases(_pg_admin_url() or "")


@pytest.fixture
def runtime(backend: Backend) -> Iterator[Runtime]:
    rt = Runtime.open(backend.settings())
    try:
        yield rt
    finally:
        rt.close()
        backend.wipe()


@pytest.fixture
def cli_env(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for running the CLI against the test backend."""
    for key, value in backend.env().items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    yield backend.env()
    reset_settings_cache()


@pytest.fixture
def private_targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Webhooks may go to this machine: the tests' receivers listen on 127.0.0.1, which a
    deployment refuses (`pledge.webhooks.targets`)."""
    monkeypatch.setenv("PLEDGE_WEBHOOKS_ALLOW_PRIVATE", "true")
    reset_settings_cache()
    yield
    reset_settings_cache()


def pg_bindir() -> Path:
    env = os.environ.get("PLEDGE_TEST_PG_BINDIR")
    if env:
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not found:
        pytest.fail("PostgreSQL client binaries not found (set PLEDGE_TEST_PG_BINDIR)")
    return found[-1]


def pg_dump(url: str, out: Path) -> None:
    """Dump a PostgreSQL database to plain SQL with the system's pg_dump."""
    u = make_url(url)
    subprocess.run(
        [
            str(pg_bindir() / "pg_dump"),
            "-h",
            str(u.query["host"]),
            "-U",
            str(u.username),
            "-d",
            str(u.database),
            "-f",
            str(out),
            "--no-owner",
        ],
        check=True,
    )


def backup_data_store(backend: Backend, name: str) -> str:
    """Copy the data store as a backup would; returns the copy's URL."""
    if backend.kind == "sqlite":
        copy = backend.home / f"{name}.db"
        src = sqlite3.connect(make_url(backend.data_url).database or "")
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{copy}"
    dump = backend.home / f"{name}.sql"
    pg_dump(backend.data_url, dump)
    url = _create_pg_database(_pg_admin_url() or "", _pg_name(name))
    u = make_url(url)
    subprocess.run(
        [
            str(pg_bindir() / "psql"),
            "-q",
            "-h",
            str(u.query["host"]),
            "-U",
            str(u.username),
            "-d",
            str(u.database),
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(dump),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return url


# ---------------------------------------------------------------------------------------------
# Tenants, users, clients


def make_tenant(runtime: Runtime, slug: str = "acme", **kwargs: object) -> uuid.UUID:
    kwargs.setdefault("retention_classes", {"billing": "Billing records, 7 years"})
    with transaction(runtime.sessions) as session:
        tenant = tenants.create_tenant(
            session,
            runtime.keystore,
            slug=slug,
            name=slug.title() + " Ltd",
            **kwargs,  # type: ignore[arg-type]
        )
        return tenant.id


def make_api_token(runtime: Runtime, slug: str, scopes: frozenset[Scope] = ALL_SCOPES) -> str:
    with runtime.tenant_context(slug) as ctx:
        _key, token = access.create_api_key(ctx, name="test", scopes=scopes)
    return token


def make_user(runtime: Runtime, slug: str, email: str, role: Role = Role.OWNER) -> None:
    with runtime.tenant_context(slug) as ctx:
        access.add_user(ctx, email=email, password=PASSWORD, role=role.value)


def api_client(runtime: Runtime, token: str | None = None) -> TestClient:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """`app` served over real HTTP by uvicorn in a thread; yields the base URL."""
    host = "127.0.0.1"
    # Bind the socket here and hand it to uvicorn: no race for the port between two workers.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STARTUP_TIMEOUT)
            sock.close()
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    """The app exactly as production builds it, served over real HTTP; yields the base URL."""
    with serving(create_app(runtime)) as url:
        yield url


@pytest.fixture
def tenant(runtime: Runtime) -> str:
    make_tenant(runtime, "acme")
    return "acme"


@pytest.fixture
def client(runtime: Runtime, tenant: str) -> TestClient:
    return api_client(runtime, make_api_token(runtime, tenant))


def post_login(
    client: httpx.Client, workspace: str, email: str, password: str = PASSWORD
) -> httpx.Response:
    """The sign-in form filled in and sent (its CSRF token from the page's cookie); the
    answer as it is, not followed (a TestClient, or a client of a real server)."""
    client.get("/login")
    return client.post(
        "/login",
        data={
            "workspace": workspace,
            "email": email,
            "password": password,
            "csrf_token": client.cookies["pledge_csrf"],
            "next": "/",
        },
        follow_redirects=False,
    )


def login(client: TestClient, workspace: str, email: str, password: str = PASSWORD) -> str:
    r = post_login(client, workspace, email, password)
    assert r.status_code == 303, r.text
    return client.cookies["pledge_csrf"]


# ---------------------------------------------------------------------------------------------
# Races on PostgreSQL: a second transaction run in a thread until it waits on a row lock


def waiting_on_a_lock(runtime: Runtime, sessions: int = 1) -> bool:
    """Whether `sessions` sessions of the test database (one) wait for a lock (PostgreSQL)."""
    with runtime.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar()
    return found is not None and found >= sessions


def until_done_or_blocked(runtime: Runtime, thread: threading.Thread, what: str) -> None:
    """Wait until `thread` has finished or waits for a lock the caller's transaction holds;
    `what` names it in the failure (neither within a minute)."""
    polls = 0
    while thread.is_alive() and not waiting_on_a_lock(runtime):
        polls += 1
        assert polls < 1200, f"{what} neither finished nor waited for a lock"
        thread.join(0.05)


class Second:
    """A second worker's transaction running `step` in a thread while the caller's is still
    open; started at once, it runs until it finishes or waits for a lock the first holds."""

    def __init__(
        self, runtime: Runtime, at: datetime, slug: str, step: Callable[[TenantContext], int]
    ) -> None:
        self._result: list[int] = []
        self._failure: list[BaseException] = []

        def run() -> None:
            try:
                with frozen(at), runtime.tenant_context(slug) as ctx:
                    self._result.append(step(ctx))
            except BaseException as exc:  # re-raised in the test's thread
                self._failure.append(exc)

        self._thread = threading.Thread(target=run)
        self._thread.start()
        until_done_or_blocked(runtime, self._thread, "the second worker")

    def result(self) -> int:
        """What the step returned, once the first worker has committed."""
        self._thread.join()
        if self._failure:
            raise self._failure[0]
        return self._result[0]
