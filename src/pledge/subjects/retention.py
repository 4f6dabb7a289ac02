"""Retention periods that end (DESIGN.md §3 item 10; docs/decisions/0014).

Two kinds, both the tenant's settings, both ended by the worker:

* a retention class's period (`keep_for` in the tenant's `retention_classes`): data an erasure
  kept under a legal duty (1CRM: billing, 7 years — seed 001 §12) is erased when the period,
  counted from that erasure, is over: its class key is shredded, so every copy goes with it;
* an interaction rule (the tenant's `interaction_retention`): interactions of a category
  (and, if given, of a kind) are deleted a period after they occurred (Clik: call recordings,
  12 months — seed 004). An interaction is sealed under its subject's key, so its rows are
  deleted; a backup taken before keeps a readable copy until the subject's erasure.

Periods are counted as the rights clock counts: a month to the same date (the last day of a
shorter month), a year as twelve months.

Neither touches a restricted person's data (GDPR Art. 18(2): restricted data is only
stored; they may have asked it kept for their legal claims, Art. 18(1)(c)): the first cycle
after the restriction is lifted finds the period over and ends it.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, exists, select

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.service import PendingEntry
from pledge.consent import privacy_state
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.rights.clock import Duration, add_months
from pledge.subjects import erasure
from pledge.subjects.models import (
    STANDARD_CLASS,
    Interaction,
    InteractionKind,
    Subject,
    SubjectRecord,
    SubjectStatus,
)

_PERIOD = re.compile(r"^\s*(\d+)\s*(years?|months?|days?)\s*$", re.IGNORECASE)
MAX_YEARS: Final = 100  # a longer period is a typo, and past the calendar's end
PERIOD_OVER: Final = "retention period over"
# add_months ends a month on its last day when the date does not exist (31 → 28): a start
# up to 3 days later than the period counted back from now may have ended already.
_MONTH_SLACK: Final = timedelta(days=3)
_CHUNK: Final = 500  # ids bound in one IN (…)


@dataclass(frozen=True)
class Period:
    """How long something is kept: years, months or days."""

    amount: int
    unit: str  # "years" | "months" | "days"

    @staticmethod
    def parse(text: str) -> Period:
        """'7 years', '12 months', '30 days' (or '1 year'…), between a day and a century."""
        m = _PERIOD.match(text or "")
        if not m:
            raise InvalidInput(
                f"not a period: {text[:40]!r} (use '<n> years', '<n> months' or '<n> days')"
            )
        amount, unit = int(m.group(1)), m.group(2).lower().rstrip("s") + "s"
        if amount < 1:
            raise InvalidInput("a period of at least 1 day")
        # Months and days as the rights clock counts them; a year is twelve of its months.
        as_clock = Duration.parse(
            f"{amount * 12} months" if unit == "years" else f"{amount} {unit}"
        )
        assert as_clock is not None  # a non-empty text
        limit = {"years": MAX_YEARS, "months": MAX_YEARS * 12, "days": MAX_YEARS * 366}[unit]
        if amount > limit:
            raise InvalidInput(f"a period of at most {MAX_YEARS} years")
        return Period(amount, unit)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit[:-1] if self.amount == 1 else self.unit}"

    def after(self, start: datetime) -> datetime:
        """When the period that starts at `start` is over."""
        if self.unit == "days":
            return start + timedelta(days=self.amount)
        months = self.amount * 12 if self.unit == "years" else self.amount
        return datetime.combine(add_months(start.date(), months), start.timetz())

    def started_by(self, now: datetime) -> datetime:
        """A moment at or after the start of every period over by `now` (a query's bound;
        `after` decides)."""
        if self.unit == "days":
            return now - timedelta(days=self.amount)
        months = self.amount * 12 if self.unit == "years" else self.amount
        return datetime.combine(add_months(now.date(), -months), now.timetz()) + _MONTH_SLACK


def class_periods(retention_classes: Mapping[str, Any]) -> dict[str, Period]:
    """The tenant's classes with a period: class → how long an erasure keeps it."""
    return {
        name: Period.parse(str(cls["keep_for"]))
        for name, cls in retention_classes.items()
        if isinstance(cls, dict) and cls.get("keep_for")
    }


