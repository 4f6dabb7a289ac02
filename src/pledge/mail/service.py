"""The mail outbox: every message is sealed at rest and leaves only after its transaction
commits (DESIGN.md §4 invariants 1 and 4).

A message about a subject is sealed under that subject's standard data key, so erasing the
subject makes its mail unreadable too (the console shows it as "erased"); any other message is
sealed under a key derived from the tenant key. Delivery runs after commit through the
configured backend (`pledge.mail.backends`) and records its outcome in a transaction of its
own: status, attempts and a short error that never carries an address or a body.
`deliver_pending` (the `pledge mail deliver` command) retries what is still queued or failed.
The console reads the outbox through `reading`.

Two workers may run at once (a second `pledge worker`, a cron `--once` overlapping one): a
message is claimed before it is handed to the backend — its status moves to "sending" in one
statement that only a queued (or, for a retry, locked) row passes — so only one process sends
it. A claim whose sender died is taken back after `STALE`, as a failed attempt to retry.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import CursorResult, Engine, Table, and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.config import get_settings
from pledge.core.db import after_commit, bulk_insert, flush_changes_to, keep_loaded_in_step
from pledge.core.errors import InvalidInput, SubjectErased
from pledge.core.ids import new_id
from pledge.crypto.aead import seal, unseal
from pledge.mail import backends
from pledge.mail.models import OutboxMessage, OutboxStatus
from pledge.subjects.identity import InvalidIdentity, normalise_email
from pledge.subjects.models import STANDARD_CLASS, SubjectRecord
from pledge.subjects.vault import note_aad, open_record

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FRESH = timedelta(minutes=1)
# Claimed and in a backend's hands; `sent_at` holds when it was claimed until the outcome
# is recorded.
SENDING = OutboxStatus.SENDING.value
# How long a claim holds: a sender silent for longer is taken as dead and the message is
# tried again. Far above a batch's send (CHUNK messages on one SMTP connection).
STALE = timedelta(hours=1)
CHUNK = 100  # messages claimed, sent and recorded at a time after a commit
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,76}$")
# Headers the outbox writes itself; a caller cannot replace them.
_RESERVED = {
    "to",
    "from",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "cc",
    "bcc",
}


class MessageKind:
    CAMPAIGN = "campaign"
    NOTICE_ANNOUNCEMENT = "notice_announcement"
    NOTIFICATION = "notification"


@dataclass(frozen=True)
class Letter:
    """What a message says, in plaintext: lives only in memory, sealed before it is stored."""

    to: str
    subject_line: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> bytes:
        doc = {"to": self.to, "s": self.subject_line, "t": self.text, "h": self.headers}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def from_json(data: bytes) -> Letter:
        doc = json.loads(data)
        return Letter(doc["to"], doc["s"], doc["t"], dict(doc["h"]))


def letter(
    to: str, subject_line: str, text: str, headers: Mapping[str, str] | None = None
) -> Letter:
    """A checked letter: a valid address, one-line subject, headers that cannot inject."""
    try:
        address = normalise_email(to)
    except InvalidIdentity:
        raise InvalidInput("the recipient is not a valid e-mail address") from None
    line = subject_line.strip()
    if not line or len(line) > 300 or "\r" in line or "\n" in line:
        raise InvalidInput("the subject line must be one line of 1 to 300 characters")
    if not text.strip():
        raise InvalidInput("a message needs a body")
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.match(name) or name.lower() in _RESERVED:
            raise InvalidInput(f"header {name[:40]!r} cannot be set")
        if "\r" in value or "\n" in value or len(value) > 2000:
            raise InvalidInput(f"header {name!r} must be one line of at most 2000 characters")
        checked[name] = value
    return Letter(address, line, text, checked)


# ---------------------------------------------------------------------------------------------
# Sealing


def _tenant_aad(tenant_id: uuid.UUID, message_id: uuid.UUID) -> bytes:
    return b"pledge:outbox:v1|" + tenant_id.bytes + message_id.bytes


def _subject_context(message_id: uuid.UUID) -> str:
    return f"outbox:{message_id}"


def _subject_keys(ctx: TenantContext, subject_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    """The standard data keys of these subjects, created where missing; an erased subject's
    key stays destroyed (SubjectErased)."""
    pairs = [(sid, STANDARD_CLASS) for sid in dict.fromkeys(subject_ids)]
    found = ctx.subject_keys(pairs)
    missing = [p for p in pairs if p not in found]
    for sid, key_class in missing:
        if ctx.keystore.is_shredded(ctx.tenant_id, sid, key_class):
            raise SubjectErased("this subject has been erased")
    if missing:
        found.update(ctx.create_subject_keys(missing))
    return {sid: key for (sid, _c), key in found.items()}


def _seal(
    ctx: TenantContext, message_id: uuid.UUID, subject_id: uuid.UUID | None, key: bytes, body: bytes
) -> bytes:
    if subject_id is None:
        return seal(AESGCM(key), body, _tenant_aad(ctx.tenant_id, message_id))
    aad = note_aad(ctx.tenant_id, subject_id, _subject_context(message_id))
    return seal(AESGCM(key), body, aad)


def _open(ctx: TenantContext, row: OutboxMessage, keys: Mapping[uuid.UUID, bytes]) -> Letter | None:
    """The letter of a row, or None when its subject's key is destroyed (erased)."""
    if row.subject_id is None:
        key = ctx.keystore.derived_key(ctx.tenant_id, "outbox")
        return Letter.from_json(unseal(AESGCM(key), row.sealed, _tenant_aad(ctx.tenant_id, row.id)))
    subject_key = keys.get(row.subject_id)
    if subject_key is None:
        return None
    aad = note_aad(ctx.tenant_id, row.subject_id, _subject_context(row.id))
    return Letter.from_json(unseal(AESGCM(subject_key), row.sealed, aad))


