"""Demo data: a tenant shaped like the seeds' companies, with synthetic subjects (Faker) and the
interactions such companies hold — chats, calls, e-mails, web visits, orders, notes."""

from __future__ import annotations

import random
import secrets
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
from pledge.core.clock import utcnow
from pledge.core.db import transaction
from pledge.core.errors import InvalidInput, NotFound
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.models import DataSource
from pledge.subjects.vault import IdentityIndexer
from pledge.tenants import service as tenants

DEMO_SLUG = "demo"
DEMO_ADMIN = "admin@demo.example"
BATCH = 250


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
            )
    password = secrets.token_urlsafe(12)
    with runtime.tenant_context(DEMO_SLUG) as ctx:
        admin = _find_user(ctx, DEMO_ADMIN)
        if admin is None:
            access.add_user(ctx, email=DEMO_ADMIN, password=password, role=Role.OWNER.value)
        else:
            access.set_password(ctx, admin, password)
        existing = sum(subjects.count_subjects(ctx).values())
    wanted = max(0, count - existing)
    if wanted:
        _generate(runtime, wanted, progress, seed)
    return DemoLogin(DEMO_SLUG, DEMO_ADMIN, password)


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
                made += _batch(ctx, fake, rng, n)
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
            category = "user.biometric.voice" if payload["recorded"] else "user.content.private"
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


def _batch(ctx: TenantContext, fake: Faker, rng: random.Random, n: int) -> int:
    indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
    now = utcnow()
    prepared = []
    for i in range(n):
        try:
            prepared.append(subjects.prepare_subject(ctx, _person(fake, rng, i), indexer, now))
        except InvalidInput:
            continue
    clash = subjects.existing_identities(ctx, [i for p in prepared for i in p.identities])
    prepared = [p for p in prepared if not any((k.value, b) in clash for k, b in p.identities)]
    ids = subjects.store_subjects(ctx, prepared, event=AuditEvent.SUBJECT_CREATED, via="demo")
    subjects.store_interactions(ctx, [x for sid in ids for x in _interactions(fake, rng, sid)])
    return len(ids)