@dataclass(frozen=True)
class InteractionRule:
    """Interactions of `category` (of `kind` only, if given) are deleted `keep` after they
    occurred. A rule for a kind wins over its category's rule for every kind."""

    category: str
    kind: str | None
    keep: Period

    def describe(self) -> str:
        what = f"{self.category} ({self.kind})" if self.kind else self.category
        return f"interactions of category {what}"

    def as_json(self) -> dict[str, Any]:
        return {"category": self.category, "kind": self.kind, "keep": str(self.keep)}


def interaction_rules(stored: Iterable[Mapping[str, Any]] | None) -> list[InteractionRule]:
    """The tenant's interaction rules (its `interaction_retention` column)."""
    return [
        InteractionRule(str(r["category"]), r.get("kind") or None, Period.parse(str(r["keep"])))
        for r in stored or ()
    ]


def kept_until(
    ctx: TenantContext, subject_id: uuid.UUID, classes: Iterable[str]
) -> dict[str, datetime]:
    """Of `classes` (kept by the subject's erasure), those with a period: class → when it
    ends (counted from the erasure that kept them)."""
    periods = class_periods(ctx.settings.retention_classes)
    erased_at = ctx.session.scalar(
        select(Subject.erased_at).where(
            Subject.tenant_id == ctx.tenant_id, Subject.id == subject_id
        )
    )
    if erased_at is None:
        return {}
    return {c: periods[c].after(erased_at) for c in classes if c in periods}


def _holding(ctx: TenantContext, subject_id: uuid.UUID) -> set[str]:
    tid = ctx.tenant_id
    return set(
        ctx.session.scalars(
            select(SubjectRecord.key_class)
            .where(SubjectRecord.tenant_id == tid, SubjectRecord.subject_id == subject_id)
            .union(
                select(Interaction.key_class).where(
                    Interaction.tenant_id == tid, Interaction.subject_id == subject_id
                )
            )
        )
    )


def end_kept_periods(ctx: TenantContext, limit: int) -> int:
    """Erase what an erasure kept once its class's period is over: the class keys are
    shredded (every copy, backups included, becomes unreadable) and the rows deleted; other
    kept classes stay. At most `limit` subjects, the longest over first; the rest wait for
    the next call. Audited per subject as an erasure for "retention period over". How many
    subjects were erased."""
    periods = class_periods(ctx.settings.retention_classes)
    if not periods:
        return 0
    now, tid = utcnow(), ctx.tenant_id
    due: dict[uuid.UUID, datetime] = {}
    for name, period in sorted(periods.items()):
        holds = exists().where(
            SubjectRecord.tenant_id == tid,
            SubjectRecord.subject_id == Subject.id,
            SubjectRecord.key_class == name,
        ) | exists().where(
            Interaction.tenant_id == tid,
            Interaction.subject_id == Subject.id,
            Interaction.key_class == name,
        )
        rows = ctx.session.execute(
            select(Subject.id, Subject.erased_at)
            .where(
                Subject.tenant_id == tid,
                Subject.status == SubjectStatus.PARTIALLY_ERASED.value,
                # Art. 18: a restricted person's kept data waits for the restriction's end.
                Subject.restricted_at.is_(None),
                Subject.erased_at <= period.started_by(now),
                holds,
            )
            .order_by(Subject.erased_at, Subject.id)
            .limit(limit)
        )
        for sid, erased_at in rows:
            if erased_at is not None and period.after(erased_at) <= now:
                due[sid] = erased_at
    erased = 0
    known = {STANDARD_CLASS, *ctx.settings.retention_classes.keys()}
    chosen = sorted(due, key=lambda s: (due[s], s))[:limit]
    # All held before the first erasure is audited: a person's row comes before the audit
    # chain's head (decision 0005).
    privacy_state.hold_people(ctx, chosen)
    for sid in chosen:
        erased_at = due[sid]
        holding = _holding(ctx, sid)
        over = {c for c in holding if c in periods and periods[c].after(erased_at) <= now}
        if not over:
            continue
        # The grounds read again under the row's lock (adding one takes the same lock): a
        # restriction committed since the query above is not shredded under.
        if privacy_state.held_restriction_grounds(ctx, sid):
            continue
        # The classes whose period runs on (or that staff hold with none) stay as they are.
        erasure.erase_subject(
            ctx,
            sid,
            keep_classes=sorted((holding - over) & known),
            erase_exempt=True,
            reason=PERIOD_OVER,
        )
        erased += 1
    return erased


