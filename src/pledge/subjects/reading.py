"""Reading the vault: a subject's fields and interactions decrypted, look-ups by identity,
listings, counts and the export. Every read that shows personal data writes its audit entry
in the caller's transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, Select, String, Table, bindparam, func, select, type_coerce

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.db import flush_changes_to
from pledge.core.errors import NotFound
from pledge.crypto.aead import unseal
from pledge.subjects.identity import IdentityKind, InvalidIdentity, normalise
from pledge.subjects.models import Interaction, Subject, SubjectRecord
from pledge.subjects.service import _KIND_BY_FIELD, existing_identities, get_subject_row
from pledge.subjects.vault import (
    IdentityIndexer,
    StoredField,
    interaction_aad_prefix,
    open_payload_text,
    open_record,
)


@dataclass
class InteractionView:
    id: uuid.UUID
    kind: str
    occurred_at: datetime
    category: str
    source: str
    retention_class: str
    payload: dict[str, Any] | None


@dataclass
class SubjectView:
    id: uuid.UUID
    status: str
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None
    fields: list[StoredField]
    # Retention classes whose key is gone though rows remain (an interrupted erasure).
    unreadable_classes: list[str] = field(default_factory=list)
    interactions: list[InteractionView] = field(default_factory=list)

    def value(self, name: str) -> str | None:
        for f in self.fields:
            if f.name == name:
                return f.value
        return None

    @property
    def display_name(self) -> str:
        parts = [self.value("first_name"), self.value("last_name")]
        return " ".join(p for p in parts if p) or (self.value("email") or str(self.id)[:8])


_RECORDS = cast(Table, SubjectRecord.__table__)
# Prebuilt (every subject read, every access and verification): plain rows, no ORM object.
_RECORDS_OF = select(_RECORDS.c.subject_id, _RECORDS.c.key_class, _RECORDS.c.sealed).where(
    _RECORDS.c.tenant_id == bindparam("tenant_id"),
    _RECORDS.c.subject_id.in_(bindparam("ids", expanding=True)),
)


def _open_fields(
    ctx: TenantContext, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[StoredField], list[str]]]:
    """Per subject (those with a record), its fields decrypted, in display order, and the
    retention classes whose key is gone though their record remains."""
    flush_changes_to(ctx.session, SubjectRecord)  # a Core statement does not autoflush
    rows = ctx.session.execute(_RECORDS_OF, {"tenant_id": ctx.tenant_id, "ids": ids}).all()
    keys = ctx.subject_keys([(sid, key_class) for sid, key_class, _ in rows])
    out: dict[uuid.UUID, tuple[list[StoredField], list[str]]] = {}
    for sid, key_class, sealed in rows:
        fields, unreadable = out.setdefault(sid, ([], []))
        key = keys.get((sid, key_class))
        if key is None:
            unreadable.append(key_class)
            continue
        fields.extend(open_record(key, ctx.tenant_id, sid, key_class, sealed).values())
    for fields, _unreadable in out.values():
        fields.sort(key=lambda f: (f.name not in _KIND_BY_FIELD, f.name))
    return out


def _open_records(ctx: TenantContext, subjects: Sequence[Subject]) -> dict[uuid.UUID, SubjectView]:
    views = {
        s.id: SubjectView(s.id, s.status, s.created_at, s.updated_at, s.erased_at, [])
        for s in subjects
    }
    if not views:
        return views
    for sid, (fields, unreadable) in _open_fields(ctx, list(views)).items():
        views[sid].fields, views[sid].unreadable_classes = fields, unreadable
    return views


def subject_fields(ctx: TenantContext, subject_id: uuid.UUID) -> list[StoredField]:
    """A subject's fields, decrypted (none under a key that is gone), without its row: what
    a verification compares the details given with. Not audited: the caller's entry says
    what they were read for."""
    found = _open_fields(ctx, [subject_id]).get(subject_id)
    return found[0] if found else []


def read_subject(
    ctx: TenantContext, subject_id: uuid.UUID | str, *, interactions: int = 0, audited: bool = True
) -> SubjectView:
    """A subject's fields (and its latest `interactions`), decrypted; one audit entry."""
    subject = get_subject_row(ctx, subject_id)
    view = _open_records(ctx, [subject])[subject.id]
    if interactions:
        view.interactions = list_interactions(ctx, subject.id, limit=interactions)
    if audited:
        details = {"interactions": len(view.interactions)} if interactions else {}
        audit.record(ctx, AuditEvent.SUBJECT_VIEWED, subject_id=subject.id, details=details)
    return view


