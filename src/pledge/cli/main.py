"""`pledge`: everything an operator needs without the web."""

from __future__ import annotations

import csv
import json
import re
import sys
import uuid
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pledge import presets
from pledge.access import service as access
from pledge.access.context import OPERATOR, TenantContext
from pledge.access.permissions import Role, Scope, parse_scopes
from pledge.audit import service as audit
from pledge.campaigns import cli as campaigns_cli
from pledge.cli.common import (
    console,
    errors,
    fail,
    open_runtime,
    operator_context,
    progress_bar,
    read_secret,
    reports_errors,
)
from pledge.consent import cli as consent_cli
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.db import make_engine, read_transaction, transaction
from pledge.core.errors import InvalidInput, NotFound
from pledge.core.validation import UNCHANGED, Unchanged
from pledge.crypto.keystore import create_master_key_file, make_keystore_engine
from pledge.gate import cli as gate_cli
from pledge.mail import cli as mail_cli
from pledge.migrations import upgrade
from pledge.notices import cli as notices_cli
from pledge.preferences import cli as preferences_cli
from pledge.purposes import cli as purposes_cli
from pledge.rights import cli as rights_cli
from pledge.rights import service as rights_service
from pledge.runtime import Runtime
from pledge.subjects import erasure, importer, reading, retention
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import STANDARD_CLASS, DataSource
from pledge.tenants import service as tenants
from pledge.tenants.models import DEFAULT_CHILD_AGE, ChildrenPolicy
from pledge.webhooks import cli as webhooks_cli

