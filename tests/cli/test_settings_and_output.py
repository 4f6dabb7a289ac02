"""What the CLI tells an operator: a bad setting stops every command with one line naming
it, and output meant to be saved (`> receipt.jws`) holds that and nothing else."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pledge.cli.main import app
from pledge.core.config import Settings, reset_settings_cache
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.conftest import make_tenant

runner = CliRunner()


@pytest.mark.parametrize("command", [["audit", "verify"], ["init"], ["worker", "--once"]])
@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        # Taken before: every mail-sending action failed later, one by one.
        ("PLEDGE_MAIL_BACKEND", "smpt", "'outbox', 'file' or 'smtp'"),
        # A binascii traceback before; a key of the wrong size named no setting.
        ("PLEDGE_MASTER_KEY", "abc", "32 bytes, base64-encoded"),
        ("PLEDGE_MASTER_KEY", base64.b64encode(b"k" * 16).decode(), "32 bytes, base64-encoded"),
        # SQLAlchemy tracebacks before: unreadable, an alias it dropped, a driver not installed.
        ("PLEDGE_DATABASE_URL", "bogus", "not a database URL"),
        ("PLEDGE_DATABASE_URL", "postgres://u@db/pledge", "'postgres' is not supported"),
        ("PLEDGE_DATABASE_URL", "postgresql://u@db/pledge", "driver 'psycopg2' is not installed"),
        ("PLEDGE_KEYSTORE_URL", "mysql://u@db/keys", "'mysql' is not supported"),
        # Taken before: a sign-in that ends as it starts, an import that never moves.
        ("PLEDGE_SESSION_HOURS", "0", "greater than or equal to 1"),
        ("PLEDGE_SESSION_HOURS", "-1", "greater than or equal to 1"),
        ("PLEDGE_IMPORT_BATCH_SIZE", "0", "greater than or equal to 1"),
    ],
)
def test_a_bad_setting_stops_the_command_with_one_line_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    variable: str,
    value: str,
    said: str,
) -> None:
    for other in ("PLEDGE_DATABASE_URL", "PLEDGE_KEYSTORE_URL", "PLEDGE_MASTER_KEY"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv("PLEDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(variable, value)
    reset_settings_cache()
    try:
        result = runner.invoke(app, command)
    finally:
        reset_settings_cache()
    # A clean exit (typer.Exit), not the error escaping with its traceback.
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one line, however long: not wrapped at 80
    assert lines[0].startswith(f"error: {variable}: ") and said in lines[0], lines[0]
    assert not (tmp_path / "home").exists()  # stopped before anything was made


def test_a_bad_database_url_is_not_echoed_with_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEDGE_HOME", str(tmp_path))
    monkeypatch.setenv("PLEDGE_DATABASE_URL", "postgres://pledge:hunter2@db/pledge")
    reset_settings_cache()
    try:
        result = runner.invoke(app, ["audit", "verify"])
    finally:
        reset_settings_cache()
    assert result.exit_code == 1 and "PLEDGE_DATABASE_URL" in result.stderr
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("values", "backend"),
    [({}, "outbox"), ({"mail_backend": " SMTP "}, "smtp"), ({"mail_backend": "File"}, "file")],
)
def test_the_mail_backends_are_taken_as_before(values: dict[str, str], backend: str) -> None:
    assert Settings.model_validate(values).mail_backend == backend


def test_the_grant_receipt_saved_from_stdout_verifies(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        subjects.create_subject(ctx, [FieldInput("email", "pat@example.com")])
    t = ("--tenant", "acme")
    for args, stdin in [
        (["notice", "create", *t, "words", "--kind", "consent_wording", "--title", "W"], None),
        (["notice", "publish", *t, "words", "-"], "Yes, call me about offers."),
        (
            ["purpose", "create", *t, "calls", "--name", "Sales calls", "--basis", "Consent",
             "--channel", "phone", "--consent-notice", "words"],
            None,
        ),
    ]:  # fmt: skip
        result = runner.invoke(app, args, input=stdin)
        assert result.exit_code == 0, result.output

    result = runner.invoke(
        app, ["consent", "grant", *t, "--email", "pat@example.com", "--purpose", "calls"]
    )
    assert result.exit_code == 0, result.output
    # The note for the operator, with the record's id, is still shown: on stderr.
    assert "granted for calls (wording sha256" in result.stderr
    # `pledge consent grant … > receipt.jws`: the file holds the receipt alone.
    saved = tmp_path / "receipt.jws"
    saved.write_text(result.stdout)
    assert result.stdout.count("\n") == 1 and result.stdout.strip().count(".") == 2
    verified = runner.invoke(app, ["consent", "verify-receipt", *t, str(saved)])
    assert verified.exit_code == 0, verified.output
    assert "valid" in verified.output and "consentReceiptID" in verified.output


def test_the_consent_help_names_only_what_the_group_does() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    line = next(x for x in result.stdout.splitlines() if " consent " in x)
    assert "objection" not in line and "privacy state" not in line
    result = runner.invoke(app, ["consent", "--help"], env={"COLUMNS": "200"})
    assert "objection" not in result.stdout and "privacy state" not in result.stdout
    for command in ("grant", "withdraw", "timeline", "verify-receipt"):
        assert command in result.stdout
