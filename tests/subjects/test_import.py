"""CSV import: whole-file validation with line numbers, mappings, and safe interruption."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

import pledge.cli.common as cli_common
from pledge.audit import service as audit
from pledge.cli.main import app
from pledge.runtime import Runtime
from pledge.subjects import reading, service
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject, SubjectIdentity, SubjectRecord

runner = CliRunner()

GOOD = """email,phone,first_name,last_name,company
ann@example.com,+44 7700 900001,Ann,Archer,Archer Ltd
ben@example.com,,Ben,Baker,
,07700900003,Cat,Cole,Cole & Co
"""


def _write(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _count(runtime: Runtime, tenant: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        return sum(reading.count_subjects(ctx).values())


def test_import_with_a_category_for_the_extra_column(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = _write(tmp_path, GOOD)
    r = runner.invoke(
        app,
        [
            "subjects",
            "import",
            "--tenant",
            tenant,
            str(path),
            "--category",
            "company=user.contact.organization",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Imported 3 subject(s); 0 already present" in r.output
    with runtime.tenant_context(tenant) as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.PHONE, "+447700900003")
        assert sid is not None
        view = reading.read_subject(ctx, sid)
        assert view.value("company") == "Cole & Co"
        assert {f.category for f in view.fields} >= {"user.contact.organization", "user.name.first"}
        ben = reading.read_subject(
            ctx, reading.require_subject(ctx, IdentityKind.EMAIL, "ben@example.com")
        )
        assert ben.value("company") is None  # empty cells are not fields


def test_a_mapping_file_sets_category_source_class_and_name(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[columns.company]\ncategory = "user.contact.organization"\nsource = "third_party"\n'
        'retention_class = "billing"\nfield = "employer"\n'
    )
    r = runner.invoke(
        app,
        [
            "subjects",
            "import",
            "-t",
            tenant,
            str(_write(tmp_path, GOOD)),
            "--mapping",
            str(mapping),
        ],
    )
    assert r.exit_code == 0, r.output
    with runtime.tenant_context(tenant) as ctx:
        view = reading.read_subject(
            ctx, reading.require_subject(ctx, IdentityKind.EMAIL, "ann@example.com")
        )
    employer = next(f for f in view.fields if f.name == "employer")
    assert (employer.value, employer.source, employer.retention_class) == (
        "Archer Ltd",
        "third_party",
        "billing",
    )


def test_every_bad_row_is_listed_and_nothing_is_imported(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad = (
        "email,phone,first_name,last_name\n"
        "ok@example.com,,Ok,Row\n"  # line 2: fine
        "not-an-email,,Bad,Email\n"  # line 3
        ",,No,Identity\n"  # line 4
        "ok@example.com,,Dup,Licate\n"  # line 5: same e-mail as line 2
        "fine@example.com,12,Short,Phone\n"  # line 6: impossible phone number
        "x@example.com,,too,many,values\n"  # line 7
    )
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(_write(tmp_path, bad))])
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    for expected in (
        "5 problem(s), nothing was imported",
        "line 3: field 'email': not a valid e-mail address",
        "line 4: a subject needs at least one identity",
        "line 5: same identity as line 2",
        "line 6: field 'phone'",
        "line 7: has 5 values, the header has 4",
    ):
        assert expected in out, (expected, out)
    assert "not-an-email" not in out  # reasons, not values
    assert _count(runtime, tenant) == 0


def test_a_file_with_hundreds_of_bad_rows_has_every_one_listed_in_line_order(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    # 250 bad e-mails among 250 good rows: more than a page shows, all of them on the terminal.
    rows = [
        f"user{n}-at-example.com,Bad" if n % 2 else f"user{n}@example.com,Good" for n in range(500)
    ]
    path = _write(tmp_path, "email,first_name\n" + "\n".join(rows) + "\n")
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(path)])
    assert r.exit_code == 1, r.output
    bad_lines = [n + 2 for n in range(500) if n % 2]  # the header is line 1
    assert r.stderr.splitlines() == [
        *(f"line {line}: field 'email': not a valid e-mail address" for line in bad_lines),
        "error: 250 problem(s), nothing was imported",
    ]
    assert _count(runtime, tenant) == 0


def test_header_problems_are_reported_before_any_row(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    r = runner.invoke(
        app,
        ["subjects", "import", "-t", tenant, str(_write(tmp_path, "first_name,shoe_size\nA,42\n"))],
    )
    out = " ".join(r.output.split())
    assert r.exit_code == 1
    assert "line 1: column 'shoe_size' needs a category" in out
    assert "needs an email, phone or external_id column" in out
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(tmp_path / "missing.csv")])
    assert r.exit_code == 1 and "cannot read missing.csv" in " ".join(r.output.split())
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("email,first_name\nzoe@example.com,Zoë\n".encode("latin-1"))
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(latin1)])
    assert r.exit_code == 1 and "line 2: not UTF-8" in " ".join(r.output.split())


def _big_csv(tmp_path: Path, rows: int) -> Path:
    lines = ["email,phone,first_name,last_name,company"]
    lines += [f"user{n}@example.com,+4479{n:08d},First{n},Last{n},Company {n}" for n in range(rows)]
    return _write(tmp_path, "\n".join(lines) + "\n", "big.csv")


@pytest.mark.slow
def test_a_killed_import_leaves_whole_subjects_and_a_rerun_completes_it(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    rows, batch = 20_000, 50  # long enough to be caught midway on a fast machine
    path = _big_csv(tmp_path, rows)
    cmd = [
        sys.executable,
        "-m",
        "pledge.cli.main",
        "subjects",
        "import",
        "-t",
        tenant,
        str(path),
        "--category",
        "company=user.contact.organization",
        "--batch-size",
        str(batch),
    ]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **cli_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _count(runtime, tenant) >= 5 * batch:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the import finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = _count(runtime, tenant)
    assert 0 < partial < rows
    assert partial % batch == 0, "a batch was half-written"
    with runtime.tenant_context(tenant) as ctx:
        # Every stored subject is whole: identities, a readable record with all five fields.
        for sid in ctx.session.scalars(select(Subject.id)):
            view = reading.read_subject(ctx, sid, audited=False)
            assert len(view.fields) == 5 and not view.unreadable_classes
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok

    done = subprocess.run(
        cmd, env={**os.environ, **cli_env}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"Imported {rows - partial} subject(s); {partial} already present" in " ".join(
        done.stdout.split()
    )
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Subject)) == rows
        assert ctx.session.scalar(select(func.count()).select_from(SubjectRecord)) == rows
        n_ids = ctx.session.scalar(select(func.count()).select_from(SubjectIdentity))
        assert n_ids == 2 * rows  # e-mail and phone each point at exactly one subject
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok


def _import(tenant: str, path: Path, *extra: str) -> tuple[int, str]:
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(path), *extra])
    return r.exit_code, " ".join(r.output.split())


def test_a_value_too_long_for_csv_does_not_stop_the_check_of_later_rows(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    text = (
        "email,first_name\n"
        f"ann@example.com,{'x' * 200_000}\n"  # line 2: beyond the csv module's field limit
        "ben@example.com,Ben\n"
        "not-an-email,Cat\n"  # line 4
    )
    code, out = _import(tenant, _write(tmp_path, text))
    assert code == 1
    assert "2 problem(s), nothing was imported" in out, out
    assert "line 2: not valid CSV" in out
    assert "line 4: field 'email': not a valid e-mail address" in out
    assert _count(runtime, tenant) == 0


def test_a_quote_left_open_is_an_error_not_the_rest_of_the_file_in_one_value(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    text = 'email,last_name\nann@example.com,"Archer\nben@example.com,Baker\n'
    code, out = _import(tenant, _write(tmp_path, text))
    assert code == 1, out
    assert "line 2: not valid CSV" in out and "nothing was imported" in out
    assert _count(runtime, tenant) == 0
    # A quoted value may still hold a line break, and the next row's line is counted after it.
    text = 'email,last_name\nann@example.com,"Archer\nand Sons"\nbad,Baker\n'
    code, out = _import(tenant, _write(tmp_path, text))
    assert code == 1 and "1 problem(s)" in out and "line 4: field 'email'" in out, out


def test_a_setting_wrong_for_a_whole_column_is_reported_once_on_the_header(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    rows = "".join(f"user{n}@example.com,A{n},B{n}\n" for n in range(300))
    path = _write(tmp_path, "email,first-name,first_name\n" + rows)
    code, out = _import(tenant, path, "--category", "first-name=user.name.first")
    assert code == 1
    assert "1 problem(s)" in out, out[:300]
    assert "line 1: columns 'first-name' and 'first_name' both fill field 'first_name'" in out

    path = _write(tmp_path, "email,company\n" + "".join(f"u{n}@example.com,C\n" for n in range(9)))
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[columns.company]\ncategory = "user.contact.organization"\nsource = "partner"\n'
        'retention_class = "forever"\n'
    )
    code, out = _import(tenant, path, "--mapping", str(mapping))
    assert code == 1
    assert "2 problem(s)" in out, out
    assert "line 1: column 'company': source must be one of" in out
    assert "line 1: column 'company': unknown retention class 'forever'" in out

    code, out = _import(
        tenant,
        path,
        "--category",
        "company=user.contact.organization",
        "--retention-class",
        "forever",
    )
    assert code == 1
    assert "2 problem(s)" in out, out  # email and company, not every row
    assert "line 1: column 'email': unknown retention class 'forever'" in out
    assert _count(runtime, tenant) == 0


def test_a_row_only_partly_matching_a_subject_in_the_vault_is_a_problem_not_skipped(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    first = "email,phone,first_name\nann@example.com,+447700900001,Ann\nben@example.com,,Ben\n"
    assert _import(tenant, _write(tmp_path, first))[0] == 0
    text = (
        "email,phone,first_name\n"
        "zoe@example.com,+447700900001,Zoe\n"  # line 2: Ann's phone, someone else's e-mail
        "ben@example.com,+447700900002,Ben\n"  # line 3: Ben, with a phone he has not in the vault
        "cy@example.com,+447700900009,Cy\n"  # line 4: new
    )
    code, out = _import(tenant, _write(tmp_path, text, "second.csv"))
    assert code == 1, out
    assert "2 problem(s), nothing was imported" in out, out
    assert "line 2: its phone belongs to a subject already here, its email does not" in out
    assert "line 3: its email belongs to a subject already here, its phone does not" in out
    assert "zoe@example.com" not in out and "+447700900002" not in out
    assert _count(runtime, tenant) == 2
    # An e-mail of one subject and a phone of another: neither subject is this row.
    two = "email,phone\nben@example.com,+447700900001\n"
    code, out = _import(tenant, _write(tmp_path, two, "third.csv"))
    assert code == 1 and "line 2: its email and phone belong to different subjects" in out, out
    # Rows whose identities are all one subject's were imported before: skipped, as a re-run.
    code, out = _import(tenant, _write(tmp_path, first))
    assert code == 0 and "Imported 0 subject(s); 2 already present" in out, out


def test_a_file_without_a_header_is_named_as_such_without_echoing_its_first_contact(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    text = "ann@example.com,+447700900001,Ann,Archer\nben@example.com,,Ben,Baker\n"
    code, out = _import(tenant, _write(tmp_path, text))
    assert code == 1
    assert "line 1: contact details where the column names should be" in out, out
    assert "1 problem(s)" in out
    for value in ("ann@example.com", "ann_example_com", "Archer", "7700900001"):
        assert value not in out, out
    code, out = _import(tenant, _write(tmp_path, "Ann,Archer,+44 7700 900001\n"))
    assert code == 1 and "contact details where the column names should be" in out, out
    assert "Archer" not in out and "7700 900001" not in out


def test_checking_a_file_stops_no_writer_and_shows_how_far_it_is(
    runtime: Runtime,
    tenant: str,
    cli_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large file takes a while to check: the server goes on writing meanwhile (the check
    holds no write lock: on SQLite it would stop every writer, who give up after the busy
    timeout), and a terminal shows the check's progress before the import's."""
    rows = 2500
    path = _write(
        tmp_path, "email,first_name\n" + "".join(f"p{n}@example.com,P{n}\n" for n in range(rows))
    )
    staff_wrote: list[uuid.UUID] = []
    check_one_row = service.prepare_subject
    started = False

    def staff_write_during_the_check(*args: Any, **kwargs: Any) -> service.PreparedSubject:
        nonlocal started
        if not started:  # once: the staff's own write checks a row too
            started = True
            with runtime.tenant_context(tenant) as staff:
                walk_in = [service.FieldInput("email", "walk.in@example.com")]
                staff_wrote.append(service.create_subject(staff, walk_in))
        return check_one_row(*args, **kwargs)

    monkeypatch.setattr(service, "prepare_subject", staff_write_during_the_check)
    screen = io.StringIO()
    monkeypatch.setattr(cli_common, "console", Console(file=screen, force_terminal=True, width=100))
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(path)])
    assert r.exit_code == 0, r.output
    assert len(staff_wrote) == 1
    assert _count(runtime, tenant) == rows + 1
    drawn = screen.getvalue()
    lines = rows + 1  # with the header
    assert "Checking" in drawn and f"{lines}/{lines}" in drawn
    assert drawn.index("Checking") < drawn.index("Importing")