def _kinds_for(rule: InteractionRule, rules: list[InteractionRule]) -> list[str]:
    """The kinds `rule` deletes: its own, or for a category-wide rule every kind without a
    rule of its own in that category."""
    if rule.kind:
        return [rule.kind]
    own = {r.kind for r in rules if r.category == rule.category and r.kind}
    return [k.value for k in InteractionKind if k.value not in own]


@dataclass(frozen=True)
class Expired:
    """An interaction past its rule's period, found by `find_expired_interactions`."""

    interaction_id: uuid.UUID
    subject_id: uuid.UUID
    category: str
    kind: str
    keep: str


def find_expired_interactions(ctx: TenantContext, limit: int) -> list[Expired]:
    """The interactions past their rule's period, at most `limit`, the oldest first (the
    rest wait for the next cycle). Only reads: the worker runs it in a read snapshot
    (`Runtime.tenant_context(read_only=True)`), so the search holds no write lock.

    No index serves it: an index by category and time would place each subject's rows all
    over it, and every erasure of a person with many interactions would rewrite pages
    across the whole index (measured: 10,000 interactions erased in 0.25 s with one, 0.08 s
    without). The search reads the tenant's interactions instead, out of the writers' way."""
    rules = interaction_rules(ctx.settings.interaction_retention)
    if not rules:
        return []
    now, tid = utcnow(), ctx.tenant_id
    found: list[Expired] = []
    for rule in rules:
        cutoff = rule.keep.started_by(now)
        for kind in _kinds_for(rule, rules):
            if len(found) >= limit:
                return found
            rows = ctx.session.execute(
                select(Interaction.id, Interaction.subject_id, Interaction.occurred_at)
                .where(
                    Interaction.tenant_id == tid,
                    Interaction.category == rule.category,
                    Interaction.kind == kind,
                    Interaction.occurred_at <= cutoff,
                    # In the query, not after it: a restricted person's rows must not fill
                    # the batch and stall everyone else's (checked again as they go).
                    ~exists().where(
                        Subject.tenant_id == tid,
                        Subject.id == Interaction.subject_id,
                        Subject.restricted_at.is_not(None),
                    ),
                )
                .order_by(Interaction.occurred_at, Interaction.id)
                .limit(limit - len(found))
            )
            found += [
                Expired(iid, sid, rule.category, kind, str(rule.keep))
                for iid, sid, occurred in rows
                if rule.keep.after(occurred) <= now
            ]
    return found


def delete_interactions(ctx: TenantContext, expired: list[Expired]) -> int:
    """Delete what `find_expired_interactions` found, in a write transaction: by primary
    key, those still there whose person is not restricted now (a restriction or an erasure
    may have come since the search). Audited per subject and rule with the count, no
    content. How many."""
    if not expired:
        return 0
    tid = ctx.tenant_id
    subject_ids = sorted({e.subject_id for e in expired})
    restricted: set[uuid.UUID] = set()
    present: set[uuid.UUID] = set()
    for i in range(0, len(subject_ids), _CHUNK):
        restricted.update(
            ctx.session.scalars(
                select(Subject.id).where(
                    Subject.tenant_id == tid,
                    Subject.id.in_(subject_ids[i : i + _CHUNK]),
                    Subject.restricted_at.is_not(None),
                )
            )
        )
    wanted = [e for e in expired if e.subject_id not in restricted]
    ids = [e.interaction_id for e in wanted]
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        present.update(
            ctx.session.scalars(
                select(Interaction.id).where(
                    Interaction.tenant_id == tid, Interaction.id.in_(chunk)
                )
            )
        )
        ctx.session.execute(
            delete(Interaction).where(Interaction.tenant_id == tid, Interaction.id.in_(chunk))
        )
    gone = [e for e in wanted if e.interaction_id in present]
    counts = Counter((e.subject_id, e.category, e.kind, e.keep) for e in gone)
    audit.record_many(
        ctx,
        [
            PendingEntry(
                AuditEvent.INTERACTIONS_EXPIRED,
                sid,
                {
                    "deleted": count,
                    "category": category,
                    "kind": kind,
                    "keep": keep,
                    "reason": PERIOD_OVER,
                },
            )
            for (sid, category, kind, keep), count in sorted(counts.items())
        ],
    )
    return len(gone)


def delete_expired_interactions(ctx: TenantContext, limit: int) -> int:
    """Find and delete the interactions past their rule's period in one transaction (at most
    `limit`); the worker splits the two (`find_expired_interactions` in a read snapshot).
    How many."""
    return delete_interactions(ctx, find_expired_interactions(ctx, limit))
