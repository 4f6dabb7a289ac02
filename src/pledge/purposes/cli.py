"""`pledge purpose`: purposes, collection points and topics."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pledge.access.context import TenantContext
from pledge.cli.common import console, open_runtime, operator_context, reports_errors
from pledge.core.errors import InvalidInput
from pledge.preferences import topics
from pledge.purposes import catalogue, service
from pledge.purposes.models import Channel, CollectionPointKind, LawfulBasis
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput

app = typer.Typer(help="Purposes, collection points and topics.", no_args_is_help=True)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]


@contextmanager
def in_tenant(slug: str) -> Iterator[TenantContext]:
    """One transaction in a tenant as the operator; the runtime is closed afterwards."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, slug) as ctx:
            yield ctx
    finally:
        runtime.close()


@app.command("list")
@reports_errors
def list_purposes(
    tenant: TenantOpt,
    archived: Annotated[bool, typer.Option(help="Include archived purposes")] = False,
) -> None:
    """Purposes with their lawful basis and where data is collected for them."""
    with in_tenant(tenant) as ctx:
        points = catalogue.points_by_purpose(ctx)
        table = Table("slug", "name", "basis", "channels", "flags", "collected at")
        for p in service.list_purposes(ctx, include_archived=archived):
            flags = [
                f
                for f, on in (
                    ("marketing", p.is_marketing),
                    ("sale/sharing", p.is_sale_or_sharing),
                    ("archived", p.archived_at is not None),
                )
                if on
            ]
            table.add_row(
                p.slug,
                escape(p.name),
                p.lawful_basis,
                ", ".join(p.channels) or "any",
                ", ".join(flags),
                ", ".join(points.get(p.id, [])),
            )
    console.print(table)


@app.command("create")
@reports_errors
def create_purpose(
    tenant: TenantOpt,
    slug: Annotated[str, typer.Argument(help="Short id, e.g. newsletter")],
    name: Annotated[str, typer.Option(help="What the purpose is, in plain words")],
    basis: Annotated[LawfulBasis, typer.Option("--basis", help="Lawful basis (DPV term)")],
    description: Annotated[str, typer.Option(help="Longer description")] = "",
    category: Annotated[
        list[str] | None, typer.Option(help="Fides data category, repeatable")
    ] = None,
    channel: Annotated[list[Channel] | None, typer.Option(help="Channel, repeatable")] = None,
    marketing: Annotated[bool, typer.Option(help="Direct marketing")] = False,
    sale: Annotated[bool, typer.Option(help="CCPA sale or sharing")] = False,
    li_note: Annotated[
        str | None, typer.Option(help="The legitimate interest pursued (LegitimateInterest)")
    ] = None,
    dpv_purpose: Annotated[str | None, typer.Option(help="DPV purpose term")] = None,
    consent_notice: Annotated[
        str | None, typer.Option(help="Slug of the consent wording shown (Consent)")
    ] = None,
) -> None:
    """Declare a purpose with its lawful basis."""
    with in_tenant(tenant) as ctx:
        purpose = service.create_purpose(
            ctx,
            PurposeInput(
                slug=slug,
                name=name,
                lawful_basis=basis.value,
                description=description,
                data_categories=category or [],
                channels=[c.value for c in channel or []],
                is_marketing=marketing,
                is_sale_or_sharing=sale,
                legitimate_interest_note=li_note,
                dpv_purpose=dpv_purpose,
                consent_notice=consent_notice,
            ),
        )
        console.print(f"Purpose [bold]{purpose.slug}[/] created ({purpose.lawful_basis}).")


@app.command("archive")
@reports_errors
def archive_purpose(tenant: TenantOpt, slug: Annotated[str, typer.Argument()]) -> None:
    """Stop using a purpose: the gate denies it from now on; its history stays."""
    with in_tenant(tenant) as ctx:
        service.archive_purpose(ctx, slug)
    console.print(f"Purpose [bold]{slug}[/] archived.")


