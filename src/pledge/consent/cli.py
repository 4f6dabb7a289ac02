"""`pledge consent` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="The consent ledger, receipts, objections and privacy state.", no_args_is_help=True)
