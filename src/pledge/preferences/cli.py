"""`pledge preferences` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Preferences, unsubscribe links and the suppression list.", no_args_is_help=True)
