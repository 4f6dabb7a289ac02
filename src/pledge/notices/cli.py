"""`pledge notice`: privacy notices and consent wordings, versioned."""

from __future__ import annotations

import sys
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pledge.cli.common import console, reports_errors
from pledge.core.errors import InvalidInput
from pledge.notices import service
from pledge.notices.models import NoticeKind
from pledge.purposes.cli import TenantOpt, in_tenant

app = typer.Typer(help="Privacy notices and consent wordings, versioned.", no_args_is_help=True)

SlugArg = Annotated[str, typer.Argument(help="Notice slug")]
LanguageOpt = Annotated[str, typer.Option(help="Language tag, e.g. en or en-GB")]
MARKS = {" ": "  ", "+": "+ ", "-": "- "}


@app.command("create")
@reports_errors
def create_notice(
    tenant: TenantOpt,
    slug: SlugArg,
    kind: Annotated[NoticeKind, typer.Option(help="privacy_notice or consent_wording")],
    title: Annotated[str, typer.Option(help="Title")],
) -> None:
    """Create a notice (its text comes with `publish`)."""
    with in_tenant(tenant) as ctx:
        service.create_notice(ctx, slug=slug, kind=kind.value, title=title)
    console.print(f"Notice [bold]{slug}[/] created; publish its first version next.")


def _read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {source}: {type(exc).__name__}") from None


@app.command("publish")
@reports_errors
def publish(
    tenant: TenantOpt,
    slug: SlugArg,
    source: Annotated[str, typer.Argument(help="File with the exact text, or - for stdin")],
    language: LanguageOpt = "en",
    effective_at: Annotated[
        datetime | None,
        typer.Option(
            help="When it takes effect, with a time zone (default: now)",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M%z"],
        ),
    ] = None,
    summary: Annotated[str, typer.Option(help="What changed")] = "",
    material: Annotated[
        bool,
        typer.Option(
            help="A material change, announced to the people it affects: before it applies "
            "when dated ahead, else at once"
        ),
    ] = False,
) -> None:
    """Publish the next version of a notice. Earlier versions are never edited."""
    text = _read_text(source)
    with in_tenant(tenant) as ctx:
        v = service.publish_version(
            ctx,
            slug,
            text=text,
            language=language,
            effective_at=effective_at,
            summary=summary,
            material=material,
        )
        line = (
            f"Published {slug} v{v.version} ({v.language}), sha256 {v.sha256}, "
            f"effective {v.effective_at.isoformat(timespec='seconds')}; id {v.id}."
        )
    console.print(line, highlight=False)


@app.command("versions")
@reports_errors
def list_versions(
    tenant: TenantOpt,
    slug: SlugArg,
    language: Annotated[str | None, typer.Option(help="Only this language")] = None,
) -> None:
    """A notice's versions, with their hashes and which is in force."""
    with in_tenant(tenant) as ctx:
        notice = service.get_notice(ctx, slug)
        versions = service.versions(ctx, notice, language)
        current = service.in_force(versions)
        table = Table("version", "language", "effective", "in force", "sha256", "id", "summary")
        for v in versions:
            table.add_row(
                str(v.version),
                v.language,
                v.effective_at.isoformat(timespec="seconds"),
                "yes" if v.id in current else "",
                v.sha256,
                str(v.id),
                escape(v.summary),
            )
    console.print(table)


@app.command("diff")
@reports_errors
def diff(
    tenant: TenantOpt,
    slug: SlugArg,
    old: Annotated[str, typer.Argument(help="From: version number or id")],
    new: Annotated[str, typer.Argument(help="To: version number or id")],
    language: LanguageOpt = "en",
) -> None:
    """Line-by-line changes between two versions: '+ ' added, '- ' removed."""
    with in_tenant(tenant) as ctx:
        notice = service.get_notice(ctx, slug)
        a = service.resolve_version(ctx, notice, old, language)
        b = service.resolve_version(ctx, notice, new, language)
        lines = service.diff(a, b)
        header = f"--- {slug} v{a.version} ({a.language}) {a.sha256}\n"
        header += f"+++ {slug} v{b.version} ({b.language}) {b.sha256}"
    # Plain print: the text is the tenant's, Rich must not interpret its brackets.
    print(header)
    for op, text in lines:
        print(MARKS[op] + text)


@app.command("announce")
@reports_errors
def announce(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Tenant slug; all when omitted")
    ] = None,
) -> None:
    """E-mail the announcements of material changes whose time has come (run it daily)."""
    # Imported here: the announcement sender belongs to the messaging package.
    from pledge.cli.common import open_runtime, operator_context, progress_bar
    from pledge.core.db import transaction
    from pledge.mail import backends
    from pledge.mail import service as mail
    from pledge.notices import announcements
    from pledge.tenants import service as tenants

    runtime = open_runtime()
    try:
        with transaction(runtime.sessions) as session:
            slugs = [tenant] if tenant else [t.slug for t in tenants.list_tenants(session)]
        for slug in slugs:
            report = mail.DeliveryReport(backends.current().name)
            # The letters leave after the commit, a hundred at a time: a bar while they do.
            with progress_bar(f"{slug}: announcing", 0, transient=True) as bar:
                task = bar.add_task("announce", total=None)
                report.on_recorded = partial(bar.advance, task)
                with operator_context(runtime, slug) as ctx:
                    done = announcements.send_due(ctx, report)
                    bar.update(task, total=sum(a.recipients for a in done))
            for a in done:
                console.print(f"{slug}: {a.notice} v{a.version}: announced to {a.recipients}")
            if not done:
                console.print(f"{slug}: nothing due")
    finally:
        runtime.close()