def test_headers_of_other_tools_and_a_mapped_identity_column_are_understood(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A contact list exported from a CRM says "E-mail Address", "Surname"…; a column with
    a name of its own becomes the e-mail identity through the mapping file."""
    exported = _write(
        tmp_path,
        "E-mail Address,Phone Number,First Name,Surname\n"
        "ann@example.com,+44 7700 900001,Ann,Archer\n",
        "crm.csv",
    )
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(exported)])
    assert r.exit_code == 0, r.output
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns."work mail"]\nfield = "email"\n')
    own = _write(tmp_path, "Work Mail,Name\nben@example.com,Ben\n", "own.csv")
    r = runner.invoke(
        app,
        ["subjects", "import", "-t", tenant, str(own), "--mapping", str(mapping),
         "--category", "name=user.name"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    with runtime.tenant_context(tenant) as ctx:
        # Found by their identities, as any imported subject is.
        ann = reading.read_subject(
            ctx, reading.require_subject(ctx, IdentityKind.PHONE, "+447700900001")
        )
        ben = reading.read_subject(
            ctx, reading.require_subject(ctx, IdentityKind.EMAIL, "ben@example.com")
        )
    assert (ann.value("email"), ann.value("first_name"), ann.value("last_name")) == (
        "ann@example.com",
        "Ann",
        "Archer",
    )
    assert (ben.value("email"), ben.value("name")) == ("ben@example.com", "Ben")


def test_two_columns_filling_one_identity_are_refused(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    both = _write(tmp_path, "E-mail,Email Address\nann@example.com,ann@example.org\n")
    r = runner.invoke(app, ["subjects", "import", "-t", tenant, str(both)])
    assert r.exit_code != 0
    out = " ".join(r.output.split())
    assert "columns 'e-mail' and 'email address' both fill field 'email'" in out
    assert _count(runtime, tenant) == 0


def test_a_column_given_a_category_or_beside_the_known_one_keeps_its_own_meaning(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The usual spellings are understood only where nothing says otherwise: a "telephone"
    column given a category is a note, not the phone identity; an "email address" column
    beside "email" is a field of its own — as such files imported before."""
    notes = _write(
        tmp_path,
        "email,telephone,email address\nann@example.com,call after 5pm,ann@work.example\n",
    )
    r = runner.invoke(
        app,
        ["subjects", "import", "-t", tenant, str(notes), "--category", "telephone=user.contact",
         "--category", "email address=user.contact.email"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    with runtime.tenant_context(tenant) as ctx:
        ann = reading.read_subject(
            ctx, reading.require_subject(ctx, IdentityKind.EMAIL, "ann@example.com")
        )
    assert (ann.value("telephone"), ann.value("email_address")) == (
        "call after 5pm",
        "ann@work.example",
    )
    assert ann.value("phone") is None
