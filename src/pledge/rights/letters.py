"""Letters to requesters, from templates per purpose of the letter, filled per request type,
jurisdiction and outcome: the reasons of a denial, the authority to complain to (GDPR Art.
12(4); seed 000 "If we deny your request, we will explain why"), appeal instructions where a
state grants an appeal. Each letter is stored with the request (sealed) and sent through the
mail outbox."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jinja2 import meta
from sqlalchemy import CursorResult, Table, bindparam, delete, select, update
from sqlalchemy.orm import make_transient_to_detached

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.db import bulk_insert, flush_changes_to, keep_loaded_in_step
from pledge.core.errors import NotFound
from pledge.core.ids import new_id
from pledge.crypto.aead import seal, unseal
from pledge.crypto.keystore import KeyMissing, KeyShredded
from pledge.mail import service as mail
from pledge.rights import service as rights
from pledge.rights import status_links
from pledge.rights.models import RequestArtifact, RightsRequest
from pledge.subjects import reading
from pledge.subjects.identity import InvalidIdentity, normalise_email
from pledge.subjects.models import STANDARD_CLASS
from pledge.web.templating import templates

TYPE_LABELS = {
    "access": "access (a copy of your data)",
    "access_categories": "right to know (categories)",
    "portability": "data portability",
    "rectification": "correction",
    "erasure": "erasure",
    "restriction": "restriction of processing",
    "objection": "objection",
    "opt_out_sale": "opt-out of sale or sharing",
    "limit_sensitive": "limit the use of sensitive information",
    "withdraw_consent": "withdrawal of consent",
    "automated_decision": "review of an automated decision",
}
SUBJECTS = {
    "acknowledgement": "We received your request",
    "verify": "Confirm your request",
    "extended": "We need more time for your request",
    "need_information": "We need more information for your request",
    "completed": "Your request is complete",
    "denied": "About your request",
    "appeal_decision": "Your appeal",
    "appeal_extended": "We need more time to decide your appeal",
    "closed_unverified": "Your request was closed",
    "restriction_lifting": "The restriction of your data is being lifted",
    "power_of_attorney_accepted": "Someone is acting for you under a power of attorney",
}


def _subject_key(ctx: TenantContext, subject_id: uuid.UUID) -> bytes | None:
    """The subject's standard data key, or None when it is shredded or missing (read once
    per transaction: `TenantContext.subject_keys`)."""
    try:
        return ctx.subject_key(subject_id, STANDARD_CLASS)
    except (KeyShredded, KeyMissing):
        return None


def load_subject_keys(ctx: TenantContext, subject_ids: Sequence[uuid.UUID]) -> None:
    """Read many subjects' standard data keys in one keystore call, for the letters of a
    batch (`_subject_key` then finds them in the transaction's memo)."""
    ctx.subject_keys([(s, STANDARD_CLASS) for s in subject_ids])


def artifact_key(ctx: TenantContext, request: RightsRequest) -> tuple[str, bytes]:
    """Under the subject's data key when the request is matched to a subject (an erasure
    then reaches the letters too), else under the tenant's requests key."""
    if request.subject_id is not None:
        key = _subject_key(ctx, request.subject_id)
        if key is not None:
            return "subject", key
    return "tenant", ctx.keystore.derived_key(ctx.tenant_id, "rights-request")


def artifact_row(
    ctx: TenantContext,
    request: RightsRequest,
    scope: tuple[str, bytes],
    *,
    kind: str,
    name: str,
    media_type: str,
    content: bytes,
) -> dict[str, Any]:
    """A letter or file of the request (the `RequestArtifact` columns), sealed under `scope`
    (`artifact_key`'s answer)."""
    key_scope, key = scope
    artifact_id = new_id()
    return {
        "tenant_id": ctx.tenant_id,
        "id": artifact_id,
        "request_id": request.id,
        "kind": kind,
        "media_type": media_type,
        "name": name,
        "size": len(content),
        "key_scope": key_scope,
        "sealed": seal(AESGCM(key), content, b"pledge:artifact:v1|" + artifact_id.bytes),
        "created_at": utcnow(),
    }


def letter_row(
    ctx: TenantContext, request: RightsRequest, letter: str, text: str
) -> dict[str, Any]:
    """A letter as kept with the request (`artifact_row`)."""
    return artifact_row(
        ctx,
        request,
        artifact_key(ctx, request),
        kind="letter",
        name=f"{letter}.txt",
        media_type="text/plain; charset=utf-8",
        content=text.encode(),
    )


def store_artifact(
    ctx: TenantContext,
    request: RightsRequest,
    *,
    kind: str,
    name: str,
    media_type: str,
    content: bytes,
) -> RequestArtifact:
    row = artifact_row(
        ctx,
        request,
        artifact_key(ctx, request),
        kind=kind,
        name=name,
        media_type=media_type,
        content=content,
    )
    return _insert_artifact(ctx, row)


def _insert_artifact(ctx: TenantContext, row: dict[str, Any]) -> RequestArtifact:
    """Write an artifact's row at once (a download link may name it next), without the unit
    of work's flush — every request stores several — and hold it in the session as a row it
    has just read. The request's row is in the data store already."""
    bulk_insert(ctx.session, RequestArtifact, [row])
    artifact = RequestArtifact(**row)
    make_transient_to_detached(artifact)
    ctx.session.add(artifact)
    return artifact


def open_artifact(
    ctx: TenantContext, request: RightsRequest, artifact: RequestArtifact
) -> bytes | None:
    """The artifact's content, or None once the subject's key is shredded."""
    if artifact.key_scope == "subject":
        if request.subject_id is None:
            return None
        try:
            key = ctx.subject_key(request.subject_id, STANDARD_CLASS)
        except (KeyShredded, KeyMissing):
            return None
    else:
        key = ctx.keystore.derived_key(ctx.tenant_id, "rights-request")
    return unseal(AESGCM(key), artifact.sealed, b"pledge:artifact:v1|" + artifact.id.bytes)


def list_artifacts(
    ctx: TenantContext, request: RightsRequest, *, kinds: tuple[str, ...] = ()
) -> list[RequestArtifact]:
    """The request's letters and files, oldest first: names and sizes, nothing decrypted."""
    stmt = for_tenant(select(RequestArtifact), RequestArtifact, ctx.tenant_id).where(
        RequestArtifact.request_id == request.id
    )
    if kinds:
        stmt = stmt.where(RequestArtifact.kind.in_(kinds))
    return list(ctx.session.scalars(stmt.order_by(RequestArtifact.created_at, RequestArtifact.id)))


def read_artifact(
    ctx: TenantContext, request: RightsRequest, artifact_id: uuid.UUID | str, *, by: str
) -> tuple[RequestArtifact, bytes]:
    """One letter or file of the request, decrypted for `by` (staff, requester); audited.
    An artifact of another request is NotFound; so is one whose subject was erased."""
    item = get_in_tenant(ctx.session, RequestArtifact, ctx.tenant_id, artifact_id, what="artifact")
    if item.request_id != request.id:
        raise NotFound("no such artifact")
    content = open_artifact(ctx, request, item)
    if content is None:
        raise NotFound("this file was erased")
    audit.record(
        ctx,
        AuditEvent.RIGHTS_DOWNLOAD,
        subject_id=request.subject_id,
        details={"request_id": str(request.id), "artifact": item.kind, "by": by},
    )
    return item, content


def letters_for_requester(
    ctx: TenantContext, request: RightsRequest
) -> list[tuple[RequestArtifact, str | None]]:
    """The letters sent about the request, for the requester's status page: decrypted (None
    once erased), audited once. The letters to the person the request is about are left out:
    the verification carries the code, and the notice of an accepted power of attorney is
    theirs, written from what is on file about them — the requester may be their agent."""
    found = [
        (item, open_artifact(ctx, request, item))
        for item in list_artifacts(ctx, request, kinds=("letter",))
        if item.name not in _PERSONS_OWN
    ]
    audit.record(
        ctx,
        AuditEvent.SUBJECT_VIEWED,
        subject_id=request.subject_id,
        details={"request_id": str(request.id), "part": "letters", "count": len(found)},
    )
    return [(item, content.decode() if content is not None else None) for item, content in found]


# Letters that go to the person the request is about even when an agent acts for them: the
# verification is the person's own confirmation (issue 4 §3; CCPA 11 CCR 7063(a)).
TO_THE_PERSON = frozenset({"verify"})
# Kept from the requester's status page (`letters_for_requester`). The notice of an accepted
# power of attorney goes to the address on file, given by the caller (`send_pending`'s `to`).
_PERSONS_OWN = frozenset({"verify.txt", "power_of_attorney_accepted.txt"})


def addressee(private: dict[str, Any], letter: str = "") -> str:
    """Where the request's `letter` goes: the agent when one acts, else the requester; the
    verification always to the person it is about, so that an agent cannot confirm alone."""
    agent = private.get("agent") or {}
    if letter in TO_THE_PERSON:
        return str(private["email"])
    return str(agent.get("email") or private["email"])


def subject_line(request: RightsRequest, letter: str) -> str:
    return f"{SUBJECTS.get(letter, 'Your request')} ({request.reference})"


def sent_entry(request: RightsRequest, letter: str, artifact_id: uuid.UUID) -> audit.PendingEntry:
    return audit.PendingEntry(
        AuditEvent.RIGHTS_LETTER_SENT,
        request.subject_id,
        {"request_id": str(request.id), "letter": letter, "artifact_id": str(artifact_id)},
    )


@functools.cache
def _variables(name: str) -> frozenset[str]:
    """The variables a template (and what it includes) reads."""
    env = templates.env
    assert env.loader is not None
    tree = env.parse(env.loader.get_source(env, name)[0])
    found = set(meta.find_undeclared_variables(tree))
    for included in meta.find_referenced_templates(tree):
        if included is not None:
            found |= _variables(included)
    return frozenset(found)


def render(
    ctx: TenantContext,
    request: RightsRequest,
    letter: str,
    *,
    private: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """The letter's text. `private`: the request's sealed part when the caller holds it."""
    name = f"letters/{letter}.txt"
    private = private or rights.private_part(ctx, request)
    law = rights.rule(request)
    context: dict[str, Any] = {
        "request": request,
        "tenant": ctx.settings,
        "name": private.get("name"),
        "agent": private.get("agent"),  # who acts for the person, if anyone
        "rule": law,
        "type_label": TYPE_LABELS.get(request.type, request.type),
        "appeal": law.appeal is not None,
        "judicial": request.jurisdiction in {"EU", "UK"},
    }
    wanted = _variables(name)
    if "status_url" in wanted:
        # The requester's way back to the request: its letters, its status, the appeal form.
        context["status_url"] = status_links.status_url(ctx, request)
    if wanted & {"due", "first_due"}:  # the clock only for letters that quote it
        due = rights.deadlines(ctx, request)
        context.update(due=due.due, first_due=due.first_due)
    context.update(extra)
    return templates.env.get_template(name).render(**context)


def send(ctx: TenantContext, request: RightsRequest, letter: str, **extra: Any) -> RequestArtifact:
    """Render, keep with the request, and queue for the requester (or their agent:
    `addressee`)."""
    return send_pending(ctx, request, letter, None, **extra)


def send_pending(
    ctx: TenantContext,
    request: RightsRequest,
    letter: str,
    pending: list[audit.PendingEntry] | None,
    *,
    to: str | None = None,
    **extra: Any,
) -> RequestArtifact:
    """`send`, with its audit entries (mail queued, letter sent) added to `pending` when
    given, for the caller to record in this transaction with the entries around them.
    `to`: the address when it is not the request's (`addressee`) — the person's on file."""
    private = rights.private_part(ctx, request)
    text = render(ctx, request, letter, private=private, **extra)
    artifact = _insert_artifact(ctx, letter_row(ctx, request, letter, text))
    # Sealed under the subject's key while it exists; after an erasure, under the tenant's.
    about = request.subject_id if artifact.key_scope == "subject" else None
    entries: list[audit.PendingEntry] = [] if pending is None else pending
    mail.queue(
        ctx,
        to=to or addressee(private, letter),
        subject_line=subject_line(request, letter),
        text=text,
        headers={},
        kind="rights_letter",
        subject_id=about,
        request_id=request.id,
        pending=entries,
    )
    entries.append(sent_entry(request, letter, artifact.id))
    if pending is None:
        audit.record_many(ctx, entries)  # mail queued, then the letter: one append
    return artifact


# ---------------------------------------------------------------------------------------------
# What an erasure reaches


def _artifact_aad(artifact_id: uuid.UUID) -> bytes:
    return b"pledge:artifact:v1|" + artifact_id.bytes


_ARTIFACTS = cast(Table, RequestArtifact.__table__)
# Prebuilt, as each request is verified: its letters stored before the match, and their
# re-sealing under the subject's key, by primary key, in one executemany.
_UNDER_TENANT_KEY = select(_ARTIFACTS.c.id, _ARTIFACTS.c.sealed).where(
    _ARTIFACTS.c.tenant_id == bindparam("tenant_id"),
    _ARTIFACTS.c.request_id.in_(bindparam("request_ids", expanding=True)),
    _ARTIFACTS.c.key_scope == "tenant",
)
_RESEAL = (
    update(_ARTIFACTS)
    .where(_ARTIFACTS.c.tenant_id == bindparam("b_tenant_id"), _ARTIFACTS.c.id == bindparam("b_id"))
    .values(sealed=bindparam("b_sealed"), key_scope="subject")
)


def seal_under_subject(
    ctx: TenantContext, subject_id: uuid.UUID, request_ids: Sequence[uuid.UUID]
) -> tuple[int, int] | None:
    """Re-seal the letters and files of these requests (matched to `subject_id`) that are
    still under the tenant's requests key — stored before the match: the acknowledgement,
    the verification letter, a proof sent with the request — and their outbox copies, under
    the subject's data key, so that its erasure reaches them. How many of each (files,
    mails); None, and nothing changed, when the subject has no standard data key (missing,
    or already shredded)."""
    key = _subject_key(ctx, subject_id)
    if key is None:
        return None
    if not request_ids:
        return 0, 0
    tenant = AESGCM(ctx.keystore.derived_key(ctx.tenant_id, "rights-request"))
    mine = AESGCM(key)
    flush_changes_to(ctx.session, RequestArtifact)  # a Core statement does not autoflush
    rows = ctx.session.execute(
        _UNDER_TENANT_KEY, {"tenant_id": ctx.tenant_id, "request_ids": list(request_ids)}
    ).all()
    resealed: list[dict[str, Any]] = []
    for artifact_id, sealed in rows:
        aad = _artifact_aad(artifact_id)
        resealed.append(
            {
                "b_tenant_id": ctx.tenant_id,
                "b_id": artifact_id,
                "b_sealed": seal(mine, unseal(tenant, sealed, aad), aad),
            }
        )
    if resealed:
        ctx.session.connection().execute(_RESEAL, resealed)
        for row in resealed:
            keep_loaded_in_step(
                ctx.session,
                RequestArtifact,
                (ctx.tenant_id, row["b_id"]),
                {"sealed": row["b_sealed"], "key_scope": "subject"},
            )
    return len(resealed), mail.seal_under_subject(ctx, request_ids, subject_id)


def _forget(
    ctx: TenantContext, request_ids: Sequence[uuid.UUID], *, tenant_sealed_only: bool
) -> tuple[int, int]:
    """Delete the letters and files of these requests, and their outbox copies; how many of
    each (files, mails)."""
    stmt = delete(RequestArtifact).where(
        RequestArtifact.tenant_id == ctx.tenant_id, RequestArtifact.request_id.in_(request_ids)
    )
    if tenant_sealed_only:
        stmt = stmt.where(RequestArtifact.key_scope == "tenant")
    files = int(cast(CursorResult[Any], ctx.session.execute(stmt)).rowcount or 0)
    return files, mail.purge_requests(ctx, request_ids, tenant_sealed_only=tenant_sealed_only)


@dataclass(frozen=True)
class Reached:
    """What an erasure reached among the person's rights requests (`reach_erasure`): counts
    only, for its audit entry and its answer."""

    requests: int = 0  # the person's requests looked at: matched, or from their address
    files_deleted: int = 0  # of requests never matched (of matched ones if the key is gone)
    mails_deleted: int = 0  # their copies in the mail outbox
    files_sealed: int = 0  # stored before a match: now under the key the erasure destroys
    mails_sealed: int = 0

    @property
    def anything(self) -> bool:
        return any((self.files_deleted, self.mails_deleted, self.files_sealed, self.mails_sealed))

    def details(self) -> dict[str, Any]:
        return {
            "by": "erasure",
            "requests": self.requests,
            "files_deleted": self.files_deleted,
            "mails_deleted": self.mails_deleted,
            "files_sealed_for_erasure": self.files_sealed,
            "mails_sealed_for_erasure": self.mails_sealed,
        }


def reach_erasure(ctx: TenantContext, subject_id: uuid.UUID) -> Reached:
    """Called by the first erasure of a subject, before its keys are destroyed
    (`subjects.erasure.erase_subject`), so that it reaches what the person's rights
    requests stored under the tenant's key:

    * requests matched to the subject: their letters and files still under the tenant's key
      (stored before the match) and the outbox copies are re-sealed under the subject's
      data key, destroyed a moment later (deleted if that key is gone already);
    * requests never matched (never verified) from one of the person's addresses (its
      keyed hash, `contact_index`: the address on file, those of its matched requests):
      their letters, files and outbox copies are deleted — the address, the name and a
      proof sent with them are the person's, whoever typed them.

    The request rows, timelines and audit entries stay: the record that a request was made
    and answered, until the purge. So does what is written after the erasure (under the
    tenant's key): the erasure's own letter. What was reached is counted in an audit entry
    of its own (`rights.purged`, "by": "erasure"; `subject.erased` is written elsewhere)
    and returned; a second call finds nothing left and writes nothing."""
    matched = ctx.session.execute(
        for_tenant(
            select(RightsRequest.id, RightsRequest.contact_index), RightsRequest, ctx.tenant_id
        ).where(RightsRequest.subject_id == subject_id)
    ).all()
    ids = [row.id for row in matched]
    indexes = {row.contact_index for row in matched}
    email = reading.read_subject(ctx, subject_id, audited=False).value("email")
    with contextlib.suppress(InvalidIdentity):
        if email:
            indexes.add(rights.contact_index(ctx, normalise_email(email)))
    files_sealed = mails_sealed = files_deleted = mails_deleted = 0
    if ids:
        sealed = seal_under_subject(ctx, subject_id, ids)
        if sealed is None:
            files_deleted, mails_deleted = _forget(ctx, ids, tenant_sealed_only=True)
        else:
            files_sealed, mails_sealed = sealed
    strangers: list[uuid.UUID] = []
    if indexes:
        strangers = list(
            ctx.session.scalars(
                for_tenant(select(RightsRequest.id), RightsRequest, ctx.tenant_id).where(
                    RightsRequest.subject_id.is_(None),
                    RightsRequest.contact_index.in_(sorted(indexes)),
                )
            )
        )
    if strangers:
        files, mails = _forget(ctx, strangers, tenant_sealed_only=False)
        files_deleted += files
        mails_deleted += mails
    reached = Reached(
        len(ids) + len(strangers), files_deleted, mails_deleted, files_sealed, mails_sealed
    )
    if reached.anything:
        audit.record(
            ctx, AuditEvent.RIGHTS_PURGED, subject_id=subject_id, details=reached.details()
        )
    return reached
