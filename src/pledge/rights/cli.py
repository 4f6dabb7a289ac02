"""`pledge rights`: rights requests from the command line, processor routing, the jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pledge.cli.common import (
    console,
    open_runtime,
    operator_context,
    progress_bar,
    reports_errors,
)
from pledge.core.errors import InvalidInput
from pledge.core.validation import UNCHANGED
from pledge.rights import (
    fulfilment,
    immediate,
    recipients,
    reports,
    routing,
    verification,
    workflow,
)
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.models import RequestType
from pledge.rights.service import Requester, RequestInput
from pledge.subjects import importer

app = typer.Typer(
    help="Rights requests: intake, the queue, fulfilment, routing, jobs.", no_args_is_help=True
)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]
TYPES = ", ".join(t.value for t in RequestType)
MECHANISMS = ", ".join(m.value for m in recipients.TransferMechanism)


def _pairs(option: str, given: list[str] | None) -> dict[str, str]:
    """name=value options as a dict; InvalidInput names the option when one has no "="."""
    pairs: dict[str, str] = {}
    for item in given or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{option} takes name=value")
        pairs[name.strip()] = value
    return pairs


def _details(text: str) -> dict[str, object]:
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--details is not JSON: {exc.msg}") from None
    if not isinstance(found, dict):
        raise InvalidInput("--details must be a JSON object")
    return found


@app.command("submit")
@reports_errors
def submit(
    tenant: TenantOpt,
    type: Annotated[str, typer.Option(help=f"One of: {TYPES}")],
    email: Annotated[str, typer.Option(help="The requester's e-mail")],
    jurisdiction: Annotated[
        str | None, typer.Option(help="EU, UK, US-CA…; the tenant's first by default")
    ] = None,
    name: Annotated[str, typer.Option(help="The requester's name")] = "",
    details: Annotated[
        str, typer.Option(help='JSON: {"proposed": {...}} or {"purposes": [...]}')
    ] = "{}",
) -> None:
    """Enter a request received by staff (a letter, a phone call)."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            received = workflow.receive(
                ctx,
                RequestInput(
                    type, Requester(email, name), jurisdiction, "staff", _details(details)
                ),
            )
            request = received.request
            console.print(
                f"Request {request.reference} ({request.id}): {request.state}, due {request.due_on}"
            )
    finally:
        runtime.close()


@app.command("opt-outs")
@reports_errors
def opt_outs(
    tenant: TenantOpt,
    file: Annotated[Path, typer.Argument(help="CSV with a header: email, and optionally name")],
    type: Annotated[
        str, typer.Option(help="opt_out_sale or limit_sensitive")
    ] = RequestType.OPT_OUT_SALE.value,
    jurisdiction: Annotated[
        str | None, typer.Option(help="US-CA…; the tenant's first by default")
    ] = None,
    agent_name: Annotated[str, typer.Option(help="The authorized agent who sent the list")] = "",
    agent_email: Annotated[str, typer.Option(help="The agent's e-mail")] = "",
    agent_permission: Annotated[
        str, typer.Option(help="Reference of the agent's signed permissions")
    ] = "",
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Requests per transaction")
    ] = 500,
    skip: Annotated[
        int, typer.Option(min=0, help="Skip the first N people (answered by a run that stopped)")
    ] = 0,
) -> None:
    """Answer a list of opt-outs (or "limit" requests) at once, e.g. an authorized agent's.

    The whole file is checked first; each batch is one transaction.
    """
    agent = bool(agent_name or agent_email)
    text = importer.read_text(file, done="received")
    runtime = open_runtime()
    try:
        # A snapshot, no write lock: the server's writers go on while the list is checked.
        with runtime.tenant_context(tenant, read_only=True) as ctx:
            listed = immediate.read_list(
                ctx,
                text,
                request_type=type,
                jurisdiction=jurisdiction,
                channel="authorized_agent" if agent else "staff",
                agent=Requester("", "", agent_name, agent_email, agent_permission),
            )
        todo = listed[skip:]
        done = matched = 0
        with progress_bar("Answering", len(todo)) as bar:
            task = bar.add_task("answer", total=len(todo))
            try:
                for start in range(0, len(todo), batch_size):
                    chunk = todo[start : start + batch_size]
                    with operator_context(runtime, tenant) as ctx:
                        answered = immediate.answer(ctx, chunk)
                        matched += sum(1 for r in answered if r.subject_id is not None)
                    done += len(chunk)
                    bar.advance(task, len(chunk))
            except Exception:
                # Each batch is all or nothing: the ones before it stay answered.
                console.print(
                    f"Stopped after answering {done} of {len(todo)}; to go on, run the same "
                    f"command with --skip {skip + done}."
                )
                raise
        whom = "the agent" if agent else "each requester"
        console.print(
            f"Answered {len(todo)} request(s): {matched} applied to a subject on file, "
            f"{len(todo) - matched} about nobody we hold; a letter to {whom} for each."
        )
    finally:
        runtime.close()


