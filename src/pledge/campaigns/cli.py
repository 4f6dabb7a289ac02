"""`pledge campaigns` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Campaigns sent through the gate.", no_args_is_help=True)
