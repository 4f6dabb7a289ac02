"""`pledge webhooks`: deliver what is due."""

from __future__ import annotations

from typing import Annotated

import typer

from pledge.cli.common import console, open_runtime, reports_errors
from pledge.core.db import transaction
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
        total_ok = total_failing = 0
        for _ in range(limit_runs):
            with transaction(runtime.sessions) as session:
                ok, failing = service.deliver(session, runtime.keystore)
            total_ok, total_failing = total_ok + ok, total_failing + failing
            if ok + failing == 0:
                break
        console.print(f"delivered: {total_ok}; failing (will retry): {total_failing}")
    finally:
        runtime.close()