@app.command("list")
@reports_errors
def list_requests(
    tenant: TenantOpt, all: Annotated[bool, typer.Option("--all", help="Closed ones too")] = False
) -> None:
    """The queue, most urgent first."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            table = Table("reference", "type", "jurisdiction", "state", "due", "received")
            for r in rights.queue(ctx, rights.QueueFilter(open_only=not all)):
                table.add_row(
                    r.reference,
                    r.type,
                    r.jurisdiction,
                    r.state,
                    str(r.due_on or "—"),
                    r.received_at.date().isoformat(),
                )
        console.print(table)
    finally:
        runtime.close()


@app.command("verify")
@reports_errors
def verify(
    tenant: TenantOpt,
    request_id: Annotated[str, typer.Argument(help="Request id")],
    code: Annotated[str, typer.Option(help="The code the requester read out")],
    data_point: Annotated[
        list[str] | None, typer.Option(help="name=value, e.g. phone=+44…")
    ] = None,
) -> None:
    """Verify a request with the code the requester was sent (e.g. read out on the phone).

    Give the data points on file where the request needs them.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            points = _pairs("--data-point", data_point)
            outcome = verification.confirm(
                ctx, rights.get_request(ctx, request_id), code=code, data_points=points
            )
        console.print("verified" if outcome.verified else f"not verified: {outcome.reason}")
        if not outcome.verified:
            raise typer.Exit(1)
    finally:
        runtime.close()


@app.command("resend-verification")
@reports_errors
def resend_verification(
    tenant: TenantOpt, request_id: Annotated[str, typer.Argument(help="Request id")]
) -> None:
    """Send the requester a new code and link (three a day for a request).

    For when the e-mail was lost, or wrong codes locked the last code.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            workflow.resend_verification(ctx, rights.get_request(ctx, request_id), by="staff")
        console.print("a new code is on its way to the requester")
    finally:
        runtime.close()


@app.command("verify-otherwise")
@reports_errors
def verify_otherwise(
    tenant: TenantOpt,
    request_id: Annotated[str, typer.Argument(help="Request id")],
    reason: Annotated[str, typer.Option(help="How the requester was verified (kept sealed)")],
    declaration: Annotated[
        bool, typer.Option(help="The requester signed the declaration (California)")
    ] = False,
) -> None:
    """Record that the requester was verified by other means.

    For someone the e-mail cannot verify: seen at a desk, called back on a number on file.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            verification.verify_otherwise(
                ctx, rights.get_request(ctx, request_id), reason, declaration=declaration
            )
        console.print("verified by other means; the reason is kept with the request")
    finally:
        runtime.close()