app = typer.Typer(
    name="pledge",
    help="Pledge keeps the promises of a privacy policy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenant_app = typer.Typer(help="Tenants (one per client).", no_args_is_help=True)
user_app = typer.Typer(help="Staff users of a tenant.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)
subjects_app = typer.Typer(help="Data subjects: import, export, erase.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(subjects_app, name="subjects")
app.add_typer(audit_app, name="audit")
app.add_typer(purposes_cli.app, name="purpose")
app.add_typer(notices_cli.app, name="notice")
app.add_typer(consent_cli.app, name="consent")
app.add_typer(gate_cli.app, name="gate")
app.add_typer(preferences_cli.app, name="preferences")
app.add_typer(campaigns_cli.app, name="campaign")
app.add_typer(mail_cli.app, name="mail")
app.add_typer(rights_cli.app, name="rights")
app.add_typer(webhooks_cli.app, name="webhooks")

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug")]


# ---------------------------------------------------------------------------------------------
# Set-up and serving


@app.command()
@reports_errors
def init() -> None:
    """Create PLEDGE_HOME, the master key (mode 0600) and the schemas, or migrate them."""
    settings = get_settings()
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    if settings.master_key:
        console.print("Master key: from PLEDGE_MASTER_KEY")
    elif create_master_key_file(settings.master_key_path):
        console.print(
            f"Master key: created {settings.master_key_path} (mode 0600) — "
            "back it up apart from the data"
        )
    else:
        console.print(f"Master key: {settings.master_key_path} (exists)")
    data_engine = make_engine(settings.data_url)
    keys_engine = make_keystore_engine(settings.keys_url)
    try:
        upgrade("datastore", data_engine)
        upgrade("keystore", keys_engine)
    finally:
        data_engine.dispose()
        keys_engine.dispose()
    console.print(f"Data store: {data_engine.url.render_as_string(hide_password=True)} (migrated)")
    console.print(f"Keystore:   {keys_engine.url.render_as_string(hide_password=True)} (migrated)")


@app.command()
@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """Run the web console and the API."""
    from pledge.web.server import run

    run(host, port)


@app.command()
@reports_errors
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit (for cron)")] = False,
    interval: Annotated[int, typer.Option(min=5, max=86_400, help="Seconds between cycles")] = 60,
) -> None:
    """Run the scheduled work (safe to run twice at once).

    Notice announcements, closing unverified rights requests, purging old request records,
    paused due dates, mail delivery and retention, the audit checkpoint, webhook retries.
    """
    import time

    from pledge import worker as jobs

    runtime = open_runtime()
    try:
        while True:
            report = jobs.run_once(runtime)
            console.print(f"{utcnow():%Y-%m-%d %H:%M:%S}Z {report.summary()}")
            if once:
                # Non-zero for cron to alert on: a step failed, or a chain is broken.
                if report.errors or report.audit_broken:
                    raise typer.Exit(1)
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        console.print("worker stopped")
    finally:
        runtime.close()


@app.command()
@reports_errors
def demo(
    subjects_count: Annotated[
        int, typer.Option("--subjects", min=0, max=1_000_000, help="How many synthetic subjects")
    ] = 200,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Create the demo data and exit")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """A demo tenant with synthetic subjects and interactions; prints a login, then serves."""
    from pledge.demo import build_demo

    init()
    runtime = open_runtime()
    try:
        login = build_demo(runtime, subjects_count, progress=progress_bar)
    finally:
        runtime.close()
    console.print()
    console.print(f"[bold]Demo ready.[/] Sign in at [link]http://{host}:{port}/login[/]")
    console.print(f"  workspace: [bold]{login.workspace}[/]")
    console.print(f"  e-mail:    [bold]{login.email}[/]")
    console.print(f"  password:  [bold]{login.password}[/]  (shown once)")
    if not no_serve:
        serve(host, port)


# ---------------------------------------------------------------------------------------------
# Tenants, users, API keys


@tenant_app.command("create")
@reports_errors
def tenant_create(
    slug: Annotated[str, typer.Argument(help="Short lower-case id, like a client prefix")],
    name: Annotated[str, typer.Option(help="Display name")],
    jurisdiction: Annotated[
        list[str] | None, typer.Option(help="EU, UK, CH, AU, US-CA, US-VA, US-CO, US-CT, US-UT")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Hosting region (default: the preset's, else EU)")
    ] = None,
    phone_region: Annotated[
        str | None,
        typer.Option(help="Country for phone numbers without +code (default: preset's, else GB)"),
    ] = None,
    require_totp: Annotated[bool, typer.Option(help="Every user needs a second factor")] = False,
    retention_class: Annotated[
        list[str] | None, typer.Option(help="Extra retention class, as name=description")
    ] = None,
    exempt: Annotated[
        list[str] | None,
        typer.Option(
            help="A class an erasure keeps, as class=reason (the legal duty, told to the requester)"
        ),
    ] = None,
    keep_for: Annotated[
        list[str] | None,
        typer.Option(
            "--keep-for",
            help="How long an erasure keeps a class, as class=period ('billing=7 years'); "
            "then it is erased",
        ),
    ] = None,
    privacy_contact: Annotated[
        str | None, typer.Option(help="Privacy team contact (default: the preset's)")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Start from a seed's practice (see `tenant presets`)")
    ] = None,
) -> None:
    """Create a tenant, its keys and its audit chain.

    With --preset, the tenant is configured as the seed's company in the same transaction
    (all or nothing); what the options do not give (jurisdictions, region, phone region,
    privacy contact) comes from the preset.
    """
    if preset is not None:
        presets.get_preset(preset)  # an unknown one: refused before anything is created
    classes = {}
    for item in retention_class or []:
        key, _, description = item.partition("=")
        classes[key.strip()] = description.strip() or key.strip()
    exempt_on_erasure = {}
    for item in exempt or []:
        key, sep, reason = item.partition("=")
        if not sep:
            raise fail(f"--exempt {item[:40]!r}: give it as class=reason")
        exempt_on_erasure[key.strip()] = reason
    periods = {}
    for item in keep_for or []:
        key, sep, period = item.partition("=")
        if not sep:
            raise fail(f"--keep-for {item[:40]!r}: give it as class=period, e.g. billing=7 years")
        periods[key.strip()] = period
    runtime = open_runtime()
    try:
        with transaction(runtime.sessions) as session:
            if preset is not None:
                tenant = presets.create_tenant(
                    session,
                    runtime.keystore,
                    preset,
                    slug=slug,
                    name=name,
                    jurisdictions=jurisdiction or None,
                    region=region,
                    phone_region=phone_region,
                    require_totp=require_totp,
                    retention_classes=classes,
                    exempt_on_erasure=exempt_on_erasure,
                    privacy_contact=privacy_contact,
                )
                ctx = TenantContext(session, runtime.keystore, tenant, OPERATOR)
                for cls, period in periods.items():
                    if cls not in tenant.retention_classes:
                        raise InvalidInput(f"no retention class {cls[:40]!r} to give a period")
                    tenants.set_retention_class(ctx, cls, keep_for=period)
            else:
                tenant = tenants.create_tenant(
                    session,
                    runtime.keystore,
                    slug=slug,
                    name=name,
                    jurisdictions=jurisdiction or [],
                    region=region or "EU",
                    phone_region=phone_region or "GB",
                    require_totp=require_totp,
                    retention_classes=classes,
                    exempt_on_erasure=exempt_on_erasure,
                    keep_for=periods,
                    privacy_contact=privacy_contact or "",
                )
        started = f" from preset {preset}" if preset else ""
        console.print(f"Tenant [bold]{tenant.slug}[/] created ({tenant.id}){started}.")
    finally:
        runtime.close()


@tenant_app.command("presets")
def tenant_presets() -> None:
    """List the presets `tenant create --preset` starts a tenant from: the seeds' practices."""
    # Lines, not a table: the descriptions would wrap to four lines each at 80 columns.
    for preset_name, preset in presets.PRESETS.items():
        console.print(f"[bold]{preset_name}[/]: {escape(preset.description)}", highlight=False)
        console.print(
            f"  jurisdictions {', '.join(preset.jurisdictions)}; hosted in {preset.region}",
            highlight=False,
        )


@tenant_app.command("retention-class")
@reports_errors
def tenant_retention_class(
    tenant: TenantOpt,
    name: Annotated[str, typer.Argument(help="Class name: lower-case letters, digits, _")],
    description: Annotated[
        str | None, typer.Option(help="What the class holds (a new class: its name)")
    ] = None,
    exempt_on_erasure: Annotated[
        str | None,
        typer.Option(
            "--exempt-on-erasure",
            help="The legal duty for which an erasure keeps this class (told to the requester)",
        ),
    ] = None,
    not_exempt: Annotated[
        bool, typer.Option("--not-exempt", help="An erasure takes this class again")
    ] = False,
    keep_for: Annotated[
        str | None,
        typer.Option(
            "--keep-for",
            help="How long an erasure keeps this class ('7 years', '18 months', '90 days'); "
            "then it is erased",
        ),
    ] = None,
    no_period: Annotated[
        bool, typer.Option("--no-period", help="What an erasure keeps stays with no end")
    ] = False,
) -> None:
    """Add a retention class to a tenant, or change how it is described, kept and erased.

    A class exempt from erasure is kept by every erasure request without a hold from staff,
    and the reason is told to the requester in the letter (`subjects erase` keeps what
    --keep names). With neither --exempt-on-erasure nor --not-exempt the exemption stays.
    With --keep-for, what an erasure keeps of the class is erased by the worker that long
    after the erasure (the letter says when); data kept longer already goes at once.
    """
    if exempt_on_erasure is not None and not_exempt:
        raise fail("give either --exempt-on-erasure or --not-exempt")
    if keep_for is not None and no_period:
        raise fail("give either --keep-for or --no-period")
    reason: str | Unchanged | None = UNCHANGED
    if exempt_on_erasure is not None:
        reason = exempt_on_erasure
    elif not_exempt:
        reason = None
    period: str | Unchanged | None = None if no_period else keep_for or UNCHANGED
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            done = tenants.set_retention_class(ctx, name, description, reason, period)
            record = ctx.settings.retention_classes[name]
            kept = "exempt_on_erasure" in record
            kept_for = record.get("keep_for")
        state = "kept on erasure" if kept else "no longer kept on erasure" if not_exempt else ""
        if kept_for:
            state += f"{', ' if state else ''}erased {kept_for} after an erasure that keeps it"
        elif no_period:
            state += f"{', ' if state else ''}no period"
        console.print(
            f"Retention class {name} {done} for {tenant}" + (f": {state}." if state else "."),
            highlight=False,
        )
    finally:
        runtime.close()


@tenant_app.command("interaction-retention")
@reports_errors
def tenant_interaction_retention(
    tenant: TenantOpt,
    category: Annotated[
        str, typer.Option("--category", help="The interactions' data category, exactly")
    ],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only of this kind (call, chat, …)")
    ] = None,
    keep: Annotated[
        str | None,
        typer.Option("--keep", help="How long after they occurred ('12 months', '90 days')"),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the rule")] = False,
) -> None:
    """Delete interactions of a category (and kind) a period after they occurred.

    The worker deletes them, in batches, and audits the count per person; a rule for a
    kind wins over its category's rule for every kind. The access answer tells the period.
    Copies in backups taken before stay readable until the person's erasure (decision 0014).
    """
    if (keep is not None) == remove:
        raise fail("give either --keep PERIOD or --remove")
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            done = tenants.set_interaction_retention(ctx, category, kind, keep)
            rules = retention.interaction_rules(ctx.settings.interaction_retention)
        console.print(f"Interaction rule {done} for {tenant}.", highlight=False)
        for rule in rules:
            console.print(
                f"  {rule.describe()}: deleted {rule.keep} after they occurred", highlight=False
            )
    finally:
        runtime.close()


@tenant_app.command("rights-promise")
@reports_errors
def tenant_rights_promise(
    tenant: TenantOpt,
    request_type: Annotated[
        str, typer.Argument(help="Request type (erasure, access, …) or * for every other type")
    ],
    respond: Annotated[
        str | None,
        typer.Option(help="The promised time: '<n> months', '<n> days' or '<n> business days'"),
    ] = None,
    restart_on_information: Annotated[
        bool,
        typer.Option(
            "--restart-on-information",
            help="The time runs again in full from the requester's answer to a question",
        ),
    ] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Back to the law's deadline")] = False,
) -> None:
    """Promise requesters an answer faster than the law, or remove the promise.

    The earlier of the promise and the law's deadline is the due date, until a lawful
    extension is notified. Open requests' due dates follow at once.
    """
    if (respond is None) == (not remove):
        raise fail("give either --respond or --remove")
    if remove and restart_on_information:
        raise fail("--restart-on-information goes with --respond, not --remove")
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            moved = tenants.set_rights_promise(
                ctx, request_type, None if remove else respond, restart_on_information
            )
            promise = ctx.settings.rights_promises.get(request_type)
        which = "requests of other types" if request_type == "*" else f"{request_type} requests"
        if promise is None:
            said = f"{which} of {tenant}: the law's deadline"
        else:
            again = ", again from any further information" if restart_on_information else ""
            said = f"{which} of {tenant}: answered within {promise['respond']}{again}"
        console.print(f"{said}; {moved} open request(s) due on a new date.", highlight=False)
    finally:
        runtime.close()


def _iso_day(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise fail(f"not a date: {text[:20]!r} (use YYYY-MM-DD)")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"not a date: {text[:20]!r} (use YYYY-MM-DD)") from None


@tenant_app.command("closing-days")
@reports_errors
def tenant_closing_days(
    tenant: TenantOpt,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="A closing day to add, YYYY-MM-DD")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A closing day to remove, YYYY-MM-DD")
    ] = None,
) -> None:
    """Show, add or remove the tenant's closing days.

    Closing days count as holidays besides the jurisdiction's public ones wherever a deadline
    is counted in business days (and the UK moves a due date off them). They are for public
    holidays the calendar lacks (a regional one), not the company's own closures: a closing
    day lengthens the law's deadline. Open requests' due dates follow at once; a due date an
    extension's letter gave is never brought forward.
    """
    adding = [_iso_day(d) for d in add or []]
    removing = [_iso_day(d) for d in remove or []]
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            if adding or removing:
                days, moved = tenants.set_closing_days(ctx, adding, removing)
            else:
                days, moved = sorted(rights_service.closing_days(ctx)), 0
        listed = ", ".join(d.isoformat() for d in days) or "none"
        console.print(f"Closing days of {tenant}: {listed}.", highlight=False)
        if adding or removing:
            console.print(f"{moved} open request(s) due on a new date.", highlight=False)
    finally:
        runtime.close()


DEFAULT_POLICY = ChildrenPolicy.CONSENT_NEEDS_PARENT.value
CHILDREN_POLICIES = {
    ChildrenPolicy.CONSENT_NEEDS_PARENT: (
        "a child's consent, or a sale of their data, needs a parent's"
    ),
    ChildrenPolicy.NO_USE_WITHOUT_PARENT: (
        "without a parent's consent a child's data serves only a legal obligation "
        "or a vital interest"
    ),
    ChildrenPolicy.ERASE_ON_DISCOVERY: (
        "without a parent's consent a child's data serves only a legal obligation "
        "or a vital interest, and a subject marked such a child is erased at once"
    ),
}


@tenant_app.command("children")
@reports_errors
def tenant_children(
    tenant: TenantOpt,
    age: Annotated[
        int | None, typer.Option("--age", help="Under this age a person is a child (13-18)")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="One of: " + ", ".join(CHILDREN_POLICIES)),
    ] = None,
) -> None:
    """Show or set the tenant's children's rules.

    A subject is marked a child by staff, or when a date of birth under the age is stored.
    The policy says what the gate refuses a child without a parent's consent (GDPR Art. 8,
    CCPA: their consent and a sale, the default; the seeds' stricter promises: every use
    but what the law needs, or erasure). Changing it erases nobody marked before.
    """
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            changed = tenants.set_children_rules(ctx, age, policy)
            now_age, now_policy = ctx.settings.child_age, ctx.settings.children_policy
        console.print(
            f"Children at {tenant}: under {now_age}; {now_policy} "
            f"({CHILDREN_POLICIES[ChildrenPolicy(now_policy)]}).",
            highlight=False,
        )
        if age is not None or policy is not None:
            console.print("Changed: " + (", ".join(changed) or "nothing") + ".", highlight=False)
    finally:
        runtime.close()


