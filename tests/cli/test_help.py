"""`pledge --help` lists each command with a whole sentence, never one cut mid-phrase."""

from __future__ import annotations

from typing import Any

import typer.main

from pledge.cli.main import app


def _commands(group: Any, prefix: str = "pledge") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        found.append((f"{prefix} {name}", command))
        if hasattr(command, "commands"):  # a group: its own commands too
            found.extend(_commands(command, f"{prefix} {name}"))
    return found


def test_every_command_summary_is_one_whole_line() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 60  # every group's commands were walked
    cut = []
    for name, command in commands:
        summary = (command.help or "").strip().split("\n\n")[0]
        # The listing shows the first line only: a summary wrapped onto a second line is cut.
        if not summary or "\n" in summary or summary[-1] not in ".?)":
            cut.append(f"{name}: {summary!r}")
    assert not cut, "\n".join(cut)
