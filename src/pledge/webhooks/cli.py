"""`pledge webhooks`: deliver what is due; switch an endpoint off or on, rotate its secret."""

from __future__ import annotations

from typing import Annotated

import typer

from pledge.cli.common import console, errors, open_runtime, operator_context, reports_errors
from pledge.webhooks import service

app = typer.Typer(
    help="Signed webhooks: deliver the due ones, manage endpoints.", no_args_is_help=True
)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]
EndpointArg = Annotated[str, typer.Argument(help="Endpoint id")]


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


@app.command("deactivate")
@reports_errors
def deactivate(tenant: TenantOpt, endpoint_id: EndpointArg) -> None:
    """Switch an endpoint off; the deliveries waiting for it fail for good.

    No event is queued for it any more; switching it on again does not resend them.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            service.deactivate_endpoint(ctx, endpoint_id)
        console.print(f"Endpoint {endpoint_id} deactivated.")
    finally:
        runtime.close()


@app.command("activate")
@reports_errors
def activate(tenant: TenantOpt, endpoint_id: EndpointArg) -> None:
    """Switch an endpoint on again: the events from now on are sent to it."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            service.activate_endpoint(ctx, endpoint_id)
        console.print(f"Endpoint {endpoint_id} activated.")
    finally:
        runtime.close()


@app.command("rotate-secret")
@reports_errors
def rotate_secret(tenant: TenantOpt, endpoint_id: EndpointArg) -> None:
    """Give an endpoint a new signing secret, printed once; the old one stops verifying.

    Deliveries waiting for a retry are signed with the new secret when they are posted.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            _endpoint, secret = service.rotate_secret(ctx, endpoint_id)
        # The note on standard error: `... rotate-secret ID > secret` saves the secret alone.
        errors.print(f"Endpoint {endpoint_id}: new signing secret (shown once):")
        # Plain, not styled: copied as it is into the receiver's configuration.
        typer.echo(secret)
    finally:
        runtime.close()