@tenant_app.command("contact")
@reports_errors
def tenant_contact(
    tenant: TenantOpt,
    set_to: Annotated[
        str | None,
        typer.Option("--set", help="The privacy team's contact, told to requesters ('' removes)"),
    ] = None,
) -> None:
    """Show or set the tenant's privacy contact, told to requesters as the controller's.

    It is in letters, consent receipts and the access answer."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            changed = set_to is not None and tenants.set_privacy_contact(ctx, set_to)
            contact = ctx.settings.privacy_contact
        console.print(
            f"Privacy contact of {tenant}: {escape(contact) or '(none)'}", highlight=False
        )
        if set_to is not None:
            console.print("Changed." if changed else "Unchanged.", highlight=False)
    finally:
        runtime.close()


@tenant_app.command("list")
@reports_errors
def tenant_list() -> None:
    """List tenants."""
    runtime = open_runtime()
    try:
        with transaction(runtime.sessions) as session:
            table = Table("slug", "name", "jurisdictions", "region", "TOTP required")
            # Under the table, not a column: a sixth column squeezes the names at 80 columns.
            exempt = []
            for t in tenants.list_tenants(session):
                table.add_row(
                    t.slug,
                    escape(t.name),  # free text, not style markup
                    ", ".join(t.jurisdictions),
                    t.region,
                    "yes" if t.require_totp else "no",
                )
                kept = [
                    n for n, c in sorted(t.retention_classes.items()) if c.get("exempt_on_erasure")
                ]
                if kept:
                    exempt.append(f"{t.slug}: {', '.join(kept)} kept on erasure")
                for cls, period in sorted(retention.class_periods(t.retention_classes).items()):
                    exempt.append(f"{t.slug}: {cls} erased {period} after an erasure")
                for rule in retention.interaction_rules(t.interaction_retention):
                    exempt.append(f"{t.slug}: {rule.describe()} deleted after {rule.keep}")
                if (t.child_age, t.children_policy) != (DEFAULT_CHILD_AGE, DEFAULT_POLICY):
                    exempt.append(f"{t.slug}: children under {t.child_age}, {t.children_policy}")
        console.print(table)
        for line in exempt:
            console.print(line, highlight=False)
    finally:
        runtime.close()


@user_app.command("add")
@reports_errors
def user_add(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="Sign-in e-mail")],
    role: Annotated[Role, typer.Option(help="Role")] = Role.AGENT,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
) -> None:
    """Add a staff user; the password comes from a prompt or standard input."""
    password = read_secret("Password", password_stdin)
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            user = access.add_user(ctx, email=email, password=password, role=role.value)
        console.print(f"User {user.id} added to {tenant} as {role.value}.")
    finally:
        runtime.close()


@user_app.command("disable")
@reports_errors
def user_disable(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="Sign-in e-mail")],
) -> None:
    """Stop a user signing in (someone who left); their open sessions end now."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            user = access.user_by_email(ctx, email)
            ended = access.disable_user(ctx, user)
        console.print(f"User {user.id} of {tenant} disabled; {ended} session(s) ended.")
    finally:
        runtime.close()


