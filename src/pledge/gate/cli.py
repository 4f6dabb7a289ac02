"""`pledge gate` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Ask the gate; build audiences; the lawful-basis hygiene report.", no_args_is_help=True)
