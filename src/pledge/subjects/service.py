"""Rules of the subject vault. Every change of personal data goes through a function here,
which writes its audit entry in the caller's transaction. Nothing here commits.

Validating, creating and changing subjects and adding their interactions; reading them back
decrypted (views, look-ups, listings, the export) is in `reading`.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.db import bulk_insert, flush_changes_to
from pledge.core.errors import Conflict, InvalidInput, SubjectErased
from pledge.core.ids import new_id
from pledge.crypto.aead import seal, unseal
from pledge.crypto.keystore import KeyMissing, KeyShredded
from pledge.subjects.categories import check_category
from pledge.subjects.identity import (
    IDENTITY_FIELDS,
    IdentityKind,
    InvalidIdentity,
    normalise,
)
from pledge.subjects.models import (
    STANDARD_CLASS,
    DataSource,
    Interaction,
    InteractionKind,
    Subject,
    SubjectIdentity,
    SubjectRecord,
    SubjectStatus,
)
from pledge.subjects.vault import (
    IdentityIndexer,
    StoredField,
    note_aad,
    open_record,
    seal_payload,
    seal_record,
)
from pledge.tenants.models import ChildrenPolicy

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_VALUE_CHARS = 10_000
# The category of a date of birth (data/categories.json): the age a child is known by.
DATE_OF_BIRTH = "user.demographic.date_of_birth"
_FIELD_BY_KIND = {kind: name for kind, (name, _cat) in IDENTITY_FIELDS.items()}
_KIND_BY_FIELD = {name: kind for kind, name in _FIELD_BY_KIND.items()}


@dataclass(frozen=True)
class FieldInput:
    name: str
    value: str
    category: str | None = None
    source: str = DataSource.DIRECT.value
    retention_class: str = STANDARD_CLASS


@dataclass
class PreparedSubject:
    """A validated new subject: fields normalised, identities indexed, ready to store."""

    fields: dict[str, StoredField]
    identities: list[tuple[IdentityKind, bytes]]
    classes: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# Validation


_SOURCES = frozenset(s.value for s in DataSource)


def retention_classes(ctx: TenantContext) -> set[str]:
    return {STANDARD_CLASS, *ctx.settings.retention_classes.keys()}


def prepare_field(
    ctx: TenantContext, item: FieldInput, now: datetime, classes: set[str] | None = None
) -> StoredField:
    """Validate one field; identity fields are stored in their normal form."""
    if not FIELD_NAME.match(item.name):
        raise InvalidInput(
            f"field name {item.name[:64]!r} must be lower-case letters, digits and underscores"
        )
    value = item.value
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"field {item.name!r} needs a non-empty value")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidInput(f"field {item.name!r} is longer than {MAX_VALUE_CHARS} characters")
    category = item.category
    kind = _KIND_BY_FIELD.get(item.name)
    if kind is not None:
        try:
            value = normalise(kind, value, ctx.settings.phone_region)
        except InvalidIdentity as exc:
            raise InvalidInput(f"field {item.name!r}: {exc}") from None
        category = category or IDENTITY_FIELDS[kind][1]
    if category is None:
        raise InvalidInput(f"field {item.name!r} needs a data category (e.g. user.contact)")
    problem = check_category(category)
    if problem:
        raise InvalidInput(f"category {category[:120]!r} {problem}")
    if item.source not in _SOURCES:
        raise InvalidInput(f"source must be one of: {', '.join(sorted(_SOURCES))}")
    if item.retention_class not in (classes if classes is not None else retention_classes(ctx)):
        raise InvalidInput(f"unknown retention class {item.retention_class[:40]!r}")
    return StoredField(item.name, value, category, str(item.source), item.retention_class, now)


def prepare_subject(
    ctx: TenantContext, items: Sequence[FieldInput], indexer: IdentityIndexer, now: datetime
) -> PreparedSubject:
    fields: dict[str, StoredField] = {}
    classes = retention_classes(ctx)
    for item in items:
        if item.name in fields:
            raise InvalidInput(f"field {item.name!r} is given twice")
        fields[item.name] = prepare_field(ctx, item, now, classes)
    identities = [
        (kind, indexer.index(kind, fields[name].value))
        for kind, name in _FIELD_BY_KIND.items()
        if name in fields
    ]
    if not identities:
        raise InvalidInput("a subject needs at least one identity: email, phone or external_id")
    _refuse_a_child(ctx, fields.values(), now.date())
    return PreparedSubject(fields, identities, {f.retention_class for f in fields.values()})


def birth_date_under(value: str, age: int, today: date) -> bool:
    """Whether `value`, an ISO date of birth (YYYY-MM-DD), is that of someone under `age` on
    `today`. A value that is no such date, or in the future, is not: the age is guessed from
    nothing, and a guess could erase someone."""
    try:
        born = date.fromisoformat(value.strip())
    except ValueError:
        return False
    if born > today:
        return False
    lived = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return lived < age


def _refuse_a_child(ctx: TenantContext, fields: Iterable[StoredField], today: date) -> None:
    """A tenant that keeps no data of children (`erase_on_discovery`; seeds 000 and 003: "not
    allowed for anyone under the age of 18 to provide any personal information") refuses a
    new subject whose date of birth is a child's, before anything is stored: storing them to
    erase them at once would leave an erased subject for every child who filled in a form.
    One learnt of later (a date corrected, staff marking them) is erased then
    (`consent.privacy_state.set_child`)."""
    births = [f.value for f in fields if f.category == DATE_OF_BIRTH]
    if not births or ctx.settings.children_policy != ChildrenPolicy.ERASE_ON_DISCOVERY.value:
        return
    age = ctx.settings.child_age
    if any(birth_date_under(b, age, today) for b in births):
        raise InvalidInput(
            f"{ctx.settings.name} keeps no personal data of children under {age}: the date of "
            "birth given is a child's, and nothing was stored"
        )


_IDENTITIES = cast(Table, SubjectIdentity.__table__)
# Prebuilt (every request, opt-out and import looks people up by their identities): one
# query per kind, `blind_index IN (…)` — SQLite walks the primary key for it (a row-value IN
# over (kind, blind_index) would scan the tenant's identities instead).
_HOLDERS = select(_IDENTITIES.c.blind_index, _IDENTITIES.c.subject_id).where(
    _IDENTITIES.c.tenant_id == bindparam("tenant_id"),
    _IDENTITIES.c.kind == bindparam("kind"),
    _IDENTITIES.c.blind_index.in_(bindparam("indexes", expanding=True)),
)


def existing_identities(
    ctx: TenantContext, identities: Iterable[tuple[IdentityKind, bytes]]
) -> dict[tuple[str, bytes], uuid.UUID]:
    """Which of these identities already belong to a subject of the tenant."""
    by_kind: dict[str, list[bytes]] = defaultdict(list)
    for identity_kind, bidx in identities:
        by_kind[identity_kind.value].append(bidx)
    found: dict[tuple[str, bytes], uuid.UUID] = {}
    flush_changes_to(ctx.session, SubjectIdentity)  # a Core statement does not autoflush
    for kind, indexes in by_kind.items():
        for start in range(0, len(indexes), 500):
            rows = ctx.session.execute(
                _HOLDERS,
                {"tenant_id": ctx.tenant_id, "kind": kind, "indexes": indexes[start : start + 500]},
            ).all()
            found.update({(kind, b): s for b, s in rows})
    return found


# ---------------------------------------------------------------------------------------------
# Creating


def store_subjects(
    ctx: TenantContext, prepared: Sequence[PreparedSubject], *, event: AuditEvent, via: str
) -> list[uuid.UUID]:
    """Store new subjects in bulk: keys first (keystore), then rows and audit entries.

    A crash between the two leaves unused keys and no subject — never a subject whose data
    cannot be read.
    """
    if not prepared:
        return []
    now = utcnow()
    ids = [new_id() for _ in prepared]
    keys = ctx.create_subject_keys(
        [(sid, c) for sid, p in zip(ids, prepared, strict=True) for c in sorted(p.classes)],
    )
    subjects: list[dict[str, Any]] = []
    identities: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    entries: list[audit.PendingEntry] = []
    for sid, p in zip(ids, prepared, strict=True):
        subjects.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": sid,
                "status": SubjectStatus.ACTIVE.value,
                "created_at": now,
                "updated_at": now,
            }
        )
        identities.extend(
            {"tenant_id": ctx.tenant_id, "kind": k.value, "blind_index": b, "subject_id": sid}
            for k, b in p.identities
        )
        by_class: dict[str, dict[str, StoredField]] = defaultdict(dict)
        for f in p.fields.values():
            by_class[f.retention_class][f.name] = f
        for key_class, fields in by_class.items():
            records.append(
                {
                    "tenant_id": ctx.tenant_id,
                    "subject_id": sid,
                    "key_class": key_class,
                    "sealed": seal_record(
                        keys[(sid, key_class)], ctx.tenant_id, sid, key_class, fields
                    ),
                    "updated_at": now,
                }
            )
        entries.append(
            audit.PendingEntry(
                event,
                sid,
                {
                    "via": via,
                    "fields": sorted(p.fields),
                    "categories": sorted({f.category for f in p.fields.values()}),
                    "sources": sorted({f.source for f in p.fields.values()}),
                },
            )
        )
    bulk_insert(ctx.session, Subject, subjects)
    bulk_insert(ctx.session, SubjectIdentity, identities)
    bulk_insert(ctx.session, SubjectRecord, records)
    audit.record_many(ctx, entries)
    for sid, p in zip(ids, prepared, strict=True):
        for f in p.fields.values():
            _birth_date_stored(ctx, sid, f)
    return ids


class SubjectExists(Conflict):
    """A subject already holds one of the identities given; `subject_id` is theirs."""

    def __init__(self, kind: str, subject_id: uuid.UUID) -> None:
        super().__init__(
            f"a subject with this {kind} already exists", extra={"subject_id": str(subject_id)}
        )
        self.subject_id = subject_id


def _first_holder(
    ctx: TenantContext, identities: Iterable[tuple[IdentityKind, bytes]]
) -> SubjectExists | None:
    clash = existing_identities(ctx, identities)
    if not clash:
        return None
    (kind, _), existing = next(iter(clash.items()))
    return SubjectExists(kind, existing)


def create_subject(ctx: TenantContext, items: Sequence[FieldInput]) -> uuid.UUID:
    """A new subject; `SubjectExists` (409) when one holds an identity given — also when
    another transaction stored it meanwhile (PostgreSQL: this insert waited for its commit)."""
    indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
    prepared = prepare_subject(ctx, items, indexer, utcnow())
    taken = _first_holder(ctx, prepared.identities)
    if taken is not None:
        raise taken
    try:
        # A savepoint: the identity index refusing the row leaves the transaction usable.
        with ctx.session.begin_nested():
            return store_subjects(ctx, [prepared], event=AuditEvent.SUBJECT_CREATED, via="api")[0]
    except IntegrityError:
        taken = _first_holder(ctx, prepared.identities)
        if taken is None:
            raise
        raise taken from None


# ---------------------------------------------------------------------------------------------
# The subject's row, and its interactions added


def get_subject_row(ctx: TenantContext, subject_id: uuid.UUID | str) -> Subject:
    return get_in_tenant(ctx.session, Subject, ctx.tenant_id, subject_id, what="subject")


@dataclass(frozen=True)
class NewInteraction:
    subject_id: uuid.UUID
    kind: str
    occurred_at: datetime
    category: str
    payload: dict[str, Any]
    source: str = DataSource.DIRECT.value
    retention_class: str = STANDARD_CLASS


def store_interactions(ctx: TenantContext, items: Sequence[NewInteraction]) -> list[uuid.UUID]:
    """Bulk-add interactions to existing subjects (imports, demo data), audited one by one."""
    if not items:
        return []
    for item in items:
        _check_interaction(
            ctx, item.kind, item.source, item.category, item.retention_class, item.occurred_at
        )
    pairs = {(i.subject_id, i.retention_class) for i in items}
    keys = ctx.subject_keys(pairs)
    missing = sorted(pairs - keys.keys())
    if missing:
        keys.update(ctx.create_subject_keys(missing))
    now = utcnow()
    rows, entries, ids = [], [], []
    for item in items:
        iid = new_id()
        ids.append(iid)
        rows.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": iid,
                "subject_id": item.subject_id,
                "kind": item.kind,
                "occurred_at": item.occurred_at,
                "category": item.category,
                "source": item.source,
                "key_class": item.retention_class,
                "created_at": now,
                "sealed": seal_payload(
                    keys[(item.subject_id, item.retention_class)],
                    ctx.tenant_id,
                    item.subject_id,
                    iid,
                    item.payload,
                ),
            }
        )
        entries.append(
            audit.PendingEntry(
                AuditEvent.INTERACTION_ADDED,
                item.subject_id,
                {"interaction_id": str(iid), "kind": item.kind, "category": item.category},
            )
        )
    bulk_insert(ctx.session, Interaction, rows)
    audit.record_many(ctx, entries)
    return ids


def _check_interaction(
    ctx: TenantContext,
    kind: str,
    source: str,
    category: str,
    retention_class: str,
    occurred_at: datetime,
) -> None:
    if kind not in InteractionKind._value2member_map_:
        raise InvalidInput(f"kind must be one of: {', '.join(k.value for k in InteractionKind)}")
    if source not in DataSource._value2member_map_:
        raise InvalidInput(f"source must be one of: {', '.join(s.value for s in DataSource)}")
    problem = check_category(category)
    if problem:
        raise InvalidInput(f"category {category[:120]!r} {problem}")
    if retention_class not in retention_classes(ctx):
        raise InvalidInput(f"unknown retention class {retention_class[:40]!r}")
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at needs a time zone (e.g. 2026-01-31T10:00:00Z)")


# ---------------------------------------------------------------------------------------------
# Changing


def _require_active(subject: Subject) -> None:
    """Only an active subject takes new data. A partially erased one keeps what a legal duty
    holds and nothing more: no identity to be looked up by again (the erasure's promise),
    no field or interaction under a kept class or a class made anew."""
    if subject.status == SubjectStatus.ERASED.value:
        raise SubjectErased("this subject has been erased")
    if subject.status != SubjectStatus.ACTIVE.value:
        raise SubjectErased(
            "this subject has been erased but for the data kept under a legal duty; "
            "it takes no new data"
        )


def _require_kept_field(
    ctx: TenantContext, subject: Subject, record: SubjectRecord | None, new: StoredField
) -> None:
    """What a partially erased subject may still have rectified (GDPR Art. 16 reaches kept
    data too: a wrong billing address on kept invoices): a field it still holds, in the
    same kept class, that is not an identity (no look-up by it again)."""
    held = (
        record is not None
        and _KIND_BY_FIELD.get(new.name) is None
        and new.name
        in open_record(
            _subject_key(ctx, subject.id, record.key_class),
            ctx.tenant_id,
            subject.id,
            record.key_class,
            record.sealed,
        )
    )
    if not held:
        _require_active(subject)  # refused, saying why


def _subject_key(ctx: TenantContext, subject_id: uuid.UUID, key_class: str) -> bytes:
    """The data key of a class, created on first use. A shredded class stays shredded."""
    try:
        return ctx.subject_key(subject_id, key_class)
    except KeyShredded:
        raise SubjectErased(f"the {key_class} data of this subject has been erased") from None
    except KeyMissing:
        return ctx.create_subject_keys([(subject_id, key_class)])[(subject_id, key_class)]


def rectify_field(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    item: FieldInput,
    *,
    marks_child: bool = True,
) -> StoredField:
    """Set a field to a new value. The old value is overwritten, not kept (GDPR Art. 16).

    `marks_child=False`: a date of birth is stored as any field and marks nobody a child —
    for a writer who cannot vouch for the person (`consent.intake` adding to a known
    person's record from a public form: anyone can submit someone's address)."""
    subject = get_subject_row(ctx, subject_id)
    kept_only = subject.status == SubjectStatus.PARTIALLY_ERASED.value
    if not kept_only:
        _require_active(subject)
    now = utcnow()
    new = prepare_field(ctx, item, now)
    if not kept_only and marks_child:
        _hold_before_a_birth_date(ctx, subject, new)
    records = {
        r.key_class: r
        for r in ctx.session.scalars(
            for_tenant(select(SubjectRecord), SubjectRecord, ctx.tenant_id).where(
                SubjectRecord.subject_id == subject.id
            )
        )
    }
    if kept_only:
        _require_kept_field(ctx, subject, records.get(new.retention_class), new)
    # A field lives in exactly one class: drop it from any other class's record.
    for key_class, other in records.items():
        if key_class == new.retention_class:
            continue
        other_key = _subject_key(ctx, subject.id, key_class)
        others = open_record(other_key, ctx.tenant_id, subject.id, key_class, other.sealed)
        if others.pop(new.name, None) is not None:
            other.sealed = seal_record(other_key, ctx.tenant_id, subject.id, key_class, others)
            other.updated_at = now
    key = _subject_key(ctx, subject.id, new.retention_class)
    rec = records.get(new.retention_class)
    fields = (
        open_record(key, ctx.tenant_id, subject.id, new.retention_class, rec.sealed) if rec else {}
    )
    previous = fields.get(new.name)
    fields[new.name] = new
    sealed = seal_record(key, ctx.tenant_id, subject.id, new.retention_class, fields)
    if rec is None:
        ctx.session.add(
            SubjectRecord(
                tenant_id=ctx.tenant_id,
                subject_id=subject.id,
                key_class=new.retention_class,
                sealed=sealed,
                updated_at=now,
            )
        )
    else:
        rec.sealed, rec.updated_at = sealed, now
    kind = _KIND_BY_FIELD.get(new.name)
    if kind is not None:
        _reindex(ctx, subject.id, kind, new.value)
    subject.updated_at = now
    audit.record(
        ctx,
        AuditEvent.SUBJECT_FIELD_RECTIFIED,
        subject_id=subject.id,
        details={
            "field": new.name,
            "category": new.category,
            "retention_class": new.retention_class,
            "change": "replaced" if previous else "added",
        },
    )
    if not kept_only and marks_child:
        _birth_date_stored(ctx, subject.id, new)
    return new


def _hold_before_a_birth_date(ctx: TenantContext, subject: Subject, stored: StoredField) -> None:
    """A date of birth about to be rectified may mark the subject a child after the
    correction's audit entry, and under `erase_on_discovery` erase them, which holds their
    row FOR UPDATE: it is held before the entry instead (`privacy_state.hold_person`; the
    lock order on PostgreSQL is the person's row, then the audit chain's head). Written
    alone (FOR NO KEY UPDATE) the row let a consent or an opt-out being recorded for them
    by (FOR KEY SHARE), which then waited for the head as the erasure waited for it.
    Checked again once held: erased meanwhile, nothing is written."""
    if stored.category != DATE_OF_BIRTH:
        return
    # Imported here: the privacy state reads subjects through this module.
    from pledge.consent import privacy_state

    privacy_state.hold_person(ctx, subject.id)
    _require_active(subject)


def _birth_date_stored(ctx: TenantContext, subject_id: uuid.UUID, stored: StoredField) -> None:
    """Every field written passes here (creation, import, intake of a new person,
    rectification — not intake's additions to a known person, `rectify_field`'s
    `marks_child`): a date of birth under the tenant's child age marks the subject a child
    (LAW.md "Children")."""
    if stored.category != DATE_OF_BIRTH:
        return
    # Imported here: the privacy state reads subjects through this module.
    from pledge.consent import privacy_state

    privacy_state.child_by_birth_date(ctx, subject_id, stored.value)


def _reindex(ctx: TenantContext, subject_id: uuid.UUID, kind: IdentityKind, value: str) -> None:
    bidx = IdentityIndexer(ctx.keystore, ctx.tenant_id).index(kind, value)
    owner = existing_identities(ctx, [(kind, bidx)]).get((kind.value, bidx))
    if owner is not None and owner != subject_id:
        raise Conflict(f"another subject already has this {kind.value}")
    ctx.session.execute(
        delete(SubjectIdentity).where(
            SubjectIdentity.tenant_id == ctx.tenant_id,
            SubjectIdentity.subject_id == subject_id,
            SubjectIdentity.kind == kind.value,
        )
    )
    ctx.session.execute(
        insert(SubjectIdentity),
        [
            {
                "tenant_id": ctx.tenant_id,
                "kind": kind.value,
                "blind_index": bidx,
                "subject_id": subject_id,
            }
        ],
    )


def add_interaction(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    *,
    kind: str,
    occurred_at: datetime,
    category: str,
    payload: dict[str, Any],
    source: str = DataSource.DIRECT.value,
    retention_class: str = STANDARD_CLASS,
) -> uuid.UUID:
    subject = get_subject_row(ctx, subject_id)
    _require_active(subject)
    _check_interaction(ctx, kind, source, category, retention_class, occurred_at)
    _subject_key(ctx, subject.id, retention_class)  # a shredded class refuses new data
    item = NewInteraction(subject.id, kind, occurred_at, category, payload, source, retention_class)
    interaction_id = store_interactions(ctx, [item])[0]
    subject.updated_at = utcnow()
    return interaction_id


def seal_note(ctx: TenantContext, subject_id: uuid.UUID, context: str, note: str) -> bytes:
    """Seal a free-text note about a subject (staff's grounds, a letter) under its standard
    data key: erasing the subject makes the note unreadable too."""
    key = _subject_key(ctx, subject_id, STANDARD_CLASS)
    return seal(AESGCM(key), note.encode(), note_aad(ctx.tenant_id, subject_id, context))


def open_note(ctx: TenantContext, subject_id: uuid.UUID, context: str, sealed: bytes) -> str | None:
    try:
        key = ctx.subject_key(subject_id, STANDARD_CLASS)
    except (KeyShredded, KeyMissing):
        return None
    return unseal(AESGCM(key), sealed, note_aad(ctx.tenant_id, subject_id, context)).decode()