@user_app.command("enable")
@reports_errors
def user_enable(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="Sign-in e-mail")],
) -> None:
    """Let a disabled user sign in again."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            user = access.user_by_email(ctx, email)
            access.enable_user(ctx, user)
        console.print(f"User {user.id} of {tenant} enabled.")
    finally:
        runtime.close()


@apikey_app.command("create")
@reports_errors
def apikey_create(
    tenant: TenantOpt,
    scope: Annotated[
        list[str],
        typer.Option(help="Scope, repeatable, or * for all: " + ", ".join(s.value for s in Scope)),
    ],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
) -> None:
    """Create an API key. The key is printed once and cannot be shown again."""
    try:
        scopes = parse_scopes(scope)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            key, token = access.create_api_key(ctx, name=name, scopes=scopes)
        # The note to stderr, the token alone on stdout, so scripts can capture it.
        errors.print(
            f"API key {key.id} ({', '.join(key.scopes)}). Store it now: it is shown only once.",
            highlight=False,
        )
        print(token)
    finally:
        runtime.close()


@apikey_app.command("list")
@reports_errors
def apikey_list(tenant: TenantOpt) -> None:
    """List a tenant's API keys (never their secrets)."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            table = Table("id", "name", "scopes", "created", "revoked")
            for k in access.list_api_keys(ctx):
                table.add_row(
                    str(k.id),
                    escape(k.name),  # free text, not style markup
                    " ".join(k.scopes),
                    k.created_at.isoformat(timespec="seconds"),
                    k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
                )
        console.print(table)
    finally:
        runtime.close()


