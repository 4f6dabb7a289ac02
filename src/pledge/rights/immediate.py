"""Requests answered at once, many to a transaction: opt-outs of sale or sharing and "limit
the use of my sensitive personal information" (CCPA 11 CCR 7026, 7027: no verification,
honoured as soon as they are received).

`answer` takes each request through the steps the one-at-a-time path would —
received, verified (none needed), started, completed; the subject matched by the
requester's address and its privacy state set, so the gate's next check denies; the
completion letter stored sealed with the request and queued in the outbox; a
`request.state_changed` webhook per transition — with one read per kind of row for the
whole batch, one flush and one audit append. Each request's audit entries come in the order
the rest of the rights package writes them for a request. `workflow.receive` answers a
single opt-out through it (a batch of one), so there is one implementation.

An objection's direct-marketing part is answered on receipt as well (GDPR Art. 21(3): it
stops, no questions): `objection_parts` says which purposes that is, and whether it is all
the objection asks (`workflow.receive` then answers it at once, through the fulfilment).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.consent import privacy_state
from pledge.core.clock import utcnow
from pledge.core.db import bulk_insert
from pledge.core.errors import InvalidInput
from pledge.mail import service as mail
from pledge.purposes import service as purposes
from pledge.rights import bundle, letters, transitions
from pledge.rights import service as rights
from pledge.rights.models import (
    RequestArtifact,
    RequestChannel,
    RequestEvent,
    RequestState,
    RequestType,
    RightsRequest,
)
from pledge.rights.service import Prepared, Requester, RequestInput
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind
from pledge.subjects.importer import ImportInvalid, RowError
from pledge.subjects.models import SubjectStatus
from pledge.webhooks import service as webhooks

S = RequestState
TYPES_IN_ORDER = (RequestType.OPT_OUT_SALE, RequestType.LIMIT_SENSITIVE)
TYPES = frozenset(TYPES_IN_ORDER)
TYPES_VALUES = frozenset(t.value for t in TYPES_IN_ORDER)
# What the completion letter says, and the outcome code, per type.
OUTCOMES: dict[RequestType, tuple[str, str]] = {
    RequestType.OPT_OUT_SALE: (
        "We no longer sell or share your personal information.",
        "opted_out",
    ),
    RequestType.LIMIT_SENSITIVE: (
        "We now use your sensitive personal information only as needed to provide our services.",
        "sensitive_limited",
    ),
}
NO_DATA = ("We hold no personal data about you.", "no_data")
SOURCE = "request"  # the privacy state's source, as the staff path records it
LETTER = "completed"


def objection_parts(
    ctx: TenantContext, asked: Sequence[str], subject_id: uuid.UUID | None
) -> tuple[list[str], bool]:
    """An objection's direct-marketing purposes (slugs), stopped on receipt, and whether
    they are all it asks — nothing then is left for staff to weigh (compelling grounds never
    keep marketing going), and the request is answered at once. `asked`: the purposes named;
    none names every purpose that applies to the person (`subject_id`: the live person the
    requester's address matches, if any), as the fulfilment reads it — never all marketing
    here, so that whether it is answered at once (which the privacy center shows) does not
    tell whether the address is known. A purpose not known here is left to staff."""
    if asked:
        found = [purposes.find_purpose(ctx, slug) for slug in asked]
        marketing = [p.slug for p in found if p is not None and p.is_marketing]
        return marketing, len(marketing) == len(asked)
    if subject_id is None:
        return [], False
    return [p.slug for p in bundle.purposes_applying(ctx, subject_id) if p.is_marketing], False


def prepare(ctx: TenantContext, data: RequestInput) -> Prepared:
    """`rights.prepare`, refusing a type that is not answered at once."""
    prepared = rights.prepare(ctx, data)
    if prepared.type not in TYPES:
        raise InvalidInput(
            f"a request of type {prepared.type.value} needs verification: submit it on its own"
        )
    return prepared


def answer_many(
    ctx: TenantContext, inputs: Sequence[RequestInput]
) -> list[RightsRequest | InvalidInput]:
    """Receive and complete every valid input; an invalid one gets its error in its place
    and writes nothing. All in the caller's transaction."""
    results: list[RightsRequest | InvalidInput | None] = [None] * len(inputs)
    valid: list[tuple[int, Prepared]] = []
    for position, data in enumerate(inputs):
        try:
            valid.append((position, prepare(ctx, data)))
        except InvalidInput as exc:
            results[position] = exc
    for (position, _), request in zip(valid, answer(ctx, [p for _, p in valid]), strict=True):
        results[position] = request
    return [r for r in results if r is not None]


class ListTooLong(InvalidInput):
    """A list longer than the caller takes in one go."""


def read_list(
    ctx: TenantContext,
    text: str,
    *,
    request_type: str,
    jurisdiction: str | None,
    channel: str,
    agent: Requester | None = None,
    limit: int | None = None,
) -> list[Prepared]:
    """A list of requesters (CSV text with a header: `email`, optionally `name`), each a
    request of `request_type`, validated whole: `ImportInvalid` lists every bad line and
    nothing is received. `agent`: who sends the list for the people on it (name, e-mail,
    permission). `limit`: refuse a list of more people, before checking them. Read the file
    first (`importer.read_text`): in a writing context, on SQLite, the lock is held meanwhile."""
    if request_type not in TYPES_VALUES:
        raise InvalidInput(
            "only opt_out_sale and limit_sensitive requests are answered from a list; "
            "other types need each requester verified"
        )
    jurisdiction = rights.resolve_jurisdiction(ctx, jurisdiction)
    by = agent or Requester("")
    # What is wrong with the agent is said once, not on every line.
    if channel == RequestChannel.AUTHORIZED_AGENT.value:
        if not by.agent_permission:
            raise InvalidInput(rights.AGENT_NEEDS)
        if by.agent_email:
            rights.agent_address(by.agent_email)
    elif by.agent_permission:
        raise InvalidInput("give the agent's name or e-mail with their signed permission")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise ImportInvalid([RowError(1, f"not a CSV header: {exc}")], done="received") from None
    if "email" not in header:
        raise ImportInvalid([RowError(1, "the file needs an email column")], done="received")
    reader.fieldnames = header
    prepared: list[Prepared] = []
    errors: list[RowError] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(reader.line_num, f"not CSV: {exc}"))
            break
        if limit is not None and len(prepared) + len(errors) >= limit:
            raise ListTooLong(f"the list has more than {limit:,} people")
        requester = Requester(
            (row.get("email") or "").strip(),
            (row.get("name") or "").strip(),
            by.agent_name,
            by.agent_email,
            by.agent_permission,
        )
        try:
            prepared.append(
                prepare(ctx, RequestInput(request_type, requester, jurisdiction, channel))
            )
        except InvalidInput as exc:
            errors.append(RowError(reader.line_num, exc.detail))
    if errors:
        raise ImportInvalid(errors, done="received")
    if not prepared:
        raise ImportInvalid([RowError(0, "the file lists nobody")], done="received")
    return prepared


