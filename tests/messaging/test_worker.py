"""The worker: the scheduled promises are kept without anyone pressing a button, once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text, update
from typer.testing import CliRunner

from pledge import worker
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.cli.main import app
from pledge.core.clock import frozen, utcnow
from pledge.mail import reading as mail_reading
from pledge.mail import service as mail
from pledge.mail.backends import MemoryBackend
from pledge.notices import service as notices
from pledge.rights import service as rights
from pledge.rights import verification, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.webhooks import service as webhooks
from tests.messaging.conftest import subscribe
from tests.rights.test_api_and_webhooks import Receiver


def test_one_cycle_announces_closes_unverified_and_mails_then_does_nothing_more(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    start = utcnow()
    subscribe(runtime, clik_tenant, "reader@example.com", "Rita")
    with runtime.tenant_context(clik_tenant) as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester("asker@example.com"), "EU"))
        verification.begin(ctx, request)
        request_id = request.id
        notices.publish_version(
            ctx,
            "privacy",
            text="We now keep call recordings for 90 days.",
            effective_at=start + timedelta(days=30),
            summary="Call recordings are kept longer.",
            material=True,
        )
    mailbox.sent.clear()

    with frozen(start + timedelta(days=31)):
        report = worker.run_once(runtime)
        again = worker.run_once(runtime)
    assert report.errors == [] and report.closed_unverified == 1 and report.announced >= 1
    with runtime.tenant_context(clik_tenant) as ctx:
        assert rights.get_request(ctx, request_id).state == "closed_unverified"
    sent = {str(m["To"]): str(m["Subject"]) for m in mailbox.sent}
    assert "reader@example.com" in sent  # the announcement of the material change
    assert "asker@example.com" in sent  # the letter saying why the request was closed
    assert (again.announced, again.closed_unverified, again.errors) == (0, 0, [])
    assert len(mailbox.sent) == len(sent)  # nothing was sent twice


def test_the_worker_command_runs_one_cycle(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str]
) -> None:
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "closed unverified 0" in result.output and "errors" not in result.output


def test_messages_done_with_leave_the_outbox_after_the_keep_days_but_rights_letters_stay(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    start = utcnow()
    with runtime.tenant_context(clik_tenant) as ctx:
        for n in range(3):  # sent at once by the memory backend
            mail.queue(ctx, to=f"n{n}@example.com", subject_line="Hello", text="A note.")
        # The acknowledgement and the verification code: rights letters.
        workflow.receive(ctx, RequestInput("access", Requester("asker@example.com"), "EU"))
    with runtime.tenant_context(clik_tenant) as ctx:
        before = {m.id: m.kind for m in mail_reading.list_messages(ctx)}
        assert {m.status for m in mail_reading.list_messages(ctx)} == {"sent"}
    assert list(before.values()).count("notification") == 3 and "rights_letter" in before.values()

    with frozen(start + timedelta(days=89)):
        assert worker.run_once(runtime).mail_purged == 0  # not yet
    with frozen(start + timedelta(days=91)):
        report = worker.run_once(runtime)
        again = worker.run_once(runtime)
    old_notes = [i for i, kind in before.items() if kind != "rights_letter"]
    assert report.errors == [] and report.mail_purged == len(old_notes) and again.mail_purged == 0
    with runtime.tenant_context(clik_tenant) as ctx:
        left = {m.id: m.kind for m in mail_reading.list_messages(ctx)}
        # The rights letters stay with their request (24 months after it closes); the
        # letter closing the unverified request, written at day 91, is there too.
        assert {i for i, k in before.items() if k == "rights_letter"} <= set(left)
        assert not set(old_notes) & set(left)
        entries = audit.list_entries(ctx, limit=1000)
        purged = [e.details for e in entries if e.event == AuditEvent.MAIL_PURGED.value]
        assert [d["messages"] for d in purged] == [len(old_notes)]


def test_a_failing_webhook_step_is_reported_like_any_other_and_ends_nothing_else(
    runtime: Runtime, clik_tenant: str
) -> None:
    # The deliveries' table unreadable (a botched migration, a lost grant): the cycle says so
    # in its report instead of ending with the error after the tenants' steps.
    with runtime.engine.begin() as conn:
        conn.execute(text("ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_gone"))
    try:
        report = worker.run_once(runtime)
    finally:
        with runtime.engine.begin() as conn:
            conn.execute(text("ALTER TABLE webhook_deliveries_gone RENAME TO webhook_deliveries"))
    assert len(report.errors) == 1 and report.errors[0].startswith("webhooks: ")
    assert "errors: webhooks: " in report.summary()


def test_the_worker_command_exits_non_zero_on_a_broken_audit_chain(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str]
) -> None:
    # Run from cron, the exit status is what raises the alarm.
    with runtime.tenant_context(clik_tenant) as ctx:
        ctx.session.execute(
            update(AuditEntry)
            .where(AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq == 1)
            .values(details={"forged": True})
        )
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 1
    assert f"AUDIT CHAIN BROKEN: {clik_tenant}: entry 1" in " ".join(result.output.split())


def test_a_failed_webhook_is_posted_by_the_cycle_after_its_retry_time(
    runtime: Runtime, tenant: str, private_targets: None
) -> None:
    with Receiver() as receiver:
        receiver.status = 503
        with runtime.tenant_context(tenant) as ctx:
            webhooks.add_endpoint(ctx, receiver.url, ["*"])
            webhooks.emit(ctx, "request.state_changed", {"x": 1})
        receiver.status = 200
        with frozen(utcnow() + timedelta(seconds=30)):
            early = worker.run_once(runtime)
        with frozen(utcnow() + timedelta(minutes=2)):
            due = worker.run_once(runtime)
    assert (early.webhooks_ok, due.webhooks_ok, due.webhooks_failing) == (0, 1, 0)
    assert [r["headers"]["Pledge-Event"] for r in receiver.received] == [
        "request.state_changed",  # the 503 right after the commit
        "request.state_changed",  # the retry
    ]