@apikey_app.command("revoke")
@reports_errors
def apikey_revoke(tenant: TenantOpt, key_id: Annotated[str, typer.Argument(help="Key id")]) -> None:
    """Revoke an API key at once."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            access.revoke_api_key(ctx, key_id)
        console.print(f"API key {key_id} revoked.")
    finally:
        runtime.close()


# ---------------------------------------------------------------------------------------------
# Subjects


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@subjects_app.command("import")
@reports_errors
def subjects_import(
    tenant: TenantOpt,
    file: Annotated[
        Path, typer.Argument(help="CSV with a header: email, phone, first_name, last_name, …")
    ],
    category: Annotated[
        list[str] | None, typer.Option(help="Category of an extra column: column=user.…")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="TOML file mapping columns to categories")
    ] = None,
    source: Annotated[
        DataSource, typer.Option(help="Where the data came from")
    ] = DataSource.DIRECT,
    retention_class: Annotated[
        str, typer.Option(help="Retention class of the imported fields")
    ] = STANDARD_CLASS,
    batch_size: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="Subjects per transaction")
    ] = None,
) -> None:
    """Validate the whole file, then import it in batches (safe to re-run after an interruption)."""
    runtime = open_runtime()
    try:
        # Checked in a read-only snapshot: a large file takes a while, and the server's
        # writers must not wait for it (SQLite has one write lock).
        with (
            runtime.tenant_context(tenant, read_only=True) as ctx,
            progress_bar("Checking", 0) as check_bar,
        ):
            check = check_bar.add_task("check", total=None)
            plan = importer.plan_import(
                ctx,
                file,
                categories=importer.parse_category_options(category or []),
                mapping=importer.read_mapping(mapping) if mapping else None,
                source=source.value,
                retention_class=retention_class,
                on_progress=lambda done, total: check_bar.update(
                    check, completed=done, total=total
                ),
            )
        size = batch_size or runtime.settings.import_batch_size
        with progress_bar("Importing", len(plan.rows)) as bar:
            task = bar.add_task("import", total=len(plan.rows))
            result = importer.run_import(
                lambda: operator_context(runtime, tenant),
                plan,
                batch_size=size,
                on_progress=lambda n: bar.advance(task, n),
            )
        console.print(
            f"Imported {result.created} subject(s); {result.already_present} already present "
            f"({result.batches} batch(es))."
        )
    finally:
        runtime.close()


@subjects_app.command("export")
@reports_errors
def subjects_export(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="The subject's e-mail")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="json or csv")
    ] = ExportFormat.JSON,
) -> None:
    """Print the subject's whole record, decrypted, to stdout."""
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
            if subject_id is None:
                raise NotFound(f"no subject with that e-mail in tenant {tenant!r}")
            record = reading.export_subject(ctx, subject_id)
        if format is ExportFormat.JSON:
            json.dump(record, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            _write_csv(record)
    finally:
        runtime.close()


def _write_csv(record: dict[str, object]) -> None:
    # Data cells no spreadsheet runs as a formula, as in the access bundle's CSV.
    from pledge.rights.bundle import spreadsheet_safe

    def row(cells: list[object]) -> list[object]:
        return [spreadsheet_safe(c) if isinstance(c, str) else c for c in cells]

    writer = csv.writer(sys.stdout)
    writer.writerow(["record", "name", "value", "category", "source", "retention_class", "time"])
    for f in record["fields"]:  # type: ignore[attr-defined]
        writer.writerow(
            row(
                [
                    "field",
                    f["name"],
                    f["value"],
                    f["category"],
                    f["source"],
                    f["retention_class"],
                    f["updated_at"],
                ]
            )
        )
    for i in record["interactions"]:  # type: ignore[attr-defined]
        payload = json.dumps(i["payload"], ensure_ascii=False) if i["payload"] is not None else ""
        writer.writerow(
            row(
                [
                    "interaction",
                    i["kind"],
                    payload,
                    i["category"],
                    i["source"],
                    i["retention_class"],
                    i["occurred_at"],
                ]
            )
        )


@subjects_app.command("erase")
@reports_errors
def subjects_erase(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="The subject's e-mail")],
    keep: Annotated[
        list[str] | None, typer.Option(help="Retention class to keep (legal duty), repeatable")
    ] = None,
    erase_exempt: Annotated[
        bool,
        typer.Option(
            "--erase-exempt",
            help="Also erase the classes the tenant keeps on erasure (their legal period is over)",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Crypto-erase a subject: destroy its keys, then delete its data.

    The retention classes the tenant keeps on erasure (a legal duty) are kept unless
    --erase-exempt.
    """
    if (
        not yes
        and sys.stdin.isatty()
        and not typer.confirm("Erase this subject? This cannot be undone")
    ):
        raise typer.Exit(1)
    runtime = open_runtime()
    try:
        with operator_context(runtime, tenant) as ctx:
            subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
            if subject_id is None:
                raise NotFound(f"no subject with that e-mail in tenant {tenant!r}")
            result = erasure.erase_subject(
                ctx, subject_id, keep_classes=keep or [], erase_exempt=erase_exempt
            )
        kept = f"; kept: {', '.join(result.kept_classes)}" if result.kept_classes else ""
        console.print(
            f"Subject {result.subject_id} {result.status.replace('_', ' ')}: keys shredded "
            f"({', '.join(result.shredded_classes) or 'none left'}), "
            f"{result.records_deleted} record(s) and "
            f"{result.interactions_deleted} interaction(s) deleted{kept}."
        )
    finally:
        runtime.close()


# ---------------------------------------------------------------------------------------------
# Audit


def _checkpoint_chain(runtime: Runtime, tenant_id: uuid.UUID, slug: str) -> audit.CheckpointResult:
    """Verify and checkpoint one tenant's chain, with a bar while it is walked."""
    # A snapshot per tenant, no write lock: the service goes on writing meanwhile.
    with read_transaction(runtime.sessions) as session:
        total = audit.chain_length(session, tenant_id)  # the same snapshot as the walk
        with progress_bar(f"Verifying {slug}", total, transient=True) as bar:
            task = bar.add_task("verify", total=total)
            return audit.checkpoint(
                session,
                runtime.keystore,
                tenant_id,
                progress=lambda walked: bar.update(task, completed=walked),
            )


@audit_app.command("verify")
@reports_errors
def audit_verify(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Tenant slug; all when omitted")
    ] = None,
) -> None:
    """Verify the audit chain(s); exits non-zero naming the first bad entry.

    Each chain that holds is checkpointed in the keystore.
    """
    runtime = open_runtime()
    broken = 0
    try:
        with transaction(runtime.sessions) as session:
            targets = [
                (t.id, t.slug)
                for t in (
                    [tenants.get_tenant_by_slug(session, tenant)]
                    if tenant
                    else tenants.list_tenants(session)
                )
            ]
        for tenant_id, slug in targets:
            outcome = _checkpoint_chain(runtime, tenant_id, slug)
            result = outcome.verified
            if result.ok:
                anchored = (
                    f"; checkpoint at entry {outcome.checkpoint.seq}" if outcome.checkpoint else ""
                )
                console.print(
                    f"[green]ok[/]     {slug}: {result.checked} entries verified{anchored}"
                )
            else:
                broken += 1
                console.print(
                    f"[bold red]BROKEN[/] {slug}: first bad entry "
                    f"{result.first_bad_seq}: {result.reason}"
                )
        if not tenant:
            # A tenant row deleted from the data store takes its chain out of this list.
            gone = runtime.keystore.audit_checkpointed_tenants() - {i for i, _ in targets}
            for tenant_id in sorted(gone):
                broken += 1
                console.print(
                    f"[bold red]BROKEN[/] tenant {tenant_id}: the keystore holds a checkpoint "
                    "of its audit chain, but the data store no longer has the tenant"
                )
    finally:
        runtime.close()
    if broken:
        raise fail(f"{broken} audit chain(s) failed verification")


if __name__ == "__main__":  # pragma: no cover
    app()