@app.command("extend-appeal")
@reports_errors
def extend_appeal(
    tenant: TenantOpt,
    request_id: Annotated[str, typer.Argument(help="Request id")],
    reason: Annotated[str, typer.Option(help="Why more time is needed (sent to the requester)")],
) -> None:
    """Take the appeal's extension where the law has one (Colorado: 60 days).

    Once, inside the appeal's first period; the requester is sent the reasons.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            request = workflow.extend_appeal(ctx, rights.get_request(ctx, request_id), reason)
            due = rights.deadlines(ctx, request).appeal_due
        console.print(f"appeal extended: decide by {due}; the requester is told why")
    finally:
        runtime.close()


@app.command("fulfil")
@reports_errors
def fulfil(
    tenant: TenantOpt,
    request_id: Annotated[str, typer.Argument(help="Request id")],
    hold: Annotated[list[str] | None, typer.Option(help="Erasure: class=why it is kept")] = None,
    note: Annotated[str, typer.Option(help="Automated decision: the review's outcome")] = "",
) -> None:
    """Do what the request asks and send the letter that says so."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            holds = _pairs("--hold", hold)
            result = fulfilment.fulfil(
                ctx, rights.get_request(ctx, request_id), StaffInput(holds=holds, note=note)
            )
        console.print(f"{result.state}: {result.outcome}")
    finally:
        runtime.close()


@app.command("deny")
@reports_errors
def deny(
    tenant: TenantOpt,
    request_id: Annotated[str, typer.Argument(help="Request id")],
    reason: Annotated[str, typer.Option(help="Why (sent to the requester)")],
) -> None:
    """Refuse, with reasons and the authority to complain to."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            fulfilment.deny(ctx, rights.get_request(ctx, request_id), "refused", reason)
        console.print("denied; the letter names the authority to complain to")
    finally:
        runtime.close()


@app.command("route")
@reports_errors
def route(
    type: Annotated[str, typer.Option(help=f"One of: {TYPES}")],
    email: Annotated[str, typer.Option(help="The requester's e-mail")],
    jurisdiction: Annotated[str | None, typer.Option(help="Jurisdiction")] = None,
    send_via: Annotated[
        str | None, typer.Option(help="Tenant whose outbox sends the letter")
    ] = None,
) -> None:
    """Operator: pass a request about a client's customer on to the client (the controller)."""
    runtime = open_runtime()
    try:
        routed = routing.route(
            runtime, RequestInput(type, Requester(email), jurisdiction), send_via=send_via
        )
        if routed.controllers:
            console.print(
                f"Routed to {', '.join(routed.controllers)} ({', '.join(routed.references)})."
            )
        else:
            console.print("No client holds this address; the letter says so.")
        console.print(routed.letter, highlight=False)
    finally:
        runtime.close()


