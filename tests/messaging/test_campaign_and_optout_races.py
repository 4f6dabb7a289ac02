"""Two requests at once, and a retry after the person said no: a campaign reaches each person
once, never after they withdrew; two opt-outs (or suppressions) of the same thing both succeed."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import select

from pledge import worker
from pledge.access.context import TenantContext
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.campaigns import service as campaigns
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict
from pledge.mail.backends import MemoryBackend
from pledge.mail.models import OutboxMessage
from pledge.preferences import service as preferences
from pledge.preferences import suppression
from pledge.runtime import Runtime
from tests.conftest import Second
from tests.messaging.conftest import subscribe

# Two transactions overlap only on PostgreSQL: SQLite's second writer waits at BEGIN.
ONLY_POSTGRESQL = "SQLite: a second writer waits for the first (BEGIN IMMEDIATE)"

MARCH = campaigns.CampaignInput(
    "March", "newsletter", "email", "newsletter", "News", "Hello {first_name}"
)


def test_a_campaign_sent_twice_at_once_reaches_each_person_once(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    # A double click on "Send", or an API client retrying a slow request: two transactions.
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip(ONLY_POSTGRESQL)
    subscribe(runtime, clik_tenant, "ada@example.com", "Ada")
    with runtime.tenant_context(clik_tenant) as ctx:
        campaign_id = campaigns.create_campaign(ctx, MARCH).id
    mailbox.sent.clear()

    def send(ctx: TenantContext) -> int:
        try:
            return campaigns.send_campaign(ctx, campaign_id).sent
        except Conflict:
            return -1

    with runtime.tenant_context(clik_tenant) as ctx:
        first = send(ctx)
        second = Second(runtime, utcnow(), clik_tenant, send)
    assert (first, second.result()) == (1, -1)  # the second is told it was already sent
    assert [m["To"] for m in mailbox.sent] == ["ada@example.com"]


def test_a_campaign_mail_retried_after_the_person_withdrew_is_cancelled_not_sent(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    ada = subscribe(runtime, clik_tenant, "ada@example.com", "Ada")
    mailbox.sent.clear()
    mailbox.fail_with = smtplib.SMTPServerDisconnected("relay down")
    with runtime.tenant_context(clik_tenant) as ctx:
        campaigns.send_campaign(ctx, campaigns.create_campaign(ctx, MARCH).id)
    assert mailbox.sent == []  # the relay was down: the message waits in the outbox
    # Meanwhile Ada withdraws her newsletter consent in her preference center.
    with runtime.tenant_context(clik_tenant) as ctx:
        assert preferences.withdraw_consent(ctx, ada, "newsletter")
    mailbox.fail_with = None

    report = worker.run_once(runtime)  # the worker's next cycle

    assert mailbox.sent == []
    assert (report.mail_sent, report.mail_cancelled) == (0, 1)
    assert "cancelled 1" in report.summary()  # the worker's log line says so
    with runtime.sessions() as s:
        rows = s.execute(select(OutboxMessage.status, OutboxMessage.last_error)).all()
    assert [tuple(r) for r in rows] == [("cancelled", "no longer allowed")]


def test_two_one_click_unsubscribes_at_once_both_succeed_and_are_audited_once(
    runtime: Runtime, clik_tenant: str
) -> None:
    # The mail provider's one-click POST and the person's own click on the body's link.
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip(ONLY_POSTGRESQL)
    ada = subscribe(runtime, clik_tenant, "ada@example.com", "Ada")

    def opt_out(ctx: TenantContext) -> int:
        return int(preferences.opt_out(ctx, ada, "email", "*", "unsubscribe"))

    with runtime.tenant_context(clik_tenant) as ctx:
        first = opt_out(ctx)
        second = Second(runtime, utcnow(), clik_tenant, opt_out)
    assert (first, second.result()) == (1, 0)  # the second finds it already so, no error
    with runtime.tenant_context(clik_tenant) as ctx:
        assert preferences.opt_outs(ctx, ada) == [preferences.OptOut("email", "*", "unsubscribe")]
        changes = ctx.session.scalars(
            select(AuditEntry.details).where(
                AuditEntry.tenant_id == ctx.tenant_id,
                AuditEntry.event == AuditEvent.PREFERENCE_CHANGED.value,
            )
        ).all()
    assert [c["change"] for c in changes] == ["opted_out"]


def test_the_same_address_suppressed_twice_at_once_is_listed_once_without_error(
    runtime: Runtime, clik_tenant: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip(ONLY_POSTGRESQL)

    def suppress(ctx: TenantContext) -> int:
        return suppression.add_suppression(ctx, "email", "Bounced@Example.com")

    with runtime.tenant_context(clik_tenant) as ctx:
        first = suppress(ctx)
        second = Second(runtime, utcnow(), clik_tenant, suppress)
    assert (first, second.result()) == (1, 0)
    with runtime.tenant_context(clik_tenant) as ctx:
        assert [e.channel for e in suppression.list_suppressions(ctx)] == ["email"]
