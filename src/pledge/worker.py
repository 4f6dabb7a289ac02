"""The scheduled work that keeps promises without anyone pressing a button.

`pledge worker` runs `run_once` every interval (or once, from cron with `--once`). A cycle,
for every tenant, in its own transaction per tenant and step — a failure in one tenant or step
is reported and does not stop the others:

1. notice announcements whose time has come (material changes, advance notice by e-mail);
2. rights requests never verified close themselves with a letter; request records past
   24 months are purged, with their letters, and so are rights letters in the outbox linked
   to no request (a routing letter, those queued before migration 0008); the cached due
   date of a paused request follows the clock (a pause that stops it moves the due date day
   by day, so the queue never calls it overdue);
3. the API's answers kept for an `Idempotency-Key` are forgotten after a day;
   retention periods end (`subjects.retention`, decision 0014): what an erasure kept under
   a class with a period is erased when the period is over (its class key shredded), and
   interactions past the tenant's rule for their category are deleted — each in batches,
   the rest left to the next cycle;
4. the mail outbox is delivered (when the backend delivers; a dead sender's claims are
   released whatever the backend), and messages done with for
   `PLEDGE_MAIL_KEEP_DAYS` (90) are deleted — rights letters stay with their requests;
5. the audit chain's entries since the last checkpoint are verified and the checkpoint in the
   keystore moves to the newest (decision 0005: entries cut from the end are caught up to
   it); a broken chain is reported, and not checkpointed;

and then, across tenants, the webhook deliveries that are due (retries included), and those
about no rights request finished for `PLEDGE_WEBHOOK_KEEP_DAYS` (90) deleted.

Every step is idempotent: running a cycle twice does nothing more the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from pledge.access import idempotency
from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.db import transaction
from pledge.mail import service as mail
from pledge.notices import announcements
from pledge.rights import workflow
from pledge.runtime import Runtime
from pledge.subjects import retention
from pledge.tenants import service as tenants
from pledge.webhooks import service as webhooks

log = logging.getLogger("pledge.worker")

WEBHOOK_LIMIT = 5000  # deliveries attempted per cycle at most
# Per tenant and cycle: a first run on a large vault must not hold SQLite's write lock for
# minutes; what is left is done by the next cycles.
KEPT_PERIOD_LIMIT = 200  # subjects whose kept data's period is over, erased
INTERACTION_RETENTION_LIMIT = 5000  # interactions past their rule's period, deleted


@dataclass
class CycleReport:
    announced: int = 0  # messages queued for announcements
    closed_unverified: int = 0
    purged: int = 0
    paused_due_moved: int = 0  # paused requests whose cached due date moved with the pause
    purged_answers: int = 0  # the API's stored answers to Idempotency-Keys, a day old
    retention_erased: int = 0  # subjects whose kept data's period was over, erased
    interactions_expired: int = 0  # interactions past the tenant's rule, deleted
    # Filled in after each tenant's commit, when the messages were handed to the backend.
    mail_reports: list[mail.DeliveryReport] = field(default_factory=list)
    mail_purged: int = 0  # messages done with for PLEDGE_MAIL_KEEP_DAYS, deleted
    webhooks_purged: int = 0  # deliveries about no request finished for the keep days, deleted
    webhooks_ok: int = 0
    webhooks_failing: int = 0
    audit_broken: list[str] = field(default_factory=list)  # "tenant: first bad entry N"
    errors: list[str] = field(default_factory=list)  # "tenant: step: error class"

    @property
    def mail_sent(self) -> int:
        return sum(r.sent for r in self.mail_reports)

    @property
    def mail_failed(self) -> int:
        return sum(r.failed for r in self.mail_reports)

    @property
    def mail_cancelled(self) -> int:
        """Not sent after all: the person was erased, or the gate no longer allows it."""
        return sum(r.cancelled for r in self.mail_reports)

    def summary(self) -> str:
        return (
            f"announced {self.announced}, closed unverified {self.closed_unverified}, "
            f"purged {self.purged} (and {self.purged_answers} stored API answers), "
            f"due dates of paused requests moved {self.paused_due_moved}, "
            f"kept data erased at the end of its period {self.retention_erased}, "
            f"interactions deleted by age {self.interactions_expired}, "
            f"mail sent {self.mail_sent} (failed {self.mail_failed}, cancelled "
            f"{self.mail_cancelled}, {self.mail_purged} old messages deleted), "
            f"webhooks delivered {self.webhooks_ok} (failing {self.webhooks_failing}, "
            f"{self.webhooks_purged} old deliveries deleted)"
            + (f"; AUDIT CHAIN BROKEN: {', '.join(self.audit_broken)}" if self.audit_broken else "")
            + (f"; errors: {', '.join(self.errors)}" if self.errors else "")
        )


def _announce(ctx: TenantContext, report: CycleReport) -> None:
    report.announced += sum(a.recipients for a in announcements.send_due(ctx))


def _rights(ctx: TenantContext, report: CycleReport) -> None:
    report.closed_unverified += workflow.close_unverified(ctx)
    report.purged += workflow.purge_expired(ctx)


def _paused_due(ctx: TenantContext, report: CycleReport) -> None:
    report.paused_due_moved += workflow.refresh_paused_due(ctx)


def _idempotency(ctx: TenantContext, report: CycleReport) -> None:
    report.purged_answers += idempotency.purge_expired(ctx)


def _kept_periods(ctx: TenantContext, report: CycleReport) -> None:
    report.retention_erased += retention.end_kept_periods(ctx, KEPT_PERIOD_LIMIT)


def _interaction_retention(runtime: Runtime, slug: str, report: CycleReport) -> None:
    # The search reads the tenant's interactions (decision 0014: no index serves it) in a
    # snapshot, holding no write lock; the deletion by id is short.
    with runtime.tenant_context(slug, read_only=True) as ctx:
        found = retention.find_expired_interactions(ctx, INTERACTION_RETENTION_LIMIT)
    if found:
        with runtime.tenant_context(slug) as ctx:
            report.interactions_expired += retention.delete_interactions(ctx, found)


def _mail(ctx: TenantContext, report: CycleReport) -> None:
    # Under the outbox-only backend too: a dead sender's claims are released there.
    report.mail_reports.append(mail.deliver_pending(ctx))


def _mail_retention(ctx: TenantContext, report: CycleReport) -> None:
    keep = timedelta(days=get_settings().mail_keep_days)
    report.mail_purged += mail.purge_done(ctx, utcnow() - keep)


def _audit_checkpoint(ctx: TenantContext, report: CycleReport) -> None:
    # Last, in a transaction of its own that appends nothing: what it anchors is committed.
    outcome = audit.checkpoint(ctx.session, ctx.keystore, ctx.tenant_id, from_checkpoint=True)
    if not outcome.verified.ok:
        # Slug, entry number and reason only: no personal data.
        log.error(
            "audit chain of tenant %s is broken at entry %s: %s; not checkpointed",
            ctx.settings.slug,
            outcome.verified.first_bad_seq,
            outcome.verified.reason,
        )
        report.audit_broken.append(f"{ctx.settings.slug}: entry {outcome.verified.first_bad_seq}")


STEPS: tuple[tuple[str, Callable[[TenantContext, CycleReport], None]], ...] = (
    ("announcements", _announce),
    ("rights", _rights),
    ("paused due dates", _paused_due),
    ("idempotent answers", _idempotency),
    ("retention periods", _kept_periods),
    ("mail", _mail),
    ("mail retention", _mail_retention),
    ("audit checkpoint", _audit_checkpoint),
)


def _in_transaction(
    runtime: Runtime,
    slug: str,
    step: Callable[[TenantContext, CycleReport], None],
    report: CycleReport,
) -> None:
    with runtime.tenant_context(slug) as ctx:
        step(ctx, report)


def _guarded(report: CycleReport, slug: str, name: str, run: Callable[[], None]) -> None:
    try:
        run()
    except Exception as exc:  # one tenant's failure must not stop the others
        # The class only, no traceback: an exception's text may carry personal data.
        log.error("worker step %s failed for tenant %s: %s", name, slug, type(exc).__name__)
        report.errors.append(f"{slug}: {name}: {type(exc).__name__}")


def run_once(runtime: Runtime) -> CycleReport:
    report = CycleReport()
    with transaction(runtime.sessions) as session:
        slugs = [t.slug for t in tenants.list_tenants(session)]
    for slug in slugs:
        for name, step in STEPS:
            _guarded(report, slug, name, partial(_in_transaction, runtime, slug, step, report))
        # Its own transactions: a read snapshot to search, a short one to delete.
        search = partial(_interaction_retention, runtime, slug, report)
        _guarded(report, slug, "interaction retention", search)
    try:
        ok, failing = webhooks.deliver(runtime.sessions, runtime.keystore, limit=WEBHOOK_LIMIT)
        report.webhooks_ok += ok
        report.webhooks_failing += failing
        # After the posts (a retention failing must not hold them up), in the same step: the
        # deliveries are one queue across tenants.
        keep = timedelta(days=get_settings().webhook_keep_days)
        report.webhooks_purged += webhooks.purge_done(runtime.sessions, utcnow() - keep)
    except Exception as exc:  # reported like a tenant's step: the next cycle tries again
        log.error("worker step webhooks failed: %s", type(exc).__name__)
        report.errors.append(f"webhooks: {type(exc).__name__}")
    return report