# ---------------------------------------------------------------------------------------------
# Recipients


@dataclass(frozen=True)
class Contact:
    email: str | None
    first_name: str | None

    def greeting_name(self, default: str) -> str:
        # One line, whatever was stored: it may end up in a subject line.
        return " ".join((self.first_name or default).split()) or default


def contacts(ctx: TenantContext, subject_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contact]:
    """E-mail and first name of each subject, decrypted in batches; nothing else is opened.
    The caller's audit entry (a campaign, an announcement) covers the read."""
    out: dict[uuid.UUID, Contact] = {}
    for start in range(0, len(subject_ids), 500):
        chunk = list(subject_ids[start : start + 500])
        rows = ctx.session.scalars(
            for_tenant(select(SubjectRecord), SubjectRecord, ctx.tenant_id).where(
                SubjectRecord.subject_id.in_(chunk)
            )
        ).all()
        keys = ctx.subject_keys([(r.subject_id, r.key_class) for r in rows])
        found: dict[uuid.UUID, dict[str, str]] = {}
        for r in rows:
            key = keys.get((r.subject_id, r.key_class))
            if key is None:
                continue  # a class erased in part: what it held is gone
            fields = open_record(key, ctx.tenant_id, r.subject_id, r.key_class, r.sealed)
            mine = found.setdefault(r.subject_id, {})
            for name in ("email", "first_name"):
                if name in fields:
                    mine[name] = fields[name].value
        for sid in chunk:
            got = found.get(sid, {})
            out[sid] = Contact(got.get("email"), got.get("first_name"))
    return out


# ---------------------------------------------------------------------------------------------
# Queueing


@dataclass(frozen=True)
class Addressed:
    """A letter to queue, and the subject it is about (None: not about a subject); for a
    rights letter, the request it answers (the message is purged with the request)."""

    letter: Letter
    subject_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None


def queue(
    ctx: TenantContext,
    *,
    to: str,
    subject_line: str,
    text: str,
    headers: Mapping[str, str] | None = None,
    kind: str = MessageKind.NOTIFICATION,
    subject_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
    pending: list[audit.PendingEntry] | None = None,
) -> uuid.UUID:
    """Seal and store one message, audited; it leaves after the transaction commits.
    `request_id`: the rights request a letter answers. `pending`: add the audit entry
    there, for the caller to record with the entries around it (in this transaction)."""
    item = Addressed(letter(to, subject_line, text, headers), subject_id, request_id)
    message_id = queue_many(ctx, [item], kind=kind, campaign_id=campaign_id)[0]
    entry = queued_entry(message_id, subject_id, kind)
    if pending is None:
        audit.record_many(ctx, [entry])
    else:
        pending.append(entry)
    return message_id


