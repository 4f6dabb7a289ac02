"""Demo data: a tenant shaped like the seeds' companies, with synthetic subjects (Faker) and the
interactions such companies hold — chats, calls, e-mails, web visits, orders, notes.

The tenant is configured as Clik Limited (seed 004, `pledge.presets.clik`); part of the demo
subjects come in through its collection points — the newsletter sign-up (consent) and the
status page (legitimate interest) — and the set-up ends with the campaign loop: a newsletter
sent through the gate, a one-click unsubscribe, and the next issue sent without that reader."""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from faker import Faker
from rich.progress import Progress
from sqlalchemy import select

from pledge.access import service as access
from pledge.access.context import TenantContext
from pledge.access.models import User
from pledge.access.permissions import Role
from pledge.audit.events import AuditEvent
from pledge.campaigns import service as campaigns
from pledge.campaigns.models import CampaignStatus
from pledge.cli.common import console
from pledge.consent import intake
from pledge.core.clock import utcnow
from pledge.core.db import transaction
from pledge.core.errors import InvalidInput, NotFound
from pledge.mail import reading as mail_reading
from pledge.preferences import tokens
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import DataSource
from pledge.subjects.vault import IdentityIndexer
from pledge.tenants import service as tenants

DEMO_SLUG = "demo"
DEMO_ADMIN = "admin@demo.example"
BATCH = 250
# Subjects collected one by one through a collection point (the rest are bulk-created): enough
# for a lively demo, few enough that a large demo stays fast.
COLLECT_AT_MOST = 1000
NEWSLETTER_SUBJECT = "{first_name}, what is new at Clik this month"
NEWSLETTER_BODY = """Hello {first_name},

this month in Clik: faster job scheduling for busy days, offline mode for engineers in the
field, and a new status page that tells you at once when something is wrong.

Thank you for reading,
The Clik team
"""


@dataclass(frozen=True)
class DemoLogin:
    workspace: str
    email: str
    password: str


def build_demo(
    runtime: Runtime,
    count: int,
    *,
    progress: Callable[[str, int], Progress] | None = None,
    seed: int | None = None,
) -> DemoLogin:
    with transaction(runtime.sessions) as session:
        try:
            tenants.get_tenant_by_slug(session, DEMO_SLUG)
        except NotFound:
            tenants.create_tenant(
                session,
                runtime.keystore,
                slug=DEMO_SLUG,
                name="Demo Software Ltd",
                jurisdictions=["EU", "UK", "US-CA"],
                region="EU",
                phone_region="GB",
                retention_classes={"billing": "Billing records, kept 7 years (seed 001 §12)"},
                # Kept by every erasure, the letter saying why: no hold for staff to remember.
                exempt_on_erasure={
                    "billing": "tax law requires us to keep invoices and payment records "
                    "for 7 years"
                },
            )
    password = secrets.token_urlsafe(12)
    with runtime.tenant_context(DEMO_SLUG) as ctx:
        if purposes.find_purpose(ctx, "newsletter") is None:
            clik(ctx)  # Clik Limited's purposes, notices, collection points and topics
        admin = _find_user(ctx, DEMO_ADMIN)
        if admin is None:
            access.add_user(ctx, email=DEMO_ADMIN, password=password, role=Role.OWNER.value)
        else:
            access.set_password(ctx, admin, password)
        existing = sum(reading.count_subjects(ctx).values())
    wanted = max(0, count - existing)
    if wanted:
        _generate(runtime, wanted, progress, seed)
    _send_newsletter(runtime)
    return DemoLogin(DEMO_SLUG, DEMO_ADMIN, password)


