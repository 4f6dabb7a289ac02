"""`pledge gate`: ask the gate, build an audience, run the lawful-basis hygiene report."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pledge.cli.common import console, errors, fail, progress_bar, reports_errors
from pledge.gate import audience as gate_audience
from pledge.gate import hygiene
from pledge.gate import service as gate
from pledge.gate.schemas import REASON_TEXT
from pledge.purposes.cli import TenantOpt, in_tenant
from pledge.purposes.models import Channel
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind

app = typer.Typer(
    help="Ask the gate; build audiences; the lawful-basis hygiene report.", no_args_is_help=True
)

DENIED = 2  # exit status of `check` when the answer is no (errors exit 1)
ERASE_BATCH = 200


@app.command("check")
@reports_errors
def check(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="The subject's e-mail")],
    purpose: Annotated[str, typer.Option(help="Purpose slug")],
    channel: Annotated[Channel | None, typer.Option(help="Channel")] = None,
    topic: Annotated[str | None, typer.Option(help="Topic slug")] = None,
) -> None:
    """May this subject's data be used for the purpose on the channel now?

    Exits 0 when allowed, 2 when not (with every reason).
    """
    with in_tenant(tenant) as ctx:
        subject_id = reading.require_subject(ctx, IdentityKind.EMAIL, email)
        decision = gate.may(
            ctx, subject_id, purpose, channel.value if channel else None, topic=topic
        )
    if decision.allowed:
        console.print(f"[green]allowed[/] ({decision.basis})", highlight=False)
        return
    console.print(f"[bold red]denied[/] ({decision.basis})", highlight=False)
    for reason in decision.reasons:
        console.print(f"  {reason.value}: {REASON_TEXT[reason]}", highlight=False)
    raise typer.Exit(DENIED)


@app.command("audience")
@reports_errors
def audience(
    tenant: TenantOpt,
    purpose: Annotated[str, typer.Option(help="Purpose slug")],
    channel: Annotated[Channel | None, typer.Option(help="Channel")] = None,
    topic: Annotated[str | None, typer.Option(help="Topic slug")] = None,
    ids: Annotated[bool, typer.Option("--ids", help="Also print the allowed ids")] = False,
) -> None:
    """Everyone the gate allows for a purpose and channel: the count and a digest."""
    with in_tenant(tenant) as ctx:
        result = gate_audience.audience(
            ctx, purpose, channel.value if channel else None, topic=topic
        )
    console.print(
        f"{len(result.allowed)} allowed of {result.candidates} "
        f"({result.denied} denied); digest {result.digest}",
        highlight=False,
    )
    if ids:
        for subject_id in result.allowed:
            print(subject_id)


@app.command("hygiene")
@reports_errors
def hygiene_report(
    tenant: TenantOpt,
    erase: Annotated[
        bool, typer.Option("--erase", help="Crypto-erase the subjects listed")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    keep: Annotated[
        list[str] | None, typer.Option(help="Retention class to keep (legal duty), repeatable")
    ] = None,
) -> None:
    """Active subjects held with no lawful basis left for any purpose.

    With --erase, erases them (each re-checked at the moment of erasure).
    """
    with in_tenant(tenant) as ctx:
        report = hygiene.report(ctx)
    console.print(
        f"{report.count} subject(s) with no lawful basis left "
        f"({report.purposes} purpose(s) considered); digest {report.digest}",
        highlight=False,
    )
    for subject_id in report.subject_ids:
        print(subject_id)
    if not erase or not report.subject_ids:
        return
    if not yes:
        if not sys.stdin.isatty():
            raise fail("erasure cannot be undone: pass --yes to confirm")
        if not typer.confirm(f"Erase these {report.count} subject(s)? This cannot be undone"):
            raise typer.Exit(1)
    erased = skipped = 0
    with progress_bar("Erasing", report.count, transient=True) as bar:
        task = bar.add_task("erase", total=report.count)
        for start in range(0, report.count, ERASE_BATCH):
            batch = report.subject_ids[start : start + ERASE_BATCH]
            with in_tenant(tenant) as ctx:
                done = hygiene.erase_without_basis(
                    ctx, batch, confirm=True, keep_classes=keep or []
                )
            erased += done.count
            skipped += len(done.skipped)
            bar.advance(task, len(batch))
    console.print(f"Erased {erased} subject(s); skipped {skipped} (a basis reappeared).")
    if skipped:
        errors.print(f"{skipped} subject(s) were not erased: they have a basis again.")
