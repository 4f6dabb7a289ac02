"""Privacy state the gate reads: the subject's own flags, each changed through its rule.

GDPR Art. 18 restriction grounds, the CCPA opt-out of sale/sharing and limit on sensitive
data, a child and their parent's consent; and the whole state (`privacy_state`) as the gate
reads it. Every change writes its audit entry; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.models import ConsentState, Objection, SubjectPurpose
from pledge.consent.service import active_subject
from pledge.core.clock import utcnow
from pledge.core.db import transaction_memo
from pledge.core.errors import InvalidInput, SubjectErased
from pledge.purposes.models import Purpose
from pledge.subjects import service as subjects
from pledge.subjects.models import Subject, SubjectStatus
from pledge.tenants.models import ChildrenPolicy
from pledge.webhooks import service as webhooks

# GDPR Art. 18 grounds, kept with the subject (`Subject.restriction_grounds`): one set through
# the privacy-state API; a restriction the person asked for (Art. 18(1)(b)-(d)), in force
# until staff lift it from that request, the person told first (Art. 18(3)); a correction
# being checked (Art. 18(1)(a)), until it is decided, refused or withdrawn. Each is lifted
# only from where it was set, so none lifts, absorbs or hides another.
API_GROUND = "api"
REQUEST_GROUND = "request"
ACCURACY_GROUND = "accuracy"


def request_ground(request_id: uuid.UUID) -> str:
    return f"{REQUEST_GROUND}:{request_id}"


def accuracy_ground(request_id: uuid.UUID) -> str:
    return f"{ACCURACY_GROUND}:{request_id}"


def parse_ground(ground: str) -> tuple[str, uuid.UUID | None]:
    """A stored ground as (kind, the request it was set from, if any)."""
    kind, _, request_id = ground.partition(":")
    return kind, uuid.UUID(request_id) if request_id else None


def _locked(ctx: TenantContext, subject: Subject) -> Subject:
    """The subject's row read again and locked to the end of the transaction (PostgreSQL;
    SQLite's writers take turns): a ground added or ended while another transaction changes
    the grounds waits for it and changes what it left, never a copy read before. Taken
    before the change is audited: the person's row comes before the audit chain's head
    (`hold_person`)."""
    row = ctx.session.scalars(
        for_tenant(select(Subject), Subject, ctx.tenant_id)
        .where(Subject.id == subject.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    transaction_memo(ctx.session)[(_PERSON_HELD, ctx.tenant_id, row.id)] = True
    return row


_PERSON_HELD = "person-row-held"


def hold_person(ctx: TenantContext, subject_id: uuid.UUID | str) -> None:
    """The person's row, locked to the end of the transaction and read again, before anything
    about them is audited or written. The lock order on PostgreSQL is the tenant row, request
    rows, the person's row, then the audit chain's head (decisions 0005, 0010): a change of
    the privacy state locks the person, then audits itself, and an erasure or a correction
    that audited first and then wrote the person waited for that change as it waited for
    them (a deadlock). FOR UPDATE, as the privacy state's lock: a row inserted that refers
    to the person (a consent, an objection) takes FOR KEY SHARE of it, which waits for that
    lock — so the person is held before such a row is written, too. Once per transaction;
    nothing on SQLite, whose writers take turns. NotFound for no such subject."""
    if ctx.session.get_bind().dialect.name == "sqlite":
        return
    subject = subjects.get_subject_row(ctx, subject_id)
    if (_PERSON_HELD, ctx.tenant_id, subject.id) not in transaction_memo(ctx.session):
        _locked(ctx, subject)


def hold_people(ctx: TenantContext, subject_ids: Iterable[uuid.UUID]) -> None:
    """`hold_person` for several people written in one transaction (a bulk erasure), all
    before the first of them is audited, in the order of their ids: two transactions holding
    some of the same people wait for each other's end, never each for a row the other holds.
    Ids that are not the tenant's subjects are left out."""
    if ctx.session.get_bind().dialect.name == "sqlite":
        return
    memo = transaction_memo(ctx.session)
    wanted = sorted({i for i in subject_ids if (_PERSON_HELD, ctx.tenant_id, i) not in memo})
    for start in range(0, len(wanted), _HOLD_CHUNK):
        rows = ctx.session.scalars(
            for_tenant(select(Subject), Subject, ctx.tenant_id)
            .where(Subject.id.in_(wanted[start : start + _HOLD_CHUNK]))
            .order_by(Subject.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        memo.update({(_PERSON_HELD, ctx.tenant_id, row.id): True for row in rows})


_HOLD_CHUNK = 500


def held_restriction_grounds(ctx: TenantContext, subject_id: uuid.UUID | str) -> list[str]:
    """The subject's grounds, its row locked to the end of the transaction: what is decided
    on them (a lift and its letter) is not decided twice at once."""
    return list(_locked(ctx, subjects.get_subject_row(ctx, subject_id)).restriction_grounds)


def add_restriction_ground(
    ctx: TenantContext, subject_id: uuid.UUID | str, ground: str, source: str
) -> Subject:
    """GDPR Art. 18: restrict the subject on `ground`; while any ground holds, the gate denies
    every use but storage. Each ground added is audited (the first sets the flag)."""
    # Erased is read under the lock: an erasure committed meanwhile ended every ground, and
    # one added after it would be left behind.
    subject = _locked(ctx, subjects.get_subject_row(ctx, subject_id))
    if subject.status == SubjectStatus.ERASED.value:
        raise SubjectErased("this subject has been erased")
    if ground in subject.restriction_grounds:
        return subject
    subject.restriction_grounds = [*subject.restriction_grounds, ground]
    if subject.restricted_at is None:
        subject.restricted_at = utcnow()
        _state_changed(ctx, subject, "restricted", source, ground)
    else:
        _state_changed(ctx, subject, "restriction_ground_added", source, ground)
    return subject


def remove_restriction_ground(
    ctx: TenantContext, subject_id: uuid.UUID | str, ground: str, source: str
) -> bool:
    """End `ground` only; the restriction is lifted when no other holds. Whether it was
    lifted. An erased subject's ground ends too (nothing to restrict is left; a ground
    left behind would keep its request from the purge)."""
    return _end_ground(ctx, _locked(ctx, subjects.get_subject_row(ctx, subject_id)), ground, source)


def _end_ground(ctx: TenantContext, subject: Subject, ground: str, source: str) -> bool:
    """`remove_restriction_ground` on a row already locked."""
    if ground not in subject.restriction_grounds:
        return False
    subject.restriction_grounds = [g for g in subject.restriction_grounds if g != ground]
    if subject.restriction_grounds or subject.restricted_at is None:
        _state_changed(ctx, subject, "restriction_ground_removed", source, ground)
        return False
    subject.restricted_at = None
    _state_changed(ctx, subject, "restriction_lifted", source, ground)
    return True


def end_restriction_grounds(ctx: TenantContext, subject_id: uuid.UUID | str, source: str) -> None:
    """End every ground the subject holds, each audited (the last lifts the flag): an erasure
    that left nothing of the person (nothing to restrict; a ground left behind would keep its
    request from the purge, with nobody to lift it for)."""
    subject = _locked(ctx, subjects.get_subject_row(ctx, subject_id))
    for ground in list(subject.restriction_grounds):
        _end_ground(ctx, subject, ground, source)


def set_restriction(
    ctx: TenantContext, subject_id: uuid.UUID | str, restricted: bool, source: str
) -> Subject:
    """The restriction set through the privacy-state API: its own ground (`API_GROUND`),
    added or ended; the others are lifted only where they were set."""
    if restricted:
        return add_restriction_ground(ctx, subject_id, API_GROUND, source)
    remove_restriction_ground(ctx, subject_id, API_GROUND, source)
    return subjects.get_subject_row(ctx, subject_id)


# The sources of an opt-out of sale that a browser sent rather than the person chose.
BROWSER_SIGNALS = frozenset({"gpc", "dnt"})


def sale_opt_out_change(subject: Subject, opted_out: bool, source: str) -> str | None:
    """Apply a CCPA opt-out of sale/sharing (or its reversal) to the subject's row; the
    change to record, or None when nothing changed. An explicit choice beats a browser signal
    (GPC, or DNT under a tenant's `opt_out` policy), a signal beats the default: a signal
    never overrides an explicit opt-in (STANDARDS.md, GPC precedence). An opt-in is one only
    from an opt-out: for a person not opted out, nothing changes."""
    if opted_out:
        if subject.sale_opt_out_at is not None:
            return None
        if source in BROWSER_SIGNALS and subject.sale_opt_out_source == "explicit_opt_in":
            return None
        subject.sale_opt_out_at = utcnow()
        subject.sale_opt_out_source = source
        return "sale_opted_out"
    if subject.sale_opt_out_at is None:
        # Not opted out: an "opt-in" changes nothing, and recording it as the person's choice
        # would make every later GPC signal lose to a default nobody chose.
        return None
    subject.sale_opt_out_at = None
    subject.sale_opt_out_source = "explicit_opt_in"
    return "sale_opted_in"


def limit_sensitive_change(subject: Subject, limited: bool) -> str | None:
    """Apply "limit the use of my sensitive personal information" (CCPA) or its end to the
    subject's row; the change to record, or None."""
    if limited == (subject.limit_sensitive_at is not None):
        return None
    subject.limit_sensitive_at = utcnow() if limited else None
    return "sensitive_limited" if limited else "sensitive_unlimited"


def set_sale_opt_out(
    ctx: TenantContext, subject_id: uuid.UUID | str, opted_out: bool, source: str
) -> Subject:
    """CCPA opt-out of sale/sharing (`sale_opt_out_change`), audited; the integrator's
    webhook (`subject.sale_opted_out` / `subject.sale_opted_in`) hears of a change after
    the commit, by id only."""
    subject = active_subject(ctx, subject_id)
    change = sale_opt_out_change(subject, opted_out, source)
    if change is not None:
        _state_changed(ctx, subject, change, source)
        announce_sale_change(ctx, subject, change, source)
    return subject


def announce_sale_change(ctx: TenantContext, subject: Subject, change: str, source: str) -> None:
    """The integrator's webhook hears of a sale opt-out or opt-in, by id only, after commit."""
    webhooks.emit(
        ctx,
        f"subject.{change}",
        {"subject_id": str(subject.id), "source": source[:60], "at": utcnow().isoformat()},
    )


def set_limit_sensitive(
    ctx: TenantContext, subject_id: uuid.UUID | str, limited: bool, source: str
) -> Subject:
    subject = active_subject(ctx, subject_id)
    change = limit_sensitive_change(subject, limited)
    if change is not None:
        _state_changed(ctx, subject, change, source)
    return subject


def set_child(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    *,
    is_child: bool,
    parental_consent: bool,
    source: str | None = None,
) -> Subject:
    """Mark the subject a child (with or without a parent's consent) or an adult, audited.
    Under the tenant's `erase_on_discovery` policy a child without a parent's consent is
    erased at once, in this transaction (seed 000: "take immediate steps to delete"; seed
    003: "delete all the personal information as quickly as possible"); the retention
    classes kept on every erasure stay kept, as ever. `source`: where the knowledge came
    from (the audit's; by default whether a parent consented, as before)."""
    subject = active_subject(ctx, subject_id)
    subject.is_child = is_child
    subject.parental_consent_at = utcnow() if (is_child and parental_consent) else None
    if source is None:
        source = "parental_consent" if parental_consent else ""
    _state_changed(ctx, subject, "child" if is_child else "adult", source)
    if (
        is_child
        and not parental_consent
        and ctx.settings.children_policy == ChildrenPolicy.ERASE_ON_DISCOVERY.value
    ):
        # Imported here: erasure ends restriction grounds through this module.
        from pledge.subjects import erasure

        _state_changed(
            ctx, subject, "erased_as_child", f"children_policy:{ChildrenPolicy.ERASE_ON_DISCOVERY}"
        )
        erasure.erase_subject(ctx, subject.id)
    return subject


def child_by_birth_date(ctx: TenantContext, subject_id: uuid.UUID, value: str) -> bool:
    """A date of birth was stored for the subject: under the tenant's `child_age` the
    subject is marked a child without a parent's consent (`set_child`: audited, and the
    children's policy applies — it may erase them). Whether it marked them.

    Only ever sets the flag. A child already marked keeps a parent's consent; a date showing
    an adult lifts nothing, and nobody is unmarked on coming of age (no sweep): staff lift
    the flag through the privacy state, as they set one they learnt of. A date that is not
    an ISO date (YYYY-MM-DD), or in the future, is stored as given and changes nothing: the
    age is guessed from nothing, and a guess could erase someone."""
    if not subjects.birth_date_under(value, ctx.settings.child_age, utcnow().date()):
        return False
    subject = subjects.get_subject_row(ctx, subject_id)
    if subject.status != SubjectStatus.ACTIVE.value or subject.is_child:
        return False
    set_child(ctx, subject.id, is_child=True, parental_consent=False, source="date_of_birth")
    return True


def update_privacy_state(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    *,
    restricted: bool | None = None,
    sale_opt_out: bool | None = None,
    limit_sensitive: bool | None = None,
    is_child: bool | None = None,
    parental_consent: bool | None = None,
    source: str = "api",
) -> Subject:
    """Change any of the flags the gate reads, each through its own rule and audit entry;
    a flag left as None is left as it is. The person is held first (`hold_person`): a
    change audited before a later one writes or erases them (a child erased on discovery)
    would otherwise take their row after the audit chain's head."""
    hold_person(ctx, subject_id)
    subject = active_subject(ctx, subject_id)
    if restricted is not None:
        set_restriction(ctx, subject.id, restricted, source)
    if sale_opt_out is not None:
        set_sale_opt_out(ctx, subject.id, sale_opt_out, source)
    if limit_sensitive is not None:
        set_limit_sensitive(ctx, subject.id, limit_sensitive, source)
    if is_child is not None or parental_consent is not None:
        child = subject.is_child if is_child is None else is_child
        # Left out, the parental consent stays only while the person stays a child: marked
        # adult with `is_child` alone, it ends (it applies only to a child).
        parent = (
            child and subject.parental_consent_at is not None
            if parental_consent is None
            else parental_consent
        )
        if parent and not child:
            raise InvalidInput("parental consent applies only to a child")
        if child != subject.is_child or parent != (subject.parental_consent_at is not None):
            set_child(ctx, subject.id, is_child=child, parental_consent=parent)
    return subject


@dataclass(frozen=True)
class PrivacyState:
    subject: Subject
    consents: list[tuple[Purpose, bool]]  # purposes with a consent state, granted or not
    relationships: list[tuple[Purpose, SubjectPurpose]]
    objections: list[tuple[Purpose, Objection]]


def privacy_state(
    ctx: TenantContext, subject_id: uuid.UUID | str, *, audited: bool = True
) -> PrivacyState:
    """What the gate reads about a subject: its flags, consents, relationships, objections."""
    subject = subjects.get_subject_row(ctx, subject_id)

    def on(model: type[ConsentState | SubjectPurpose | Objection]) -> ColumnElement[bool]:
        return (model.tenant_id == Purpose.tenant_id) & (model.purpose_id == Purpose.id)

    base = for_tenant(select(Purpose), Purpose, ctx.tenant_id).order_by(Purpose.slug)
    consents = ctx.session.execute(
        base.add_columns(ConsentState.granted)
        .join(ConsentState, on(ConsentState))
        .where(ConsentState.subject_id == subject.id)
    ).all()
    links = ctx.session.execute(
        base.add_columns(SubjectPurpose)
        .join(SubjectPurpose, on(SubjectPurpose))
        .where(SubjectPurpose.subject_id == subject.id)
    ).all()
    objections = ctx.session.execute(
        base.add_columns(Objection)
        .join(Objection, on(Objection))
        .where(Objection.subject_id == subject.id)
    ).all()
    state = PrivacyState(
        subject,
        [(p, bool(g)) for p, g in consents],
        [(p, r) for p, r in links],
        [(p, o) for p, o in objections],
    )
    if audited:
        audit.record(
            ctx,
            AuditEvent.SUBJECT_VIEWED,
            subject_id=subject.id,
            details={"part": "privacy_state"},
        )
    return state


def state_change_entry(
    subject: Subject, change: str, source: str, ground: str | None = None
) -> audit.PendingEntry:
    """Mark the subject's row changed; the audit entry saying how, for the caller to record.
    `ground`: the restriction ground a restriction change is about (no personal data)."""
    subject.updated_at = utcnow()
    details = {"change": change, "source": source[:60]}
    if ground is not None:
        details["ground"] = ground
    return audit.PendingEntry(AuditEvent.PRIVACY_STATE_CHANGED, subject.id, details)


def _state_changed(
    ctx: TenantContext, subject: Subject, change: str, source: str, ground: str | None = None
) -> None:
    audit.record_many(ctx, [state_change_entry(subject, change, source, ground)])