@app.command("add-recipient")
@reports_errors
def add_recipient(
    tenant: TenantOpt,
    slug: Annotated[str, typer.Argument(help="A short name for it")],
    name: Annotated[str, typer.Option(help="Its name, as the access answer tells it")],
    country: Annotated[str, typer.Option(help="Where it processes the data: GB, US…")],
    kind: Annotated[str, typer.Option(help="recipient or sub_processor")] = "recipient",
    transfer_mechanism: Annotated[
        str | None,
        typer.Option(help=f"How a transfer to it is safeguarded: {MECHANISMS}"),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where rectifications and erasures are sent")
    ] = None,
) -> None:
    """Register a recipient or sub-processor (told in access answers, GDPR Art. 15)."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            r, secret = recipients.add_recipient(
                ctx,
                slug=slug,
                name=name,
                kind=kind,
                country=country,
                webhook_url=webhook_url,
                transfer_mechanism=transfer_mechanism,
            )
            warning = recipients.transfer_warning(ctx, r)
        console.print(f"Added recipient {r.slug} ({r.country}).", highlight=False)
        _told(secret, warning)
    finally:
        runtime.close()


def _told(secret: str | None, warning: str | None) -> None:
    """What adding or changing a recipient has to say: its new signing secret (once), and
    a transfer with no safeguard recorded."""
    if secret:
        console.print(f"Webhook signing secret (shown once): {secret}", highlight=False)
    if warning:
        console.print(f"Warning: {warning}.", highlight=False)


@app.command("recipient-set")
@reports_errors
def recipient_set(
    tenant: TenantOpt,
    slug: Annotated[str, typer.Argument(help="The recipient's short name")],
    name: Annotated[
        str | None, typer.Option(help="Its name, as the access answer tells it")
    ] = None,
    transfer_mechanism: Annotated[
        str | None,
        typer.Option(help=f"How a transfer to it is safeguarded: {MECHANISMS}"),
    ] = None,
    no_transfer_mechanism: Annotated[
        bool, typer.Option("--no-transfer-mechanism", help="Record no mechanism")
    ] = False,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Where rectifications and erasures are sent (a new secret)"),
    ] = None,
    no_webhook: Annotated[
        bool, typer.Option("--no-webhook", help="Send it no more notices (drops the secret)")
    ] = False,
    deactivate: Annotated[
        bool,
        typer.Option(
            "--deactivate", help="It receives no more data: told in no access answer, notified"
        ),
    ] = False,
    activate: Annotated[bool, typer.Option("--activate", help="Active again")] = False,
) -> None:
    """Change a recipient: only what is given changes (audited)."""
    for given, other, what in (
        (transfer_mechanism is not None, no_transfer_mechanism, "--transfer-mechanism"),
        (webhook_url is not None, no_webhook, "--webhook-url"),
        (deactivate, activate, "--deactivate"),
    ):
        if given and other:
            raise InvalidInput(f"{what} and its opposite were both given")
    u = UNCHANGED
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            r, secret = recipients.update_recipient(
                ctx,
                slug,
                name=u if name is None else name,
                transfer_mechanism=None if no_transfer_mechanism else transfer_mechanism or u,
                webhook_url=None if no_webhook else webhook_url or u,
                active=True if activate else False if deactivate else u,
            )
            warning = recipients.transfer_warning(ctx, r) if r.active else None
            mechanism = r.transfer_mechanism or "no transfer mechanism recorded"
            hook = "webhook" if r.webhook_url else "no webhook"
            state = "active" if r.active else "inactive"
        console.print(f"Recipient {slug}: {mechanism}; {hook}; {state}.", highlight=False)
        _told(secret, warning)
    finally:
        runtime.close()


@app.command("recipients")
@reports_errors
def list_recipients(tenant: TenantOpt) -> None:
    """The recipients, their transfer mechanisms, and transfers with no safeguard."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            table = Table("slug", "name", "kind", "country", "transfer mechanism", "webhook")
            notes: list[str] = []
            for r in recipients.list_recipients(ctx):
                table.add_row(
                    r.slug,
                    r.name,
                    r.kind,
                    r.country,
                    r.transfer_mechanism or "—",
                    "yes" if r.webhook_url else "no",
                )
                if not r.active:
                    notes.append(f"{r.slug}: inactive (in no access answer, sent no notice).")
                    continue
                warning = recipients.transfer_warning(ctx, r)
                if warning:
                    notes.append(f"Warning: {r.slug}: {warning}.")
        console.print(table)
        # Below the table, not in a column: a narrow terminal would cut it short there.
        for line in notes:
            console.print(line, highlight=False)
    finally:
        runtime.close()


@app.command("sla")
@reports_errors
def sla(tenant: TenantOpt) -> None:
    """Open requests by state, due this week, overdue, median days to close."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            s = reports.sla(ctx)
        console.print(
            f"open: {s.open_by_state or 'none'}; due this week: {s.due_this_week}; "
            f"overdue: {s.overdue}; median days to close (90 days): {s.median_days_to_close}"
        )
    finally:
        runtime.close()


@app.command("jobs")
@reports_errors
def jobs(tenant: TenantOpt) -> None:
    """Close unverified requests, move paused due dates, purge old records (run daily).

    Records are purged 24 months after the request closed.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            closed = workflow.close_unverified(ctx)
            moved = workflow.refresh_paused_due(ctx)
            purged = workflow.purge_expired(ctx)
        console.print(
            f"closed unverified: {closed}; paused due dates moved: {moved}; purged: {purged}"
        )
    finally:
        runtime.close()
