"""A file whose first line names no identity column is either missing its header or its
identity column: its first line may be a person (names, a customer number), and must not
come back, column by column, in the import's problems."""

from __future__ import annotations

from pathlib import Path

from pledge.runtime import Runtime
from tests.subjects.test_import import _import, _write


def test_a_first_line_without_contact_details_is_not_echoed(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    text = "C-1001,Annabel,Archer,Leeds\nC-1002,Ben,Baker,York\n"
    code, out = _import(tenant, _write(tmp_path, text))
    assert code == 1
    assert "line 1: the file needs an email, phone or external_id column" in out, out
    assert "1 problem(s)" in out, out
    for value in ("c-1001", "annabel", "archer", "leeds"):
        assert value not in out.lower(), out


def test_a_header_with_an_identity_column_still_names_its_bad_columns(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    code, out = _import(tenant, _write(tmp_path, "email,shoe_size\nann@example.com,5\n"))
    assert code == 1 and "column 'shoe_size' needs a category" in out, out
