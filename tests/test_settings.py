"""Settings that would quietly undo a promise are refused when they are read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from pledge.cli.main import app
from pledge.core.config import Settings, reset_settings_cache


@pytest.mark.parametrize(
    ("database_url", "keystore_url"),
    [
        ("sqlite:///{home}/pledge.db", "sqlite:///{home}/pledge.db"),
        ("sqlite:///{home}/pledge.db", "sqlite+pysqlite:///{home}/./pledge.db"),
        (None, "sqlite:///{home}/pledge.db"),  # the default data store, named again
        ("postgresql+psycopg://u@db:5432/pledge", "postgresql://v:pw@db:5432/pledge"),
    ],
)
def test_a_keystore_in_the_data_stores_own_database_is_refused(
    tmp_path: Path, database_url: str | None, keystore_url: str
) -> None:
    # Keys kept in the data store's database are in every backup of it: an erased person's
    # data would open again from a backup.
    home = str(tmp_path)
    with pytest.raises(ValidationError, match="PLEDGE_KEYSTORE_URL names the data store"):
        Settings(
            home=tmp_path,
            database_url=database_url.format(home=home) if database_url else None,
            keystore_url=keystore_url.format(home=home),
        )


@pytest.mark.parametrize(
    ("database_url", "keystore_url"),
    [
        (None, None),  # the defaults: two files in PLEDGE_HOME
        ("postgresql+psycopg://u@db/pledge", None),
        ("postgresql+psycopg://u@db/pledge", "postgresql+psycopg://u@db/pledge_keys"),
        ("postgresql+psycopg://u@db/pledge", "postgresql+psycopg://u@keys-host/pledge"),
    ],
)
def test_a_keystore_apart_is_taken(
    tmp_path: Path, database_url: str | None, keystore_url: str | None
) -> None:
    settings = Settings(home=tmp_path, database_url=database_url, keystore_url=keystore_url)
    assert settings.keys_url != settings.data_url


@pytest.mark.parametrize(
    "command", [["init"], ["serve"], ["worker", "--once"], ["audit", "verify"]]
)
def test_a_bad_setting_is_named_in_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("PLEDGE_HOME", str(tmp_path))
    monkeypatch.setenv("PLEDGE_SIGN_IN_RATE", "0/minute")
    reset_settings_cache()
    try:
        result = CliRunner().invoke(app, command)
    finally:
        reset_settings_cache()
    # A clean exit (typer.Exit), not the error escaping with its traceback.
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    said = " ".join(result.output.split())
    assert "error: PLEDGE_SIGN_IN_RATE: '0/minute' is not a rate" in said
    assert "Traceback" not in result.output
