"""Rights requests: access bundles, a big access, a big erasure and end-to-end throughput.

    python bench/requests.py --subjects 100000 --interactions 10 --big 10000 [--profile PART]

Set-up (not timed), on the embedded SQLite default: a tenant with the Clik preset (seed 004;
its "marketing-preferences" purpose is a legal obligation, so every subject's Art. 15
information names a purpose), then N subjects with `--interactions` interactions each and two
subjects with `--big` interactions each — "big" (measured) and "spare" (used only by the
failure drill below). Everything goes through the real bulk service path, in transactions of
500 subjects (`runtime.tenant_context`): `subjects.service.prepare_subject` (validation, blind
indexes), `store_subjects` (data keys, sealed records, identities, audit entries) and
`store_interactions` (sealed payloads, one audit entry per interaction), so the data is
encrypted exactly as in production. Each subject has an e-mail, a phone, first and last name
and a company; interactions are orders, chats, e-mails and site visits with JSON payloads of
100–300 bytes, spread over three years. Mail stays in the outbox (`OutboxOnlyBackend`).

After the set-up, `settle_heap` freezes what it left in memory out of the garbage
collector's sight, as `pledge serve` does with its start-up objects.

Requests are submitted with `rights.workflow.receive` (acknowledgement and verification
letters, sealed in the outbox; an opt-out gets its completion letter only) and verified
with `verification.confirm`, given the secret of the verification link that `receive`
returns (the link and the six-digit code are two forms of the same challenge) and the first
name on file as the data point GDPR requests need here.

Measured:

(a) `access_p50_s`/`access_p95_s`: 200 random subjects, one access request each (EU). Untimed:
    receive, then verify. Timed: "verified" to "bundle ready" — one transaction,
    `with runtime.tenant_context(slug) as ctx: fulfilment.fulfil(ctx, rights.get_request(...))`
    including the commit: decrypt the subject, Art. 15 information, JSON + CSV + HTML zipped,
    bundle sealed, download link, completion letter, audit entries.
(b) `big_access_p95_s`: the same for the subject with `--big` interactions, 7 runs, a new
    request each; p95 (interpolated, so close to the slowest run). One bundle is downloaded
    afterwards and checked (every interaction present, fields as ingested).
    `raw_big_s`: the baseline, in the same run: a plaintext copy of every subject's
    interactions (the same rows: kind, occurred_at, category, payload as JSON text) in a bare
    SQLite table `interactions(id INTEGER PRIMARY KEY, subject_id, kind, occurred_at,
    category, source, payload)`, same pragmas (WAL, synchronous=NORMAL), with an index on
    (subject_id, occurred_at). Timed: `SELECT * FROM interactions WHERE subject_id = ? ORDER BY
    occurred_at DESC` (the order of the bundle), the rows written as a JSON document by
    orjson with each payload's stored text copied in as it is (as the bundle does) and as a
    CSV, both zipped (deflate at the bundle's level, `bundle.ZIP_LEVEL`). Not in the
    baseline: decryption, the subject's fields, the Art. 15 information, the HTML page,
    sealing the bundle, the request's state machine, letters, audit entries, the commit.
    Median of 7 runs. `ratio` = big_access_p95_s / raw_big_s.
(c) `big_erase_s`: erasure of the big subject, verified (untimed), then
    `fulfilment.fulfil` in one transaction with its commit: keys shredded in the keystore,
    rows deleted, recipients notified, letter, audit. Checked afterwards: no row left.
    All-or-nothing, untimed, on the spare subject: the recipient notification (which runs
    after the rows were deleted, in the same transaction) is made to raise; afterwards every
    row of the subject must still be there and the request still "verified". By design the
    data keys are shredded first, in the keystore's own transaction (docs/decisions/0002),
    so those rows are then unreadable: `erase_atomic_rows` says whether every row survived,
    `erase_failed_rows_readable` whether they can still be decrypted, `erase_retry_ok`
    whether fulfilling the same request again finishes the erasure.
(d) `access_per_s`: 1,000 access requests end to end, each in three transactions as the
    privacy center and the job runner do it (receive; verify; fulfil), sequentially.
    `optout_per_s`: 10,000 opt-outs of sale/sharing (US-CA) through the batch intake —
    `immediate.answer_many`, which `POST /api/v1/requests/batch` calls — 500 to a
    transaction (an authorized agent acting for many consumers sends them so); each is
    received, matched, applied, answered by letter, audited and its webhooks queued exactly
    as one sent alone (a test holds the two equal). `optout_single_per_s`: another 10,000,
    `workflow.receive` each in its own transaction, as the privacy center and
    `POST /api/v1/requests` take them. `raw_optout_per_s` / `raw_optout_single_per_s`: the
    baselines, the same requesters in batches of 500 / one to a transaction: the rows an
    opt-out writes, through prebuilt Core statements (`part_raw_optout` says what is in it
    and what is not); `optout_ratio` / `optout_single_ratio` = Pledge's seconds / the
    baseline's.

Subjects of (a), (d) access and the two sets of (d) opt-outs are disjoint random samples
(when N allows). `--profile PART` (access, big, erase, e2e, optout or batch) runs cProfile
over that part's timed code and prints the top functions to stderr; its figures are then
slowed down.
Prints {"access_p50_s", "access_p95_s", "big_access_p95_s", "raw_big_s", "ratio",
"big_erase_s", "access_per_s", "optout_per_s", "optout_single_per_s", …} as the last line of
stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import hashlib
import hmac
import io
import json
import os
import pstats
import random
import sqlite3
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from unittest import mock

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, bindparam, func, insert, select, update

from _common import (
    SEED,
    BenchEnv,
    Person,
    Progress,
    bench_env,
    emit,
    field_inputs,
    generate_people,
    log,
    percentile,
    settle_heap,
)
from pledge.access.context import TenantContext
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.core.clock import utcnow
from pledge.mail import backends
from pledge.mail.models import OutboxMessage
from pledge.presets import clik
from pledge.rights import bundle, downloads, fulfilment, immediate, verification, workflow
from pledge.rights import service as rights
from pledge.rights.models import RequestArtifact, RequestEvent, RightsRequest
from pledge.rights.service import Requester, RequestInput
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.models import Interaction, Subject, SubjectIdentity, SubjectRecord
from pledge.subjects.vault import IdentityIndexer
from pledge.webhooks import service as webhooks

BATCH = 500  # subjects per set-up transaction
BIG_BATCH = 5_000  # interactions of a big subject per set-up transaction
ACCESS_SAMPLE = 200
BIG_RUNS = 7
E2E_ACCESS = 1_000
OPTOUTS = 10_000
OPTOUT_BATCH = 500  # opt-outs per transaction through the batch intake
SPAN = timedelta(days=3 * 365)
EPOCH = datetime(2023, 2, 1, tzinfo=UTC)
PARTS = ("access", "big", "erase", "e2e", "optout", "batch")
TOP = 30

# kind, category, source
_KINDS = (
    ("order", "user.behavior.purchase_history", "direct"),
    ("chat", "user.content.private", "direct"),
    ("email", "user.content.private", "direct"),
    ("visit", "user.behavior.browsing_history", "automatic"),
)
_PRODUCTS = ("Clik Pro", "Clik Team", "Clik Enterprise", "Reports add-on", "SSO add-on")
_PHRASES = (
    "Hello, I cannot log in since the last update.",
    "Could you resend the invoice for last month?",
    "The export to CSV stops at 500 rows.",
    "Thanks, that fixed it.",
    "Is there a discount for charities?",
    "Please add two more seats to our plan.",
    "The mobile app crashes when I open a report.",
    "When does the new pricing start?",
)
_PAGES = ("/pricing", "/features", "/docs/getting-started", "/blog/release-notes", "/support")

# One interaction in plaintext: kind, occurred_at, category, source, payload.
Plain = tuple[str, datetime, str, str, dict[str, Any]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000, help="typical subjects")
    parser.add_argument(
        "--interactions", type=int, default=10, help="interactions per typical subject"
    )
    parser.add_argument("--big", type=int, default=10_000, help="interactions of the big subject")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic data")
    parser.add_argument(
        "--profile", choices=PARTS, help="cProfile this part's timed code (slows it down)"
    )
    args = parser.parse_args()
    if args.subjects < 1 or args.interactions < 0 or args.big < 1:
        parser.error("--subjects and --big must be at least 1, --interactions at least 0")
    return args


# ---------------------------------------------------------------------------------------------
# Synthetic interactions (deterministic)


def make_interactions(rng: random.Random, count: int) -> list[Plain]:
    out: list[Plain] = []
    for _ in range(count):
        kind, category, source = rng.choice(_KINDS)
        at = EPOCH + timedelta(seconds=rng.randrange(int(SPAN.total_seconds())))
        payload: dict[str, Any]
        if kind == "order":
            items = [
                {"product": rng.choice(_PRODUCTS), "qty": rng.randint(1, 5), "price": "49.00"}
                for _ in range(rng.randint(1, 3))
            ]
            total = sum(int(str(i["qty"])) for i in items) * 49
            payload = {
                "order": f"O-{rng.randrange(10**8):08d}",
                "items": items,
                "total": f"{total}.00",
                "currency": "GBP",
            }
        elif kind in ("chat", "email"):
            payload = {
                "channel": "support" if kind == "chat" else "inbox",
                "direction": rng.choice(("in", "out")),
                "text": " ".join(rng.sample(_PHRASES, rng.randint(1, 3))),
            }
        else:
            payload = {
                "page": rng.choice(_PAGES),
                "referrer": "https://www.example.org/search",
                "seconds": rng.randint(3, 600),
            }
        out.append((kind, at, category, source, payload))
    return out


# ---------------------------------------------------------------------------------------------
# Set-up: the preset, subjects and interactions through the service path, the raw copy

RAW_SCHEMA = (
    "CREATE TABLE interactions (id INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, "
    "kind TEXT, occurred_at TEXT, category TEXT, source TEXT, payload TEXT)"
)
RAW_INSERT = (
    "INSERT INTO interactions (subject_id, kind, occurred_at, category, source, payload) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
RAW_INDEX = "CREATE INDEX ix_interactions_subject ON interactions (subject_id, occurred_at)"


@contextmanager
def raw_interactions_db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(RAW_SCHEMA)
        conn.execute(RAW_INDEX)
        conn.commit()
        yield conn
    finally:
        conn.close()


def _compact(payload: dict[str, Any]) -> str:
    # As Pledge seals a payload: compact JSON text.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _raw_rows(number: int, items: Sequence[Plain]) -> list[tuple[Any, ...]]:
    return [
        (number, kind, at.isoformat(), category, source, _compact(payload))
        for kind, at, category, source, payload in items
    ]


def _new_interactions(sid: uuid.UUID, items: Sequence[Plain]) -> list[subjects.NewInteraction]:
    return [
        subjects.NewInteraction(sid, kind, at, category, payload, source)
        for kind, at, category, source, payload in items
    ]


def populate(
    env: BenchEnv,
    raw: sqlite3.Connection,
    people: Sequence[Person],
    per_subject: int,
    big_count: int,
    seed: int,
) -> list[uuid.UUID]:
    """Store `people` (the last two get `big_count` interactions, the others `per_subject`);
    returns their subject ids. Subject `i` is number `i + 1` in the raw table."""
    typical = len(people) - 2
    rng = random.Random(seed + 2)
    ids: list[uuid.UUID] = []
    progress = Progress("set-up: subjects and interactions", len(people))
    for begin in range(0, len(people), BATCH):
        chunk = people[begin : begin + BATCH]
        with env.runtime.tenant_context(env.slug) as ctx:
            indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
            now = utcnow()
            prepared = [subjects.prepare_subject(ctx, field_inputs(p), indexer, now) for p in chunk]
            new_ids = subjects.store_subjects(
                ctx, prepared, event=AuditEvent.SUBJECT_CREATED, via="import"
            )
            items: list[subjects.NewInteraction] = []
            raw_rows: list[tuple[Any, ...]] = []
            for offset, sid in enumerate(new_ids):
                number = begin + offset + 1
                if number > typical:
                    continue  # the big subjects get theirs below
                plain = make_interactions(rng, per_subject)
                items.extend(_new_interactions(sid, plain))
                raw_rows.extend(_raw_rows(number, plain))
            subjects.store_interactions(ctx, items)
        raw.executemany(RAW_INSERT, raw_rows)
        raw.commit()
        ids.extend(new_ids)
        progress.advance(len(chunk))
    for number in (typical + 1, typical + 2):
        sid = ids[number - 1]
        plain = make_interactions(rng, big_count)
        for start in range(0, big_count, BIG_BATCH):
            part = plain[start : start + BIG_BATCH]
            with env.runtime.tenant_context(env.slug) as ctx:
                subjects.store_interactions(ctx, _new_interactions(sid, part))
            raw.executemany(RAW_INSERT, _raw_rows(number, part))
            raw.commit()
        log(f"  set-up: subject #{number} got {big_count} interactions")
    return ids


# ---------------------------------------------------------------------------------------------
# Requests


def submit(env: BenchEnv, rtype: str, person: Person, jurisdiction: str) -> workflow.Received:
    with env.runtime.tenant_context(env.slug) as ctx:
        return workflow.receive(
            ctx,
            RequestInput(rtype, Requester(person[0], f"{person[2]} {person[3]}"), jurisdiction),
        )


def verify(env: BenchEnv, received: workflow.Received, person: Person) -> None:
    link = received.verification_link
    if link is None:
        raise RuntimeError("no verification link")
    with env.runtime.tenant_context(env.slug) as ctx:
        request, secret = verification.request_for_link(ctx, link.rsplit("/", 1)[1])
        outcome = verification.confirm(
            ctx, request, link_secret=secret, data_points={"first_name": person[2]}
        )
    if not outcome.verified:
        raise RuntimeError(f"verification failed: {outcome.reason}")


def verified_request(env: BenchEnv, rtype: str, person: Person) -> uuid.UUID:
    received = submit(env, rtype, person, "EU")
    verify(env, received, person)
    return received.request.id


def fulfil(env: BenchEnv, request_id: uuid.UUID) -> fulfilment.Result:
    """One transaction: load the request, fulfil it, commit."""
    with env.runtime.tenant_context(env.slug) as ctx:
        return fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))


def timed_fulfil(
    env: BenchEnv, request_id: uuid.UUID, profiler: cProfile.Profile | None
) -> tuple[float, fulfilment.Result]:
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter()
    result = fulfil(env, request_id)
    seconds = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
    return seconds, result


def expect(result: fulfilment.Result, outcome_word: str) -> None:
    if result.state != "completed" or outcome_word not in result.outcome:
        raise RuntimeError(f"unexpected result {result.state}: {result.outcome[:80]!r}")


@dataclass
class RowCounts:
    interactions: int
    records: int
    identities: int
    status: str


def row_counts(ctx: TenantContext, sid: uuid.UUID) -> RowCounts:
    def count(model: type[Interaction | SubjectRecord | SubjectIdentity]) -> int:
        stmt = select(func.count()).where(model.tenant_id == ctx.tenant_id, model.subject_id == sid)
        return int(ctx.session.scalar(stmt) or 0)

    status = ctx.session.scalar(
        select(Subject.status).where(Subject.tenant_id == ctx.tenant_id, Subject.id == sid)
    )
    return RowCounts(count(Interaction), count(SubjectRecord), count(SubjectIdentity), str(status))


# ---------------------------------------------------------------------------------------------
# The raw baseline for the big access


def raw_export(conn: sqlite3.Connection, number: int) -> tuple[int, bytes]:
    rows = conn.execute(
        "SELECT * FROM interactions WHERE subject_id = ? ORDER BY occurred_at DESC", (number,)
    ).fetchall()
    # The payload text copied as it is stored, as the bundle does (no parse, no re-encode).
    doc = {
        "interactions": [
            {
                "id": rid,
                "kind": kind,
                "occurred_at": at,
                "category": category,
                "source": source,
                "payload": orjson.Fragment(payload),
            }
            for rid, _sid, kind, at, category, source, payload in rows
        ]
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["occurred_at", "kind", "category", "source", "content"])
    writer.writerows(
        [at, kind, category, source, payload]
        for _r, _s, kind, at, category, source, payload in rows
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=bundle.ZIP_LEVEL
    ) as zf:
        zf.writestr("your-data.json", orjson.dumps(doc))
        zf.writestr("interactions.csv", out.getvalue().encode())
    return len(rows), buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Parts


def part_access(
    env: BenchEnv, people: Sequence[Person], picks: Sequence[int], prof: cProfile.Profile | None
) -> list[float]:
    times: list[float] = []
    progress = Progress("(a) access, typical subject", len(picks))
    for i in picks:
        request_id = verified_request(env, "access", people[i])
        seconds, result = timed_fulfil(env, request_id, prof)
        expect(result, "file linked below")
        times.append(seconds)
        progress.advance()
    return times


def check_bundle(env: BenchEnv, url: str, person: Person, interactions: int) -> None:
    with env.runtime.tenant_context(env.slug) as ctx:
        download = downloads.redeem(ctx, url.rsplit("/", 1)[1])
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        doc = json.loads(archive.read("your-data.json"))
        csv_lines = archive.read("interactions.csv").decode().count("\n")
    values = {f["name"]: f["value"] for f in doc["data"]["fields"]}
    got = len(doc["data"]["interactions"])
    if values.get("email") != person[0] or values.get("company") != person[4]:
        raise RuntimeError("bundle fields do not match the ingested subject")
    if got != interactions or not doc["about_the_processing"]["purposes"]:
        raise RuntimeError(f"bundle has {got} interactions, expected {interactions}")
    log(
        f"  bundle checked: {got} interactions, {csv_lines - 1} CSV rows, "
        f"{len(download.content) / 1e6:.2f} MB zipped"
    )


def part_big(env: BenchEnv, person: Person, big: int, prof: cProfile.Profile | None) -> list[float]:
    times: list[float] = []
    url = ""
    for run in range(BIG_RUNS):
        request_id = verified_request(env, "access", person)
        seconds, result = timed_fulfil(env, request_id, prof)
        expect(result, "file linked below")
        url = result.download_url or ""
        times.append(seconds)
        log(f"  (b) big access run {run + 1}/{BIG_RUNS}: {seconds:.3f} s")
    check_bundle(env, url, person, big)
    return times


def part_raw(raw: sqlite3.Connection, number: int, big: int) -> list[float]:
    times: list[float] = []
    size = 0
    for _ in range(BIG_RUNS):
        t0 = time.perf_counter()
        n, content = raw_export(raw, number)
        times.append(time.perf_counter() - t0)
        size = len(content)
        if n != big:
            raise RuntimeError(f"raw export found {n} rows, expected {big}")
    log(f"  raw export: {[round(t, 4) for t in times]} s, {size / 1e6:.2f} MB zipped")
    return times


@dataclass
class Drill:
    atomic_rows: bool
    readable: bool
    retry_ok: bool
    deleted_before_failure: bool


class InjectedFailure(Exception):
    pass


def failure_drill(env: BenchEnv, person: Person, sid: uuid.UUID, big: int) -> Drill:
    """Erase the spare subject, failing after its rows were deleted; then look."""
    request_id = verified_request(env, "erasure", person)
    with env.runtime.tenant_context(env.slug) as ctx:
        before = row_counts(ctx, sid)
    seen: list[RowCounts] = []

    def failing_notify(ctx: TenantContext, *_args: Any, **_kwargs: Any) -> int:
        seen.append(row_counts(ctx, sid))  # inside the erasure's transaction
        raise InjectedFailure("recipient notification failed (injected)")

    try:
        with mock.patch.object(webhooks, "notify", failing_notify):
            fulfil(env, request_id)
    except InjectedFailure:
        pass
    else:
        raise RuntimeError("the injected failure did not happen")
    with env.runtime.tenant_context(env.slug) as ctx:
        after = row_counts(ctx, sid)
        state = rights.get_request(ctx, request_id).state
        view = reading.read_subject(ctx, sid, audited=False)
        payloads = reading.list_interactions(ctx, sid, limit=5)
        keys_left = ctx.keystore.key_classes(ctx.tenant_id, sid)
    readable = bool(view.fields) or any(i.payload is not None for i in payloads)
    deleted = bool(seen) and seen[0].interactions == 0 and seen[0].records == 0
    atomic = after == before and after.interactions == big and state == "verified"
    log(
        f"  drill: before {before}; inside the transaction at the failure {seen[0]}; "
        f"after the rollback {after}, request {state!r}, data keys left {keys_left}, "
        f"unreadable classes {view.unreadable_classes}, payloads readable: {readable}"
    )
    result = fulfil(env, request_id)  # the same request, retried
    with env.runtime.tenant_context(env.slug) as ctx:
        final = row_counts(ctx, sid)
    retry_ok = result.state == "completed" and final.interactions == 0 and final.records == 0
    log(f"  drill: retried → {result.state}, rows now {final}")
    return Drill(atomic, readable, retry_ok, deleted)


def part_erase(
    env: BenchEnv, person: Person, sid: uuid.UUID, prof: cProfile.Profile | None
) -> float:
    request_id = verified_request(env, "erasure", person)
    seconds, result = timed_fulfil(env, request_id, prof)
    expect(result, "erased")
    with env.runtime.tenant_context(env.slug) as ctx:
        left = row_counts(ctx, sid)
    if left.interactions or left.records or left.identities or left.status != "erased":
        raise RuntimeError(f"erasure left {left}")
    log(f"  (c) big erasure: {seconds:.3f} s, rows left {left}")
    return seconds


def part_e2e(
    env: BenchEnv, people: Sequence[Person], picks: Sequence[int], prof: cProfile.Profile | None
) -> float:
    progress = Progress("(d) access end to end", len(picks))
    if prof is not None:
        prof.enable()
    t0 = time.perf_counter()
    for i in picks:
        received = submit(env, "access", people[i], "EU")
        verify(env, received, people[i])
        result = fulfil(env, received.request.id)
        if result.state != "completed":
            raise RuntimeError(f"access ended {result.state}")
        progress.advance()
    seconds = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
    return seconds


def part_optout(
    env: BenchEnv, people: Sequence[Person], picks: Sequence[int], prof: cProfile.Profile | None
) -> float:
    progress = Progress("(d) opt-outs", len(picks))
    if prof is not None:
        prof.enable()
    t0 = time.perf_counter()
    for i in picks:
        received = submit(env, "opt_out_sale", people[i], "US-CA")
        if received.request.state != "completed":
            raise RuntimeError(f"opt-out ended {received.request.state}")
        progress.advance()
    seconds = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
    return seconds


def part_optout_batch(
    env: BenchEnv, people: Sequence[Person], picks: Sequence[int], prof: cProfile.Profile | None
) -> float:
    """(d) opt-outs through the batch intake (`POST /api/v1/requests/batch` calls
    `immediate.answer_many`): OPTOUT_BATCH requests to a transaction."""
    progress = Progress("(d) opt-outs in batches", len(picks))
    if prof is not None:
        prof.enable()
    t0 = time.perf_counter()
    for start in range(0, len(picks), OPTOUT_BATCH):
        chunk = picks[start : start + OPTOUT_BATCH]
        with env.runtime.tenant_context(env.slug) as ctx:
            answered = immediate.answer_many(
                ctx,
                [
                    RequestInput(
                        "opt_out_sale",
                        Requester(people[i][0], f"{people[i][2]} {people[i][3]}"),
                        "US-CA",
                    )
                    for i in chunk
                ],
            )
        for request in answered:
            if not isinstance(request, RightsRequest) or request.outcome_code != "opted_out":
                raise RuntimeError(f"batched opt-out ended {request}")
        progress.advance(len(chunk))
    seconds = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
    return seconds


def part_raw_optout(
    env: BenchEnv, people: Sequence[Person], picks: Sequence[int], per_tx: int = 1
) -> float:
    """The baseline of (d) opt-outs: the rows one opt-out writes, through prebuilt Core
    statements, `per_tx` opt-outs to a transaction — the subject found by its blind index,
    the request (requester sealed), four timeline rows, the subject's flag, the completion
    letter (a formatted text, sealed twice: artifact and outbox row), eight chained audit
    entries. Not in it: the keystore, the tenant row, webhooks, the frequency check, the
    clock, the template, the state machine. Written into Pledge's own tables, after (d)."""
    with env.runtime.tenant_context(env.slug) as ctx:
        tid = ctx.tenant_id
        blind_key = ctx.keystore.derived_key(tid, "blind-index")
        audit_key = ctx.keystore.audit_key(tid)
    aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def sealed(data: bytes) -> bytes:
        nonce = os.urandom(12)
        return b"\x01" + nonce + aead.encrypt(nonce, data, None)

    t = {
        m.__name__: cast(Table, m.__table__)
        for m in (
            RightsRequest,
            RequestEvent,
            RequestArtifact,
            OutboxMessage,
            Subject,
            SubjectIdentity,
            AuditHead,
            AuditEntry,
        )
    }
    find = select(t["SubjectIdentity"].c.subject_id).where(
        t["SubjectIdentity"].c.tenant_id == tid,
        t["SubjectIdentity"].c.kind == "email",
        t["SubjectIdentity"].c.blind_index == bindparam("b"),
    )
    flag = (
        update(t["Subject"])
        .where(t["Subject"].c.tenant_id == tid, t["Subject"].c.id == bindparam("sid"))
        .values(sale_opt_out_at=bindparam("at"), sale_opt_out_source="request")
    )
    head = select(t["AuditHead"].c.seq, t["AuditHead"].c.mac).where(
        t["AuditHead"].c.tenant_id == tid
    )
    move_head = (
        update(t["AuditHead"])
        .where(t["AuditHead"].c.tenant_id == tid)
        .values(seq=bindparam("s"), mac=bindparam("m"))
    )
    progress = Progress("(d) raw opt-outs (baseline)", len(picks))
    matched = 0
    t0 = time.perf_counter()
    for start in range(0, len(picks), per_tx):
        with env.runtime.sessions() as session, session.begin():
            conn = session.connection()
            for i in picks[start : start + per_tx]:
                email = people[i][0].lower()
                now = utcnow()
                index = hashlib.blake2b(f"email:{email}".encode(), key=blind_key, digest_size=32)
                sid = conn.execute(find, {"b": index.digest()}).scalar()
                rid = uuid.uuid4()
                conn.execute(
                    insert(t["RightsRequest"]),
                    {
                        "tenant_id": tid,
                        "id": rid,
                        "reference": "R-" + rid.hex[-8:].upper(),
                        "type": "opt_out_sale",
                        "jurisdiction": "US-CA",
                        "channel": "api",
                        "requester_kind": "subject",
                        "state": "completed",
                        "subject_id": sid,
                        "contact_index": index.digest(),
                        "repetitive": False,
                        "sealed": sealed(orjson.dumps({"email": email, "name": people[i][2]})),
                        "received_at": now,
                        "acknowledged_at": now,
                        "verified_at": now,
                        "completed_at": now,
                        "closed_at": now,
                        "outcome_code": "opted_out",
                    },
                )
                conn.execute(
                    insert(t["RequestEvent"]),
                    [
                        {
                            "tenant_id": tid,
                            "id": uuid.uuid4(),
                            "request_id": rid,
                            "at": now,
                            "kind": kind,
                            "from_state": None,
                            "to_state": kind,
                            "actor_kind": "operator",
                            "actor_id": None,
                            "details": {},
                        }
                        for kind in ("received", "verified", "in_progress", "completed")
                    ],
                )
                if sid is not None:
                    matched += 1
                    conn.execute(flag, {"sid": sid, "at": now})
                letter = (
                    f"Dear {people[i][2]},\n\nWe have completed your opt-out of sale request.\n"
                    "We no longer sell or share your personal information.\n"
                ).encode()
                conn.execute(
                    insert(t["RequestArtifact"]),
                    {
                        "tenant_id": tid,
                        "id": uuid.uuid4(),
                        "request_id": rid,
                        "kind": "letter",
                        "media_type": "text/plain",
                        "name": "completed.txt",
                        "size": len(letter),
                        "key_scope": "subject",
                        "sealed": sealed(letter),
                        "created_at": now,
                    },
                )
                conn.execute(
                    insert(t["OutboxMessage"]),
                    {
                        "tenant_id": tid,
                        "id": uuid.uuid4(),
                        "subject_id": sid,
                        "kind": "rights_letter",
                        "status": "queued",
                        "sealed": sealed(letter),
                        "attempts": 0,
                        "created_at": now,
                    },
                )
                seq, prev = conn.execute(head).one()
                entries = []
                for _ in range(8):
                    seq += 1
                    details = {"request_id": str(rid)}
                    content = json.dumps(
                        [
                            seq,
                            now.isoformat(),
                            "rights.request_changed",
                            "operator",
                            None,
                            str(sid),
                            details,
                        ],
                        sort_keys=True,
                        separators=(",", ":"),
                    ).encode()
                    mac = hmac.new(audit_key, prev + content, hashlib.sha256).digest()
                    entries.append(
                        {
                            "tenant_id": tid,
                            "seq": seq,
                            "occurred_at": now,
                            "event": "rights.request_changed",
                            "actor_kind": "operator",
                            "actor_id": None,
                            "subject_id": sid,
                            "details": details,
                            "prev_mac": prev,
                            "mac": mac,
                        }
                    )
                    prev = mac
                conn.execute(insert(t["AuditEntry"]), entries)
                conn.execute(move_head, {"s": seq, "m": prev})
                progress.advance()
    seconds = time.perf_counter() - t0
    if matched != len(picks):  # the same work as Pledge's: every requester is a subject
        raise RuntimeError(f"baseline matched {matched} of {len(picks)} requesters")
    return seconds