def _send_newsletter(runtime: Runtime) -> None:
    """The campaign loop, unless the demo already ran it: one newsletter through the gate; one
    reader presses "Unsubscribe" in their mail client (the RFC 8058 one-click POST, through the
    token in the message's `List-Unsubscribe` header); the next issue no longer reaches them."""
    with runtime.tenant_context(DEMO_SLUG) as ctx:
        if any(c.status == CampaignStatus.SENT.value for c in campaigns.list_campaigns(ctx)):
            return
        first = _newsletter(ctx, "this month")
        messages = mail_reading.list_messages(ctx, campaign_id=first.campaign_id, limit=1)
        leaver: uuid.UUID | None = None
        if messages:
            letter = mail_reading.read_message(ctx, messages[0].id).letter
            if letter is not None:
                url = letter.headers["List-Unsubscribe"].split(",")[0].strip("<> ")
                found = tokens.resolve(ctx.session, runtime.keystore, url.rsplit("/", 1)[-1])
                tokens.unsubscribe(ctx, found.token)
                leaver = found.token.subject_id
        second = _newsletter(ctx, "next month")
    console.print(
        f"Newsletter sent through the gate to {first.sent} subscriber(s) "
        f"({first.denied} not allowed)."
    )
    if leaver is not None:
        console.print(
            f"Subject {leaver} then unsubscribed with one click; the next issue went to "
            f"{second.sent} subscriber(s) — they were no longer in the gate's audience."
        )
    console.print(
        "Read the messages under Mail outbox (/mail) after signing in; "
        "their unsubscribe links work."
    )


def _newsletter(ctx: TenantContext, issue: str) -> campaigns.SendResult:
    campaign = campaigns.create_campaign(
        ctx,
        campaigns.CampaignInput(
            f"The Clik newsletter — {issue}",
            "newsletter",
            "email",
            "newsletter",
            NEWSLETTER_SUBJECT,
            NEWSLETTER_BODY,
        ),
    )
    return campaigns.send_campaign(ctx, campaign.id)


def _find_user(ctx: TenantContext, email: str) -> User | None:
    for user in ctx.session.scalars(select(User).where(User.tenant_id == ctx.tenant_id)):
        if access.user_email(ctx.keystore, user) == email:
            return user
    return None


def _generate(
    runtime: Runtime, count: int, progress: Callable[[str, int], Progress] | None, seed: int | None
) -> None:
    fake = Faker(["en_GB", "en_US", "de_DE", "fr_FR"])
    rng = random.Random(seed)
    if seed is not None:
        Faker.seed(seed)
    bar = progress("Demo subjects", count) if progress else None
    task = bar.add_task("demo", total=count) if bar else None
    if bar:
        bar.start()
    try:
        made = 0
        while made < count:
            n = min(BATCH, count - made)
            with runtime.tenant_context(DEMO_SLUG) as ctx:
                made += _batch(ctx, fake, rng, n, collect=max(0, COLLECT_AT_MOST - made))
            if bar and task is not None:
                bar.update(task, completed=made)
    finally:
        if bar:
            bar.stop()


def _person(fake: Faker, rng: random.Random, n: int) -> list[subjects.FieldInput]:
    first, last = fake.first_name(), fake.last_name()
    email = f"{first}.{last}.{n}{rng.randrange(10**6)}@{fake.free_email_domain()}".lower()
    email = "".join(ch for ch in email if ch.isascii() and (ch.isalnum() or ch in ".@-_"))
    fields = [
        subjects.FieldInput("email", email),
        subjects.FieldInput("first_name", first, "user.name.first"),
        subjects.FieldInput("last_name", last, "user.name.last"),
        subjects.FieldInput("phone", f"+4479{rng.randrange(10**8):08d}"),
        subjects.FieldInput("company", fake.company(), "user.contact.organization"),
    ]
    if rng.random() < 0.5:
        fields.append(subjects.FieldInput("city", fake.city(), "user.contact.address.city"))
    if rng.random() < 0.3:
        fields.append(subjects.FieldInput("job_title", fake.job()[:100], "user.job_title"))
    if rng.random() < 0.2:
        fields.append(
            subjects.FieldInput(
                "billing_address",
                fake.address().replace("\n", ", "),
                "user.contact.address",
                DataSource.DIRECT.value,
                "billing",
            )
        )
    if rng.random() < 0.15:
        fields.append(
            subjects.FieldInput(
                "signup_via", "google", "user.account", DataSource.INTEGRATED_SERVICE.value
            )
        )
    return fields