def queued_entry(
    message_id: uuid.UUID, subject_id: uuid.UUID | None, kind: str
) -> audit.PendingEntry:
    """The audit entry of one message queued about `subject_id`."""
    return audit.PendingEntry(
        AuditEvent.MAIL_QUEUED, subject_id, {"message_id": str(message_id), "kind": kind}
    )


def queue_many(
    ctx: TenantContext,
    items: Sequence[Addressed],
    *,
    kind: str,
    campaign_id: uuid.UUID | None = None,
    report: DeliveryReport | None = None,
) -> list[uuid.UUID]:
    """Seal and store many letters in one insert; the caller writes the audit entry that
    covers them (one per campaign, one per announcement). The subjects' keys come from the
    context, read once per transaction. `report`: filled in as they leave, after commit."""
    if not items:
        return []
    all_keys = _subject_keys(ctx, [i.subject_id for i in items if i.subject_id is not None])
    tenant_key: bytes | None = None
    now = utcnow()
    rows: list[dict[str, object]] = []
    outgoing: list[tuple[uuid.UUID, Letter]] = []
    ids: list[uuid.UUID] = []
    for item in items:
        message_id = new_id()
        ids.append(message_id)
        if item.subject_id is None:
            tenant_key = tenant_key or ctx.keystore.derived_key(ctx.tenant_id, "outbox")
            key = tenant_key
        else:
            key = all_keys[item.subject_id]
        rows.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": message_id,
                "subject_id": item.subject_id,
                "kind": kind[:24],
                "status": OutboxStatus.QUEUED.value,
                "sealed": _seal(ctx, message_id, item.subject_id, key, item.letter.as_json()),
                "campaign_id": campaign_id,
                "request_id": item.request_id,
                "attempts": 0,
                "last_error": None,
                "created_at": now,
                "sent_at": None,
            }
        )
        outgoing.append((message_id, item.letter))
    bulk_insert(ctx.session, OutboxMessage, rows)
    _deliver_after_commit(ctx, outgoing, report)
    return ids


# ---------------------------------------------------------------------------------------------
# Rights letters: under the subject's key once the request is matched, purged with it


_OUTBOX = cast(Table, OutboxMessage.__table__)
# Prebuilt, as each rights request is verified: its letters queued before the match, and
# their re-sealing under the subject's key, by primary key, in one executemany.
_UNDER_TENANT_KEY = select(_OUTBOX.c.id, _OUTBOX.c.sealed).where(
    _OUTBOX.c.tenant_id == bindparam("tenant_id"),
    _OUTBOX.c.request_id.in_(bindparam("request_ids", expanding=True)),
    _OUTBOX.c.subject_id.is_(None),
)
_RESEAL = (
    update(_OUTBOX)
    .where(_OUTBOX.c.tenant_id == bindparam("b_tenant_id"), _OUTBOX.c.id == bindparam("b_id"))
    .values(sealed=bindparam("b_sealed"), subject_id=bindparam("b_subject_id"))
)