def samples(n: int, sizes: Sequence[int], seed: int) -> list[list[int]]:
    """Disjoint random samples of subject indices below `n` (reused when `n` is too small)."""
    order = random.Random(seed + 1).sample(range(n), n)
    out: list[list[int]] = []
    start = 0
    for size in sizes:
        out.append([order[(start + k) % n] for k in range(size)])
        start += size
    return out


def timed_setup(label: str, action: Callable[[], None]) -> None:
    t0 = time.perf_counter()
    action()
    log(f"{label} in {time.perf_counter() - t0:.1f} s (not timed)")


def main() -> None:
    args = parse_args()
    n, per, big = args.subjects, args.interactions, args.big
    people = generate_people(n + 2, args.seed)
    picks_a, picks_e2e, picks_opt, picks_batch = samples(
        n, (ACCESS_SAMPLE, E2E_ACCESS, OPTOUTS, OPTOUTS), args.seed
    )
    big_i, spare_i = n, n + 1
    profiler = cProfile.Profile() if args.profile else None

    def prof(part: str) -> cProfile.Profile | None:
        return profiler if args.profile == part else None

    with (
        backends.override(backends.OutboxOnlyBackend()),
        bench_env() as env,
        raw_interactions_db(env.raw_path) as raw,
    ):
        with env.runtime.tenant_context(env.slug) as ctx:
            clik(ctx)
        ids: list[uuid.UUID] = []

        def setup() -> None:
            ids.extend(populate(env, raw, people, per, big, args.seed))

        timed_setup(f"stored {n + 2} subjects, {n * per + 2 * big} interactions", setup)
        settle_heap()

        log("(a) access, typical subject")
        access_times = part_access(env, people, picks_a, prof("access"))
        log("(b) access, big subject")
        big_times = part_big(env, people[big_i], big, prof("big"))
        raw_times = part_raw(raw, big_i + 1, big)
        log("(c) all-or-nothing drill (not timed), then the big erasure")
        drill = failure_drill(env, people[spare_i], ids[spare_i], big)
        erase_s = part_erase(env, people[big_i], ids[big_i], prof("erase"))
        log("(d) throughput")
        e2e_s = part_e2e(env, people, picks_e2e, prof("e2e"))
        optout_s = part_optout(env, people, picks_opt, prof("optout"))
        batch_s = part_optout_batch(env, people, picks_batch, prof("batch"))
        raw_optout_s = part_raw_optout(env, people, picks_opt)
        raw_batch_s = part_raw_optout(env, people, picks_batch, OPTOUT_BATCH)

    if profiler is not None:
        for order in ("cumulative", "tottime"):
            log(f"\n--- top {TOP} functions by {order} time ({args.profile}) ---")
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(TOP)

    access_p50, access_p95 = percentile(access_times, 50), percentile(access_times, 95)
    big_p95, raw_s = percentile(big_times, 95), percentile(raw_times, 50)
    log(
        f"(a) access: p50 {access_p50 * 1000:.1f} ms, p95 {access_p95 * 1000:.1f} ms, "
        f"max {max(access_times) * 1000:.1f} ms (n={len(access_times)})"
    )
    log(
        f"(b) big access: p95 {big_p95:.3f} s (runs {[round(t, 3) for t in big_times]}); "
        f"raw {raw_s:.4f} s; ratio {big_p95 / raw_s:.1f}"
    )
    log(f"(c) big erasure: {erase_s:.3f} s; drill {drill}")
    log(
        f"(d) {E2E_ACCESS} access in {e2e_s:.1f} s = {E2E_ACCESS / e2e_s:.1f}/s; "
        f"{OPTOUTS} opt-outs one by one in {optout_s:.1f} s = {OPTOUTS / optout_s:.0f}/s "
        f"(raw baseline {OPTOUTS / raw_optout_s:.0f}/s); in batches of {OPTOUT_BATCH}: "
        f"{OPTOUTS / batch_s:.0f}/s (raw baseline {OPTOUTS / raw_batch_s:.0f}/s)"
    )
    result: dict[str, object] = {
        "subjects": n,
        "interactions": per,
        "big": big,
        "access_p50_s": round(access_p50, 4),
        "access_p95_s": round(access_p95, 4),
        "big_access_p95_s": round(big_p95, 4),
        "raw_big_s": round(raw_s, 4),
        "ratio": round(big_p95 / raw_s, 2),
        "big_erase_s": round(erase_s, 4),
        "erase_atomic_rows": drill.atomic_rows,
        "erase_failed_rows_readable": drill.readable,
        "erase_retry_ok": drill.retry_ok,
        "access_per_s": round(E2E_ACCESS / e2e_s, 1),
        "optout_per_s": round(OPTOUTS / batch_s, 1),
        "raw_optout_per_s": round(OPTOUTS / raw_batch_s, 1),
        "optout_ratio": round(batch_s / raw_batch_s, 2),
        "optout_single_per_s": round(OPTOUTS / optout_s, 1),
        "raw_optout_single_per_s": round(OPTOUTS / raw_optout_s, 1),
        "optout_single_ratio": round(optout_s / raw_optout_s, 2),
    }
    if args.profile:
        result["profiled"] = args.profile
    emit(result)


if __name__ == "__main__":
    main()
