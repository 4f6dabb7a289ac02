"""`pledge consent`: the consent ledger and its receipts, from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pledge.cli.common import console, errors, reports_errors
from pledge.consent import recording
from pledge.consent import service as consent
from pledge.consent.models import ConsentAction, ConsentMethod
from pledge.consent.service import NO_SIGNALS, ConsentInput
from pledge.core.errors import InvalidInput
from pledge.purposes.cli import TenantOpt, in_tenant
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind

app = typer.Typer(
    help="The consent ledger: grant, withdraw, a subject's timeline, receipts.",
    no_args_is_help=True,
)

EmailOpt = Annotated[str, typer.Option(help="The subject's e-mail")]
PurposeOpt = Annotated[str, typer.Option(help="Purpose slug")]


@app.command("grant")
@reports_errors
def grant(
    tenant: TenantOpt,
    email: EmailOpt,
    purpose: PurposeOpt,
    wording_version: Annotated[
        str | None,
        typer.Option(help="Wording version shown (default: the one in force for the purpose)"),
    ] = None,
    collection_point: Annotated[str | None, typer.Option(help="Where it was given")] = None,
    method: Annotated[
        ConsentMethod, typer.Option(help="How it was given")
    ] = ConsentMethod.STAFF_PHONE,
    language: Annotated[str, typer.Option(help="Language of the wording")] = "en",
) -> None:
    """Record a consent given outside a form (a call, a letter…).

    Name the wording read out. Prints the signed receipt alone on standard output (save it
    with `> receipt.jws`), the record id and the wording's hash on standard error.
    """
    with in_tenant(tenant) as ctx:
        subject_id = reading.require_subject(ctx, IdentityKind.EMAIL, email)
        version_id = wording_version
        if version_id is None:
            shown = recording.wording_in_force(ctx, purpose, collection_point, language)
            if shown is None:
                raise InvalidInput(f"no consent wording in force for {purpose!r}")
            version_id = str(shown.id)
        record = consent.record_consent(
            ctx,
            subject_id,
            ConsentInput(
                purpose, ConsentAction.GRANT.value, method.value, version_id, collection_point
            ),
            NO_SIGNALS,
        )
        line = (
            f"Consent {record.id} granted for {purpose} (wording sha256 {record.wording_sha256})."
        )
        receipt = record.receipt_jws
    # The note to stderr, the receipt alone on stdout, so `> receipt.jws` saves a JWS that
    # `verify-receipt` reads.
    errors.print(line, highlight=False, soft_wrap=True)
    if receipt:
        print(receipt)


@app.command("withdraw")
@reports_errors
def withdraw(
    tenant: TenantOpt,
    email: EmailOpt,
    purpose: PurposeOpt,
    method: Annotated[
        ConsentMethod, typer.Option(help="How it was withdrawn")
    ] = ConsentMethod.STAFF_PHONE,
) -> None:
    """Record a withdrawal: effective at once, nothing else needed (GDPR Art. 7(3))."""
    with in_tenant(tenant) as ctx:
        subject_id = reading.require_subject(ctx, IdentityKind.EMAIL, email)
        record = consent.record_consent(
            ctx, subject_id, ConsentInput(purpose, ConsentAction.WITHDRAW.value, method.value)
        )
        line = f"Consent for {purpose} withdrawn ({record.id})."
    console.print(line, highlight=False)


@app.command("timeline")
@reports_errors
def timeline(tenant: TenantOpt, email: EmailOpt) -> None:
    """Every grant and withdrawal of a subject, with the exact text they saw."""
    with in_tenant(tenant) as ctx:
        subject_id = reading.require_subject(ctx, IdentityKind.EMAIL, email)
        entries = consent.read_timeline(ctx, subject_id)
        if not entries:
            console.print("No consent was ever recorded for this subject.")
        for e in entries:
            r = e.record
            where = f" at {e.collection_point.slug}" if e.collection_point else ""
            signals = f"GPC {'on' if r.gpc else 'off'}, DNT " + (
                "not sent" if r.dnt is None else ("on" if r.dnt else "off")
            )
            console.print(
                f"[bold]{r.recorded_at.isoformat(timespec='seconds')}[/] {r.action} "
                f"{escape(e.purpose.slug)} by {r.method}{escape(where)}; {signals}",
                highlight=False,
            )
            if e.wording is not None:
                w = e.wording
                console.print(
                    f"  wording v{w.version} ({w.language}) sha256 {w.sha256}:", highlight=False
                )
                for line in w.text.splitlines():
                    console.print("    " + escape(line), highlight=False)


@app.command("verify-receipt")
@reports_errors
def verify_receipt(
    tenant: TenantOpt,
    source: Annotated[str, typer.Argument(help="File holding the receipt (JWS), or - for stdin")],
) -> None:
    """Check a consent receipt against the tenant's keys (exit 0 when valid).

    Exits 1 when it is not, with the reason.
    """
    if source == "-":
        token = sys.stdin.read()
    else:
        try:
            token = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read {source}: {type(exc).__name__}") from None
    if not token.strip() or len(token) > 20_000:
        raise InvalidInput("the receipt is empty or too long")
    with in_tenant(tenant) as ctx:
        result = consent.verify_receipt(ctx, token)
    if not result.valid:
        errors.print(f"[bold red]invalid:[/] {escape(result.reason or '')}", highlight=False)
        raise typer.Exit(1)
    claims = result.claims or {}
    console.print(
        f"[green]valid[/] receipt {claims.get('consentReceiptID')} signed by key {result.kid}",
        highlight=False,
    )
    print(json.dumps(claims, indent=2, ensure_ascii=False))
