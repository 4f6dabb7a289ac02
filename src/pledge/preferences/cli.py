"""`pledge preferences` commands: a subject's preferences, links, the suppression list."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pledge.cli.common import console, open_runtime, operator_context, reports_errors
from pledge.core.errors import InvalidInput
from pledge.preferences import links, suppression
from pledge.preferences import service as preferences
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind

app = typer.Typer(
    help="Preferences, unsubscribe links and the suppression list.", no_args_is_help=True
)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]
EmailOpt = Annotated[str | None, typer.Option(help="The e-mail address")]
PhoneOpt = Annotated[str | None, typer.Option(help="The phone number")]
ChannelOpt = Annotated[
    list[str] | None, typer.Option("--channel", help="email, sms or phone; default: all of them")
]


def _address(email: str | None, phone: str | None) -> tuple[str, str]:
    if bool(email) == bool(phone):
        raise InvalidInput("give exactly one of --email, --phone")
    return (IdentityKind.EMAIL.value, email) if email else (IdentityKind.PHONE.value, phone or "")


@app.command("show")
@reports_errors
def show(
    tenant: TenantOpt, email: Annotated[str, typer.Option(help="The subject's e-mail")]
) -> None:
    """What a subject receives: every topic on every channel, and the consents in force."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            subject_id = reading.require_subject(ctx, IdentityKind.EMAIL, email)
            view = preferences.read_preferences(ctx, subject_id)
        table = Table("channel", "topic", "kind", "receives")
        for t in view.topics:
            kind = ("marketing" if t.marketing else "service") + (
                ", consent" if t.consent_based else ""
            )
            table.add_row(t.channel, t.topic, kind, "yes" if t.subscribed else "no")
        console.print(table)
        stopped = [c for c, off in view.marketing_off.items() if off]
        console.print(f"All marketing stopped on: {', '.join(stopped) or 'none'}")
        console.print(f"Sale/sharing opt-out: {'yes' if view.sale_opt_out else 'no'}")
        consents = ", ".join(c.purpose for c in view.consents) or "none"
        console.print(f"Consents in force: {consents}")
    finally:
        runtime.close()


@app.command("link")
@reports_errors
def link(
    tenant: TenantOpt, email: Annotated[str, typer.Option(help="The subject's e-mail")]
) -> None:
    """Print a signed link to the subject's preference center."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            subject_id = reading.require_subject(ctx, IdentityKind.EMAIL, email)
            url = links.preference_link(ctx, subject_id)
        console.print(url, soft_wrap=True, highlight=False)
    finally:
        runtime.close()


@app.command("suppress")
@reports_errors
def suppress(
    tenant: TenantOpt,
    email: EmailOpt = None,
    phone: PhoneOpt = None,
    channel: ChannelOpt = None,
    reason: Annotated[str, typer.Option(help="Why, in a word or two")] = "manual",
) -> None:
    """Never send marketing to an address again (it is kept only as a keyed hash)."""
    kind, value = _address(email, phone)
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            added = suppression.add_suppression(ctx, kind, value, channels=channel, reason=reason)
        console.print(f"{added} suppression entr{'y' if added == 1 else 'ies'} added.")
    finally:
        runtime.close()


@app.command("unsuppress")
@reports_errors
def unsuppress(
    tenant: TenantOpt, email: EmailOpt = None, phone: PhoneOpt = None, channel: ChannelOpt = None
) -> None:
    """Lift a suppression (the person asked to hear from you again)."""
    kind, value = _address(email, phone)
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            removed = suppression.remove_suppression(ctx, kind, value, channels=channel)
        console.print(f"{removed} suppression entr{'y' if removed == 1 else 'ies'} removed.")
    finally:
        runtime.close()


@app.command("suppressions")
@reports_errors
def suppressions(
    tenant: TenantOpt, limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100
) -> None:
    """The suppression list, newest first: kind, channel, reason, date — never an address."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            entries = suppression.list_suppressions(ctx, limit=limit)
        table = Table("ref", "kind", "channel", "reason", "since")
        for e in entries:
            table.add_row(
                e.ref, e.kind, e.channel, escape(e.reason), e.created_at.strftime("%Y-%m-%d")
            )
        console.print(table)
    finally:
        runtime.close()