@app.command("topic-add")
@reports_errors
def add_topic(
    tenant: TenantOpt,
    slug: Annotated[str, typer.Argument(help="Short id, e.g. product-news")],
    name: Annotated[str, typer.Option(help="What the messages are about, as readers see it")],
    purpose: Annotated[str, typer.Option(help="The purpose the messages serve")],
    description: Annotated[str, typer.Option(help="Longer description")] = "",
) -> None:
    """Add a topic: what a kind of message is about, under the purpose it serves.

    Readers opt out per channel and topic in the preference center.
    """
    with in_tenant(tenant) as ctx:
        topic = topics.create_topic(
            ctx, slug=slug, name=name, purpose=purpose, description=description
        )
    console.print(f"Topic [bold]{escape(topic.slug)}[/] added under purpose {escape(purpose)}.")


@app.command("topics")
@reports_errors
def list_topics(tenant: TenantOpt) -> None:
    """Topics with the purpose each serves, and whether that purpose is marketing."""
    with in_tenant(tenant) as ctx:
        table = Table("slug", "name", "purpose", "kind")
        for topic, purpose in topics.list_topics(ctx):
            table.add_row(
                topic.slug,
                escape(topic.name),
                purpose.slug,
                "marketing" if purpose.is_marketing else "service",
            )
    console.print(table)


def _point_from_toml(path: Path) -> CollectionPointInput:
    try:
        doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path.name}: {type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path.name} is not valid TOML: {exc}") from None
    items = doc.get("purposes")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput(f"{path.name}: list the purposes as an array of `purposes` tables")
    for key in ("slug", "name", "kind"):
        if not isinstance(doc.get(key), str):
            raise InvalidInput(f"{path.name}: `{key}` is required")
    try:
        collects = [CollectsFor(str(i["purpose"]), i.get("consent_notice")) for i in items]
    except KeyError:
        raise InvalidInput(f"{path.name}: every `purposes` table needs `purpose`") from None
    return CollectionPointInput(
        slug=doc["slug"],
        name=doc["name"],
        kind=doc["kind"],
        purposes=collects,
        description=str(doc.get("description", "")),
        privacy_notice=doc.get("privacy_notice"),
    )


@app.command("point-save")
@reports_errors
def save_point(
    tenant: TenantOpt,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="TOML: slug, name, kind, privacy_notice, [[purposes]] purpose, consent_notice",
        ),
    ] = None,
    slug: Annotated[str | None, typer.Option(help="Collection point slug")] = None,
    name: Annotated[str | None, typer.Option(help="Name")] = None,
    kind: Annotated[CollectionPointKind | None, typer.Option(help="How data arrives")] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(help="Purpose collected for, as slug or slug=consent-wording; repeatable"),
    ] = None,
    privacy_notice: Annotated[str | None, typer.Option(help="Privacy notice shown")] = None,
    description: Annotated[str, typer.Option(help="Description")] = "",
) -> None:
    """Create or replace a collection point and the purposes it collects for.

    Each consent purpose names the consent wording shown for it.
    """
    if file is not None:
        data = _point_from_toml(file)
    else:
        if not (slug and name and kind and purpose):
            raise InvalidInput("give --file, or --slug, --name, --kind and --purpose")
        collects = []
        for item in purpose:
            p, _, wording = item.partition("=")
            collects.append(CollectsFor(p.strip(), wording.strip() or None))
        data = CollectionPointInput(
            slug=slug,
            name=name,
            kind=kind.value,
            purposes=collects,
            description=description,
            privacy_notice=privacy_notice,
        )
    with in_tenant(tenant) as ctx:
        created = service.find_collection_point(ctx, data.slug) is None
        service.save_collection_point(ctx, data)
    what = "created" if created else "updated"
    console.print(
        f"Collection point [bold]{data.slug}[/] {what}: collects for "
        + ", ".join(c.purpose for c in data.purposes)
        + "."
    )