def _interactions(
    fake: Faker, rng: random.Random, subject_id: Any
) -> list[subjects.NewInteraction]:
    now = utcnow()
    out = []
    for _ in range(rng.randrange(0, 6)):
        when = now - timedelta(days=rng.randrange(0, 720), minutes=rng.randrange(0, 1440))
        kind = rng.choice(["chat", "call", "email", "visit", "order", "note"])
        category, source, klass = "user.content.private", DataSource.DIRECT.value, "standard"
        payload: dict[str, Any]
        if kind == "chat":
            payload = {
                "channel": rng.choice(["sales chat", "support chat"]),
                "transcript": [
                    {"from": "visitor", "text": fake.sentence()},
                    {"from": "agent", "text": fake.sentence()},
                ],
            }
        elif kind == "call":
            payload = {
                "direction": rng.choice(["inbound", "outbound"]),
                "duration_s": rng.randrange(30, 1800),
                "recorded": rng.random() < 0.5,
                "summary": fake.sentence(),
            }
            category = "user.content.private"  # a recording is what was said, not a voice print
        elif kind == "email":
            payload = {"subject": fake.sentence(nb_words=5), "body": fake.paragraph()}
        elif kind == "visit":
            payload = {
                "pages": [fake.uri_path() for _ in range(rng.randrange(1, 4))],
                "ip_address": fake.ipv4_public(),
            }
            category, source = "user.behavior.browsing_history", DataSource.AUTOMATIC.value
        elif kind == "order":
            payload = {
                "order_no": f"INV-{rng.randrange(10**6):06d}",
                "amount": f"{rng.randrange(20, 2000)}.00",
                "currency": "GBP",
                "plan": rng.choice(["starter", "team", "enterprise"]),
            }
            category, klass = "user.behavior.purchase_history", "billing"
        else:
            payload = {"note": fake.sentence()}
        out.append(
            subjects.NewInteraction(
                subject_id, kind, when.astimezone(UTC), category, payload, source, klass
            )
        )
    return out


def _collect(
    ctx: TenantContext, rng: random.Random, person: list[subjects.FieldInput]
) -> uuid.UUID | None:
    """Bring a person in through a collection point: the newsletter sign-up (box ticked: a
    consent with its proof) or the status page (legitimate interest). None if taken."""
    fields = [f for f in person if f.name != "phone"]
    email = next(f.value for f in fields if f.name == "email")
    if reading.find_subject_id(ctx, IdentityKind.EMAIL, email) is not None:
        return None
    if rng.random() < 0.65:
        choices = [intake.ConsentChoice("newsletter", True)]
        return intake.collect(ctx, "newsletter", fields, choices).subject_id
    return intake.collect(ctx, "status-page", fields).subject_id


def _batch(ctx: TenantContext, fake: Faker, rng: random.Random, n: int, *, collect: int = 0) -> int:
    indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
    now = utcnow()
    prepared = []
    ids: list[uuid.UUID] = []
    for i in range(n):
        person = _person(fake, rng, i)
        if len(ids) < collect and rng.random() < 0.55:
            try:
                collected = _collect(ctx, rng, person)
            except InvalidInput:
                collected = None
            if collected is not None:
                ids.append(collected)
                continue
        try:
            prepared.append(subjects.prepare_subject(ctx, person, indexer, now))
        except InvalidInput:
            continue
    clash = subjects.existing_identities(ctx, [i for p in prepared for i in p.identities])
    prepared = [p for p in prepared if not any((k.value, b) in clash for k, b in p.identities)]
    ids += subjects.store_subjects(ctx, prepared, event=AuditEvent.SUBJECT_CREATED, via="demo")
    subjects.store_interactions(ctx, [x for sid in ids for x in _interactions(fake, rng, sid)])
    return len(ids)
