"""`pledge webhooks`: deliver what is due."""

from __future__ import annotations

from typing import Annotated

import typer

from pledge.cli.common import console, open_runtime, reports_errors
from pledge.webhooks import service

app = typer.Typer(help="Signed webhooks: deliver the due ones.", no_args_is_help=True)


@app.command("deliver")
@reports_errors
def deliver(
    limit_runs: Annotated[int, typer.Option(help="Batches of 500 to send at most")] = 10,
) -> None:
    """Send pending deliveries whose retry time has come (all tenants)."""
    runtime = open_runtime()
    try:
        ok, failing = service.deliver(
            runtime.sessions, runtime.keystore, limit=limit_runs * service.CLAIM * 10
        )
        console.print(f"delivered: {ok}; failing (will retry): {failing}")
    finally:
        runtime.close()