def seal_under_subject(
    ctx: TenantContext, request_ids: Sequence[uuid.UUID], subject_id: uuid.UUID
) -> int:
    """Re-seal the letters of these rights requests still sealed under the tenant's key
    (queued before the request was matched) under the subject's standard data key: they are
    about the subject from now on, and its erasure makes them unreadable. Nothing changes
    when the subject has no such key. How many were re-sealed."""
    key = ctx.subject_keys([(subject_id, STANDARD_CLASS)]).get((subject_id, STANDARD_CLASS))
    if key is None or not request_ids:
        return 0
    flush_changes_to(ctx.session, OutboxMessage)  # a Core statement does not autoflush
    rows = ctx.session.execute(
        _UNDER_TENANT_KEY, {"tenant_id": ctx.tenant_id, "request_ids": list(request_ids)}
    ).all()
    tenant_key = AESGCM(ctx.keystore.derived_key(ctx.tenant_id, "outbox"))
    resealed = [
        {
            "b_tenant_id": ctx.tenant_id,
            "b_id": message_id,
            "b_sealed": _seal(
                ctx,
                message_id,
                subject_id,
                key,
                unseal(tenant_key, sealed, _tenant_aad(ctx.tenant_id, message_id)),
            ),
            "b_subject_id": subject_id,
        }
        for message_id, sealed in rows
    ]
    if resealed:
        ctx.session.connection().execute(_RESEAL, resealed)
        for row in resealed:
            keep_loaded_in_step(
                ctx.session,
                OutboxMessage,
                (ctx.tenant_id, row["b_id"]),
                {"sealed": row["b_sealed"], "subject_id": subject_id},
            )
    return len(resealed)


def purge_requests(
    ctx: TenantContext, request_ids: Sequence[uuid.UUID], *, tenant_sealed_only: bool = False
) -> int:
    """Delete the letters of these rights requests, whatever their status (with the requests
    when they are purged). `tenant_sealed_only`: only those sealed under the tenant's key.
    The audit entries of their queueing stay (they hold ids only). How many were deleted."""
    if not request_ids:
        return 0
    stmt = delete(OutboxMessage).where(
        OutboxMessage.tenant_id == ctx.tenant_id, OutboxMessage.request_id.in_(request_ids)
    )
    if tenant_sealed_only:
        stmt = stmt.where(OutboxMessage.subject_id.is_(None))
    return int(cast(CursorResult[Any], ctx.session.execute(stmt)).rowcount or 0)


RIGHTS_LETTER = "rights_letter"
_DONE = (OutboxStatus.SENT.value, OutboxStatus.FAILED.value, OutboxStatus.CANCELLED.value)


def purge_done(ctx: TenantContext, done_before: datetime) -> int:
    """Delete the messages done with (sent, failed, cancelled) before `done_before`, body and
    all: campaigns, announcements, receipts, codes — every kind but rights letters, which stay
    with their request's record. The outbox is a way out, not an archive: that a message was
    queued, and to whom by id, stays in the audit chain. One audit entry with the count."""
    stmt = delete(OutboxMessage).where(
        OutboxMessage.tenant_id == ctx.tenant_id,
        OutboxMessage.status.in_(_DONE),
        OutboxMessage.created_at < done_before,  # `ix_outbox_status` narrows it to these
        OutboxMessage.kind != RIGHTS_LETTER,
        (OutboxMessage.sent_at.is_(None)) | (OutboxMessage.sent_at < done_before),
    )
    deleted = int(cast(CursorResult[Any], ctx.session.execute(stmt)).rowcount or 0)
    if deleted:
        audit.record(
            ctx,
            AuditEvent.MAIL_PURGED,
            details={"messages": deleted, "done_before": done_before.isoformat()},
        )
    return deleted


def purge_unlinked_rights_letters(ctx: TenantContext, written_before: datetime) -> int:
    """Delete the rights letters linked to no request written before `written_before`,
    whatever their status: the letter that tells a requester who the controller is (queued
    in the routing tenant's outbox, where no request of theirs exists) and the letters
    queued before migration 0008 linked a letter to its request. No purge of a request and
    no erasure reaches them (the routing letter is sealed under the tenant's key); the
    caller passes the records period (24 months). How many were deleted."""
    stmt = delete(OutboxMessage).where(
        OutboxMessage.tenant_id == ctx.tenant_id,
        # Every status: only to walk `ix_outbox_status` (tenant, status, created_at) through
        # the rows past the cutoff, not every campaign mail (their request_id is NULL too).
        OutboxMessage.status.in_([s.value for s in OutboxStatus]),
        OutboxMessage.created_at < written_before,
        OutboxMessage.kind == RIGHTS_LETTER,
        OutboxMessage.request_id.is_(None),
    )
    return int(cast(CursorResult[Any], ctx.session.execute(stmt)).rowcount or 0)


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass
class DeliveryReport:
    """Filled in after commit, when the messages have been handed to the backend."""

    backend: str
    scheduled: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    done: bool = False
    # Called with the number of messages whose outcome was just recorded (a progress bar).
    on_recorded: Callable[[int], None] | None = field(default=None, repr=False, compare=False)


