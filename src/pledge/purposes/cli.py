"""`pledge purposes` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Purposes, collection points and topics.", no_args_is_help=True)