@dataclass
class _Letter:
    request: RightsRequest
    to: str
    text: str
    artifact: dict[str, Any]  # the `RequestArtifact` row


def answer(ctx: TenantContext, batch: Sequence[Prepared]) -> list[RightsRequest]:
    """Receive and complete each prepared request (in order), in the caller's transaction."""
    if not batch:
        return []
    now = utcnow()
    indexes = [rights.contact_index(ctx, p.email) for p in batch]
    flags = rights.repetitive_flags(ctx, list(zip(indexes, batch, strict=True)), now)
    requests = [
        rights.new_request(ctx, p, index, now=now, repetitive=flag)
        for p, index, flag in zip(batch, indexes, flags, strict=True)
    ]
    holders = reading.find_subject_ids(ctx, IdentityKind.EMAIL, [p.email for p in batch])
    rows = reading.get_subject_rows(ctx, list(holders.values()))
    live = {i: row for i, row in rows.items() if row.status != SubjectStatus.ERASED.value}
    letters.load_subject_keys(ctx, list(live))
    memo = rights.tx_memo(ctx)

    entries: list[list[audit.PendingEntry]] = []
    events: list[dict[str, Any]] = []
    sent: list[_Letter] = []
    for request, prepared in zip(requests, batch, strict=True):
        memo[("pauses", request.id)] = []  # a new request has none
        request.acknowledged_at = now  # by the completion letter
        request.verification_level = "none"
        mine: list[audit.PendingEntry] = []
        row, entry = rights.event_parts(
            ctx, request, "received", None, S.RECEIVED, rights.received_details(request)
        )
        events.append(row)
        mine.append(entry)
        _move(ctx, request, S.VERIFIED, "verified", {"level": "none"}, events, mine)
        request.subject_id = holders.get(prepared.email)
        _move(ctx, request, S.IN_PROGRESS, "started", None, events, mine)
        subject = live.get(request.subject_id) if request.subject_id is not None else None
        outcome, code = NO_DATA
        if subject is not None:
            outcome, code = OUTCOMES[prepared.type]
            if prepared.type is RequestType.OPT_OUT_SALE:
                change = privacy_state.sale_opt_out_change(subject, True, SOURCE)
                if change is not None:
                    privacy_state.announce_sale_change(ctx, subject, change, SOURCE)
            else:
                change = privacy_state.limit_sensitive_change(subject, True)
            if change is not None:
                mine.append(privacy_state.state_change_entry(subject, change, SOURCE))
        request.outcome_code = code
        _move(ctx, request, S.COMPLETED, "completed", {"outcome": code}, events, mine)
        rights.refresh_due(ctx, request)
        text = letters.render(ctx, request, LETTER, private=prepared.private, outcome=outcome)
        artifact = letters.letter_row(ctx, request, LETTER, text)
        sent.append(_Letter(request, letters.addressee(prepared.private), text, artifact))
        entries.append(mine)
    # Built whole before they reach the session: one INSERT each, no UPDATE after it.
    ctx.session.add_all(requests)
    ctx.session.flush()  # the rows below refer to them
    bulk_insert(ctx.session, RequestEvent, events)
    bulk_insert(ctx.session, RequestArtifact, [s.artifact for s in sent])

    # The letters, in one insert into the outbox; sealed under the subject's key while it
    # exists (an erasure then reaches them), else under the tenant's.
    abouts = [s.request.subject_id if s.artifact["key_scope"] == "subject" else None for s in sent]
    message_ids = mail.queue_many(
        ctx,
        [
            mail.Addressed(
                mail.letter(s.to, letters.subject_line(s.request, LETTER), s.text),
                about,
                s.request.id,  # purged with the request
            )
            for s, about in zip(sent, abouts, strict=True)
        ],
        kind="rights_letter",
    )
    chain: list[audit.PendingEntry] = []
    for mine, s, about, message_id in zip(entries, sent, abouts, message_ids, strict=True):
        chain += mine
        chain.append(mail.queued_entry(message_id, about, "rights_letter"))
        chain.append(letters.sent_entry(s.request, LETTER, s.artifact["id"]))
        chain.append(transitions.fulfilled_entry(s.request))
    audit.record_many(ctx, chain)
    return requests


def _move(
    ctx: TenantContext,
    request: RightsRequest,
    to: RequestState,
    kind: str,
    details: dict[str, str] | None,
    events: list[dict[str, Any]],
    entries: list[audit.PendingEntry],
) -> None:
    """`transitions.transition`, with the timeline row and audit entry collected for the batch."""
    now = utcnow()
    before = transitions.move(request, to, now)
    row, entry = rights.event_parts(ctx, request, kind, before, to, details)
    events.append(row)
    entries.append(entry)
    webhooks.emit(
        ctx,
        "request.state_changed",
        transitions.state_changed(request, before, to, now),
        request_id=request.id,  # purged with it
    )