def build_message(letter: Letter, message_id: uuid.UUID, sender: str) -> EmailMessage:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "pledge.invalid"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = letter.to
    message["Subject"] = letter.subject_line
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{message_id}@{domain}>"
    for name, value in letter.headers.items():
        message[name] = value
    message.set_content(letter.text)
    return message


def _deliver_after_commit(
    ctx: TenantContext,
    outgoing: Sequence[tuple[uuid.UUID, Letter]],
    report: DeliveryReport | None = None,
    *,
    claimed: bool = False,
) -> None:
    """Hand `outgoing` to the backend once the transaction commits, CHUNK at a time: each
    chunk claimed (unless `claimed`: the caller's transaction did), sent, its outcome
    recorded — a slow relay or a crash holds back one chunk, not a whole campaign."""
    backend = backends.current()
    if report is not None:
        report.scheduled = len(outgoing)
    if not backend.delivers or not outgoing:
        return  # nothing leaves: the messages stay queued in the outbox
    engine = ctx.session.get_bind()
    assert isinstance(engine, Engine)
    tenant_id = ctx.tenant_id
    items = list(outgoing)

    def deliver() -> None:
        sender = get_settings().smtp_from
        for start in range(0, len(items), CHUNK):
            if not claimed and backend.paused():
                # The relay was unreachable a moment ago (before, or at an earlier chunk): the
                # person who acted would wait for its timeout again. The rest stay queued;
                # the worker sends them (after FRESH). Claimed ones are the worker's: sent.
                break
            chunk = items[start : start + CHUNK]
            if not claimed:
                # Queued rows only: one another worker took (after FRESH) is its to send.
                mine = _claim(engine, tenant_id, [mid for mid, _ in chunk])
                chunk = [(mid, letter) for mid, letter in chunk if mid in mine]
            if not chunk:
                continue
            messages = [build_message(letter, mid, sender) for mid, letter in chunk]
            try:
                results = backend.send(messages)
            except Exception as exc:  # a backend bug must not lose the outcome
                results = [backends.describe_error(exc) for _ in messages]
            _record_outcome(engine, tenant_id, [mid for mid, _ in chunk], results, report)
        if report is not None:
            report.done = True

    after_commit(ctx.session, deliver, lane="mail")


