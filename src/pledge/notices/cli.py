"""`pledge notices` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Privacy notices and consent wordings, versioned.", no_args_is_help=True)