def find_subject_id(ctx: TenantContext, kind: IdentityKind, value: str) -> uuid.UUID | None:
    """The subject holding this identity, via its blind index; None if nobody does."""
    return find_subject_ids(ctx, kind, [value]).get(value)


def find_subject_ids(
    ctx: TenantContext, kind: IdentityKind, values: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Value → the subject holding it, via blind indexes, for the values someone holds
    (invalid ones hold nobody)."""
    indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
    wanted: dict[bytes, list[str]] = {}
    for value in dict.fromkeys(values):
        try:
            normal = normalise(kind, value, ctx.settings.phone_region)
        except InvalidIdentity:
            continue
        wanted.setdefault(indexer.index(kind, normal), []).append(value)
    held = existing_identities(ctx, [(kind, index) for index in wanted])
    return {
        value: subject_id for (_kind, index), subject_id in held.items() for value in wanted[index]
    }


def get_subject_rows(
    ctx: TenantContext, subject_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Subject]:
    """Many subjects' rows by id, in one query per 400 (missing ones are absent)."""
    ids = list(dict.fromkeys(subject_ids))
    found: dict[uuid.UUID, Subject] = {}
    for start in range(0, len(ids), 400):
        for subject in ctx.session.scalars(
            for_tenant(select(Subject), Subject, ctx.tenant_id).where(
                Subject.id.in_(ids[start : start + 400])
            )
        ):
            found[subject.id] = subject
    return found


def list_subjects(
    ctx: TenantContext,
    *,
    after: uuid.UUID | None = None,
    limit: int = 50,
    status: str | None = None,
) -> list[Subject]:
    """A page of subjects, oldest first (ids are time-ordered). No personal values."""
    stmt = for_tenant(select(Subject), Subject, ctx.tenant_id)
    if after is not None:
        stmt = stmt.where(Subject.id > after)
    if status is not None:
        stmt = stmt.where(Subject.status == status)
    return list(ctx.session.scalars(stmt.order_by(Subject.id).limit(limit)))


def summarise_subjects(
    ctx: TenantContext, subjects: Sequence[Subject], *, via: str
) -> list[SubjectView]:
    """Decrypt a page of subjects for display; one audit entry names every subject shown."""
    views = _open_records(ctx, subjects)
    if subjects:
        audit.record(
            ctx,
            AuditEvent.SUBJECTS_LISTED,
            details={
                "via": via,
                "count": len(subjects),
                "subject_ids": [str(s.id) for s in subjects],
            },
        )
    return [views[s.id] for s in subjects]


def count_subjects(ctx: TenantContext) -> dict[str, int]:
    rows = ctx.session.execute(
        for_tenant(select(Subject.status, func.count()), Subject, ctx.tenant_id).group_by(
            Subject.status
        )
    ).all()
    return {status: int(n) for status, n in rows}


def count_interactions(ctx: TenantContext) -> int:
    return int(
        ctx.session.scalar(
            for_tenant(select(func.count()).select_from(Interaction), Interaction, ctx.tenant_id)
        )
        or 0
    )


class OpenedInteraction(NamedTuple):
    """An interaction with its payload decrypted but not parsed: the compact JSON text it was
    sealed as, or None where its key is shredded."""

    id: uuid.UUID
    kind: str
    occurred_at: datetime
    category: str
    source: str
    retention_class: str
    payload_json: str | None


# Prebuilt: every access request reads them all, newest first.
_INTERACTIONS = cast(Table, Interaction.__table__)
_INTERACTIONS_OF = (
    select(
        Interaction.id,
        Interaction.kind,
        Interaction.occurred_at,
        Interaction.category,
        Interaction.source,
        Interaction.key_class,
        Interaction.sealed,
    )
    .where(
        Interaction.tenant_id == bindparam("tenant_id"),
        Interaction.subject_id == bindparam("subject_id"),
    )
    .order_by(Interaction.occurred_at.desc(), Interaction.id)
)


def _interaction_rows(
    ctx: TenantContext, stmt: Select[Any], subject_id: uuid.UUID
) -> tuple[list[tuple[Any, ...]], dict[str, AESGCM]]:
    """The subject's interaction rows (`stmt`: key class sixth, sealed payload last) and the
    keys to open them, by class (shredded ones absent). A Core execution: no ORM loading
    machinery per row (a third of the read's time on 10,000 rows). It does not autoflush as
    the session does: flush, so earlier changes count."""
    if ctx.session.autoflush:
        ctx.session.flush()
    rows = (
        ctx.session.connection()
        .execute(stmt, {"tenant_id": ctx.tenant_id, "subject_id": subject_id})
        .tuples()
        .all()
    )
    classes = {r[5] for r in rows}
    keys = ctx.subject_keys([(subject_id, c) for c in classes])
    aeads = {c: AESGCM(keys[(subject_id, c)]) for c in classes if (subject_id, c) in keys}
    return list(rows), aeads


def open_interactions(
    ctx: TenantContext, subject_id: uuid.UUID, *, limit: int | None = None
) -> list[OpenedInteraction]:
    """The subject's interactions, newest first, payloads decrypted and left as JSON text.
    Read as plain rows, not ORM objects: a subject may have tens of thousands, and an access
    request exports them all (its bundle copies the text into its files without a parse)."""
    stmt = _INTERACTIONS_OF if limit is None else _INTERACTIONS_OF.limit(limit)
    rows, aeads = _interaction_rows(ctx, stmt, subject_id)
    prefix = interaction_aad_prefix(ctx.tenant_id, subject_id)
    out = []
    for iid, kind, at, category, source, key_class, sealed in rows:
        aead = aeads.get(key_class)
        text = open_payload_text(aead, prefix, iid, sealed) if aead else None
        out.append(OpenedInteraction(iid, kind, at, category, source, key_class, text))
    return out


# What an export writes of each interaction: its id and moment as text (the JSON document,
# the CSV, the page), its payload as the JSON text it was sealed as (None once shredded).
ExportedInteraction = tuple[str, str, str, str, str, str, str | None]

# On SQLite, the same rows with the id and the moment as stored (16 bytes; UTC text in
# SQLAlchemy's format): an export of tens of thousands of interactions otherwise builds a
# UUID and a datetime per row only to turn them back into text (a tenth of a big access).
_INTERACTIONS_STORED = (
    select(
        type_coerce(_INTERACTIONS.c.id, LargeBinary),
        _INTERACTIONS.c.kind,
        type_coerce(_INTERACTIONS.c.occurred_at, String),
        _INTERACTIONS.c.category,
        _INTERACTIONS.c.source,
        _INTERACTIONS.c.key_class,
        _INTERACTIONS.c.sealed,
    )
    .where(
        _INTERACTIONS.c.tenant_id == bindparam("tenant_id"),
        _INTERACTIONS.c.subject_id == bindparam("subject_id"),
    )
    .order_by(_INTERACTIONS.c.occurred_at.desc(), _INTERACTIONS.c.id)
)


def id_text(stored: bytes) -> str:
    """`str(uuid.UUID(bytes=stored))`, without the UUID."""
    h = stored.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def moment_text(stored: str) -> str:
    """What `isoformat()` gives for a UTC moment SQLite holds as "YYYY-MM-DD HH:MM:SS.ffffff"
    (`core.db`'s storage format), without the datetime: no fraction when it is zero."""
    if len(stored) != 26 or stored[10] != " " or stored[19] != ".":
        return datetime.fromisoformat(stored).replace(tzinfo=UTC).isoformat()
    fraction = "" if stored.endswith(".000000") else stored[19:]
    return f"{stored[:10]}T{stored[11:19]}{fraction}+00:00"


def exported_interactions(ctx: TenantContext, subject_id: uuid.UUID) -> list[ExportedInteraction]:
    """The subject's interactions as an export writes them, newest first (`open_interactions`,
    with the id and the moment as text)."""
    if ctx.session.get_bind().dialect.name != "sqlite":
        return [
            (str(i.id), i.kind, i.occurred_at.isoformat(), *i[3:])
            for i in open_interactions(ctx, subject_id)
        ]
    rows, aeads = _interaction_rows(ctx, _INTERACTIONS_STORED, subject_id)
    prefix = interaction_aad_prefix(ctx.tenant_id, subject_id)
    out: list[ExportedInteraction] = []
    for raw_id, kind, at, category, source, key_class, sealed in rows:
        aead = aeads.get(key_class)
        text = unseal(aead, sealed, prefix + raw_id).decode() if aead else None
        out.append((id_text(raw_id), kind, moment_text(at), category, source, key_class, text))
    return out


def list_interactions(
    ctx: TenantContext, subject_id: uuid.UUID, *, limit: int | None = None
) -> list[InteractionView]:
    """The subject's interactions, newest first, payloads parsed."""
    return [
        InteractionView(*i[:6], json.loads(i.payload_json) if i.payload_json is not None else None)
        for i in open_interactions(ctx, subject_id, limit=limit)
    ]


def read_interactions(
    ctx: TenantContext, subject_id: uuid.UUID | str, *, limit: int
) -> list[InteractionView]:
    subject = get_subject_row(ctx, subject_id)
    items = list_interactions(ctx, subject.id, limit=limit)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_VIEWED,
        subject_id=subject.id,
        details={"part": "interactions", "count": len(items)},
    )
    return items


