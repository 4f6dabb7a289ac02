"""`pledge mail` commands: deliver what is waiting in the outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from pledge.cli.common import console, open_runtime, operator_context, reports_errors
from pledge.core.db import transaction
from pledge.mail import backends
from pledge.mail import reading as mail_reading
from pledge.mail import service as mail
from pledge.tenants import service as tenants

app = typer.Typer(help="The mail outbox.", no_args_is_help=True)


@app.command("deliver")
@reports_errors
def deliver(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Tenant slug; all when omitted")
    ] = None,
) -> None:
    """Send queued messages and retry failed ones (up to 5 tries each)."""
    backend = backends.current()
    runtime = open_runtime()
    try:
        with transaction(runtime.sessions) as session:
            slugs = [tenant] if tenant else [t.slug for t in tenants.list_tenants(session)]
        for slug in slugs:
            with operator_context(runtime, slug) as ctx:
                report = mail.deliver_pending(ctx)  # sends nothing under outbox-only
                if not backend.delivers:
                    counts = mail_reading.count_by_status(ctx)
                    waiting = counts.get("queued", 0) + counts.get("sending", 0)
                    console.print(
                        f"{slug}: {waiting} queued; the outbox-only backend sends nothing "
                        "(set PLEDGE_MAIL_BACKEND=smtp to deliver)"
                    )
                    continue
            console.print(
                f"{slug}: {report.sent} sent, {report.failed} failed, "
                f"{report.cancelled} cancelled (subject erased, or no longer allowed) "
                f"via {report.backend}"
            )
    finally:
        runtime.close()


@app.command("status")
@reports_errors
def status(tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]) -> None:
    """How many messages are queued, sent, failed or cancelled."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            counts = mail_reading.count_by_status(ctx)
        line = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no messages"
        console.print(f"{tenant}: {line} (backend: {backends.current().name})")
    finally:
        runtime.close()