def _claim(engine: Engine, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Take these queued messages for sending, in a transaction of its own; which were taken.
    One UPDATE: of two processes, the second finds them claimed (on PostgreSQL it waits for
    the first's row locks, then sees the row no longer queued)."""
    with Session(engine) as session, session.begin():
        taken = session.scalars(
            update(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == tenant_id,
                OutboxMessage.id.in_(ids),
                OutboxMessage.status == OutboxStatus.QUEUED.value,
            )
            .values(status=SENDING, sent_at=utcnow(), attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return set(taken)


def _record_outcome(
    engine: Engine,
    tenant_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    results: Sequence[str | None],
    report: DeliveryReport | None,
) -> None:
    """The outcome of claimed messages (their attempt was counted with the claim)."""
    now = utcnow()
    sent = [mid for mid, error in zip(ids, results, strict=True) if error is None]
    failed = [(mid, error) for mid, error in zip(ids, results, strict=True) if error is not None]
    claimed = (OutboxMessage.tenant_id == tenant_id) & (OutboxMessage.status == SENDING)
    with Session(engine) as session, session.begin():
        if sent:
            session.execute(
                update(OutboxMessage)
                .where(claimed, OutboxMessage.id.in_(sent))
                .values(status=OutboxStatus.SENT.value, sent_at=now, last_error=None)
                .execution_options(synchronize_session=False)
            )
        for mid, error in failed:
            session.execute(
                update(OutboxMessage)
                .where(claimed, OutboxMessage.id == mid)
                .values(status=OutboxStatus.FAILED.value, sent_at=None, last_error=error)
                .execution_options(synchronize_session=False)
            )
    if failed:
        # Counts only: an address or a server's reply must not reach the logs.
        log.warning("mail delivery: %d sent, %d failed", len(sent), len(failed))
    if report is not None:
        report.sent += len(sent)
        report.failed += len(failed)
        if report.on_recorded is not None:
            report.on_recorded(len(ids))


def _no_longer_allowed(ctx: TenantContext, rows: Sequence[OutboxMessage]) -> set[uuid.UUID]:
    """The campaign messages among `rows` the gate would not send now: the person withdrew
    consent, unsubscribed or objected since the campaign went out (a retry after the relay
    was down, or one the pause left queued). Each asked anew, audited, as any use is."""
    # Imported here: campaigns and the gate build on this package.
    from pledge.campaigns import service as campaigns
    from pledge.gate import service as gate

    refused: set[uuid.UUID] = set()
    details: dict[uuid.UUID, campaigns.CampaignDetail] = {}
    for row in rows:
        if row.kind != MessageKind.CAMPAIGN or row.campaign_id is None or row.subject_id is None:
            continue
        item = details.get(row.campaign_id)
        if item is None:
            item = details[row.campaign_id] = campaigns.detail(ctx, row.campaign_id)
        decision = gate.may(
            ctx, row.subject_id, item.purpose.slug, item.campaign.channel, topic=item.topic.slug
        )
        if not decision.allowed:
            refused.add(row.id)
    return refused


def deliver_pending(ctx: TenantContext, *, limit: int = 1000) -> DeliveryReport:
    """Hand failed messages (fewer than MAX_ATTEMPTS tries) and queued ones older than a
    minute to the backend after the transaction commits. Delivery is at least once: a crash
    between the send and the status update sends again. A message whose subject was erased
    cannot be opened any more: it is cancelled, never sent; so is a campaign's the gate no
    longer allows (`_no_longer_allowed`).

    The messages are claimed in this transaction (locked, skipping those another worker
    holds, on PostgreSQL; SQLite's writers take turns): a second worker running at once,
    or while these are being sent, does not send them again. A claim older than STALE — its
    sender died mid-send — becomes a failed attempt first, retried as any other; under a
    backend that sends nothing too (switched to after the sender died), or it would show as
    being sent for ever."""
    backend = backends.current()
    report = DeliveryReport(backend.name)
    now = utcnow()
    ctx.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.status == SENDING,
            OutboxMessage.sent_at < now - STALE,
        )
        .values(status=OutboxStatus.FAILED.value, sent_at=None, last_error="delivery interrupted")
        .execution_options(synchronize_session=False)
    )
    if not backend.delivers:
        return report
    rows = list(
        ctx.session.scalars(
            for_tenant(select(OutboxMessage), OutboxMessage, ctx.tenant_id)
            .where(
                or_(
                    OutboxMessage.status == OutboxStatus.FAILED.value,
                    # A fresh message is being delivered by its own transaction's commit hook.
                    and_(
                        OutboxMessage.status == OutboxStatus.QUEUED.value,
                        OutboxMessage.created_at <= now - FRESH,
                    ),
                ),
                OutboxMessage.attempts < MAX_ATTEMPTS,
            )
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    keys = _readable_keys(ctx, rows)
    refused = _no_longer_allowed(ctx, rows)
    outgoing: list[tuple[uuid.UUID, Letter]] = []
    for row in rows:
        opened = None if row.id in refused else _open(ctx, row, keys)
        if opened is None:
            row.status = OutboxStatus.CANCELLED.value
            row.last_error = "no longer allowed" if row.id in refused else "subject erased"
            report.cancelled += 1
            continue
        row.status, row.sent_at, row.attempts = SENDING, now, row.attempts + 1
        outgoing.append((row.id, opened))
    _deliver_after_commit(ctx, outgoing, report, claimed=True)
    if not outgoing:
        report.done = True
    return report


def _readable_keys(ctx: TenantContext, rows: Sequence[OutboxMessage]) -> dict[uuid.UUID, bytes]:
    pairs = [(r.subject_id, STANDARD_CLASS) for r in rows if r.subject_id is not None]
    return {sid: key for (sid, _c), key in ctx.subject_keys(pairs).items()}
