"""`pledge campaign` commands: create, send and list campaigns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pledge.campaigns import service
from pledge.cli.common import (
    console,
    open_runtime,
    operator_context,
    progress_bar,
    reports_errors,
)
from pledge.mail import backends
from pledge.mail import service as mail

app = typer.Typer(help="Campaigns sent through the gate.", no_args_is_help=True)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]


@app.command("create")
@reports_errors
def create(
    tenant: TenantOpt,
    name: Annotated[str, typer.Option(help="A name for the campaign")],
    purpose: Annotated[str, typer.Option(help="Purpose slug")],
    topic: Annotated[str, typer.Option(help="Topic slug (of that purpose)")],
    subject_line: Annotated[str, typer.Option(help="Subject line; may use {first_name}")],
    body_file: Annotated[
        Path,
        typer.Option(
            "--body",
            exists=True,
            dir_okay=False,
            help="Text file; may use {first_name}, {unsubscribe_url}, {preferences_url}",
        ),
    ],
    channel: Annotated[str, typer.Option(help="Channel")] = "email",
) -> None:
    """Create a campaign (a draft: `pledge campaign send` sends it)."""
    body = body_file.read_text(encoding="utf-8")
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            campaign = service.create_campaign(
                ctx, service.CampaignInput(name, purpose, channel, topic, subject_line, body)
            )
            campaign_id = campaign.id
        console.print(f"Campaign {campaign_id} created.")
    finally:
        runtime.close()


@app.command("send")
@reports_errors
def send(
    tenant: TenantOpt, campaign_id: Annotated[str, typer.Argument(help="Campaign id")]
) -> None:
    """Send to everyone the gate allows now."""
    runtime = open_runtime()
    try:
        report = mail.DeliveryReport(backends.current().name)
        # The messages leave after the commit, a hundred at a time: a bar while they do.
        with progress_bar("Sending", 0, transient=True) as bar:
            task = bar.add_task("send", total=None)
            report.on_recorded = lambda n: bar.advance(task, n)
            with operator_context(runtime, tenant) as ctx:
                result = service.send_campaign(ctx, campaign_id, report=report)
                bar.update(task, total=report.scheduled)
        console.print(
            f"Campaign {result.campaign_id}: {result.sent} sent, {result.denied} not allowed "
            f"by the gate (audience digest {result.digest[:16]}…)."
        )
    finally:
        runtime.close()


@app.command("list")
@reports_errors
def list_(tenant: TenantOpt) -> None:
    """The tenant's campaigns, newest first."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            items = [service.detail(ctx, c.id) for c in service.list_campaigns(ctx)]
            table = Table("id", "name", "topic", "status", "sent", "denied")
            for i in items:
                c = i.campaign
                table.add_row(
                    str(c.id),
                    escape(c.name),
                    i.topic.slug,
                    c.status,
                    str(c.sent_count),
                    str(c.denied_count),
                )
        console.print(table)
    finally:
        runtime.close()