def search_subjects(
    ctx: TenantContext, kind: IdentityKind, value: str, *, via: str
) -> list[SubjectView]:
    """Exact look-up by identity; a hit is audited as a listing (it reveals who is here)."""
    found = find_subject_id(ctx, kind, value)
    if found is None:
        return []
    return summarise_subjects(ctx, [get_subject_row(ctx, found)], via=via)


def export_subject(
    ctx: TenantContext, subject_id: uuid.UUID | str, *, payload_text: bool = False
) -> dict[str, Any]:
    """The subject's whole record, decrypted: every field and every interaction. With
    `payload_text`, each interaction's payload is its JSON text, not parsed (see
    `open_interactions`)."""
    view = read_subject(ctx, subject_id, audited=False)
    interactions = exported_interactions(ctx, view.id)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_EXPORTED,
        subject_id=view.id,
        details={"fields": len(view.fields), "interactions": len(interactions)},
    )
    return {
        "subject_id": str(view.id),
        "status": view.status,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
        "fields": [
            {
                "name": f.name,
                "value": f.value,
                "category": f.category,
                "source": f.source,
                "retention_class": f.retention_class,
                "updated_at": f.updated_at.isoformat(),
            }
            for f in view.fields
        ],
        "interactions": [
            {
                "id": iid,
                "kind": kind,
                "occurred_at": at,
                "category": category,
                "source": source,
                "retention_class": key_class,
                "payload": text if payload_text or text is None else json.loads(text),
            }
            for iid, kind, at, category, source, key_class, text in interactions
        ],
    }


def require_subject(ctx: TenantContext, kind: IdentityKind, value: str) -> uuid.UUID:
    found = find_subject_id(ctx, kind, value)
    if found is None:
        raise NotFound(f"no subject with that {kind.value}")
    return found
