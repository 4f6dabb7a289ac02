"""Shared set-up for the benchmarks in this directory.

Every benchmark runs on the embedded SQLite default: the data store `$HOME/pledge.db`, the
keystore `$HOME/keystore.db` and, for the plaintext baseline, a bare SQLite file
`$HOME/raw.db` in the same directory. `$HOME` is `PLEDGE_HOME` when set (the files must not
exist yet; only they are removed afterwards), else a fresh temporary directory that is
deleted afterwards.

Human-readable output goes to stderr; the result is one JSON object, the last line of stdout.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pledge.core.clock import utcnow
from pledge.core.config import Settings
from pledge.core.db import make_engine, transaction
from pledge.crypto.aead import KEY_BYTES
from pledge.crypto.keystore import make_keystore_engine
from pledge.migrations import upgrade
from pledge.runtime import Runtime
from pledge.subjects import importer, service
from pledge.subjects.models import STANDARD_CLASS, DataSource
from pledge.subjects.vault import IdentityIndexer
from pledge.tenants.service import create_tenant

SLUG = "bench"
BATCH_SIZE = 500  # the importer's default (`Settings.import_batch_size`)
SEED = 20_260_131
DATA_FILE = "pledge.db"
KEYS_FILE = "keystore.db"
RAW_FILE = "raw.db"
# The storage floor (`ingest_floor`): Pledge's own rows written again by the bare driver.
FLOOR_DATA_FILE = "floor.db"
FLOOR_KEYS_FILE = "floor-keystore.db"
_SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")

# email, phone, first_name, last_name, company — the column order of the raw table too.
Person = tuple[str, str, str, str, str]

# The CSV importer's view of these columns: `importer.KNOWN_COLUMNS` gives the categories of
# the known ones; `company` is a custom column, imported with
# `--category company=user.contact.organization`.
COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("email", importer.KNOWN_COLUMNS["email"]),
    ("phone", importer.KNOWN_COLUMNS["phone"]),
    ("first_name", importer.KNOWN_COLUMNS["first_name"]),
    ("last_name", importer.KNOWN_COLUMNS["last_name"]),
    ("company", "user.contact.organization"),
)

RAW_SCHEMA = (
    "CREATE TABLE contacts ("
    "id INTEGER PRIMARY KEY, email TEXT, phone TEXT, first_name TEXT, last_name TEXT, "
    "company TEXT)"
)
RAW_INSERT = (
    "INSERT INTO contacts (id, email, phone, first_name, last_name, company) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Command line and results


def parse_args(
    description: str, *, profile: bool = False, floor_parts: bool = False
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects to ingest")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic data")
    if profile:
        parser.add_argument(
            "--profile", action="store_true", help="cProfile the Pledge part (slows it down)"
        )
    if floor_parts:
        parser.add_argument(
            "--floor-parts",
            action="store_true",
            help="also time the storage floor with each part left out in turn",
        )
    args = parser.parse_args()
    if args.subjects < 1:
        parser.error("--subjects must be at least 1")
    return args


def emit(result: dict[str, Any]) -> None:
    """The result: one JSON object, the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * pct / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarise_ms(label: str, values_ms: Sequence[float]) -> None:
    log(
        f"{label}: n={len(values_ms)} min={min(values_ms):.3f} ms "
        f"p50={percentile(values_ms, 50):.3f} ms p95={percentile(values_ms, 95):.3f} ms "
        f"p99={percentile(values_ms, 99):.3f} ms max={max(values_ms):.3f} ms"
    )


class Progress:
    """A counter line on stderr every 10% of the way."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.step = max(1, math.ceil(total / 10))
        self.next_mark = self.step
        self.start = time.perf_counter()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.next_mark or self.done >= self.total:
            elapsed = time.perf_counter() - self.start
            pct = 100 * self.done / self.total if self.total else 100.0
            log(f"  {self.label}: {self.done}/{self.total} ({pct:.0f}%) {elapsed:.1f} s")
            while self.next_mark <= self.done:
                self.next_mark += self.step


# ---------------------------------------------------------------------------------------------
# Synthetic data (deterministic, generated up front, never timed)

_FIRST = (
    "Ada", "Alan", "Amara", "Bea", "Carlos", "Chen", "Dmitri", "Elena", "Farah", "Grace",
    "Hiro", "Ines", "Jonas", "Kemi", "Lars", "Leila", "Marek", "Mina", "Noor", "Olu",
    "Priya", "Quinn", "Rafael", "Sana", "Tomas", "Uma", "Vera", "Wei", "Yusuf", "Zofia",
)  # fmt: skip
_LAST = (
    "Adeyemi", "Bauer", "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Hughes",
    "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Patel",
    "Quist", "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Williams", "Xu", "Yilmaz",
    "Zhang",
)  # fmt: skip
_COMPANY_A = ("Blue", "Northern", "Silver", "Bright", "Granite", "Harbour", "Quiet", "Swift")
_COMPANY_B = ("River", "Oak", "Beacon", "Forge", "Lantern", "Meadow", "Summit", "Anchor")
_COMPANY_C = ("Ltd", "LLP", "plc", "Group", "Partners", "& Co")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.co.uk")


def generate_people(n: int, seed: int = SEED) -> list[Person]:
    """`n` people with unique e-mail addresses and UK mobile numbers (+4479xxxxxxxx)."""
    rng = random.Random(seed)
    numbers = rng.sample(range(100_000_000), n)
    people: list[Person] = []
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}.{i}@{rng.choice(_DOMAINS)}"
        phone = f"+4479{numbers[i]:08d}"
        company = f"{rng.choice(_COMPANY_A)} {rng.choice(_COMPANY_B)} {rng.choice(_COMPANY_C)}"
        people.append((email, phone, first, last, company))
    return people


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """`k` distinct random indices below `n` (all of them when `n` < `k`), in random order."""
    return random.Random(seed + 1).sample(range(n), min(k, n))


# ---------------------------------------------------------------------------------------------
# Environment: settings, migrated databases, a tenant; cleaned up afterwards


@dataclass
class BenchEnv:
    home: Path
    runtime: Runtime
    slug: str
    raw_path: Path


def _sqlite_files(home: Path, name: str) -> list[Path]:
    return [home / f"{name}{suffix}" for suffix in _SQLITE_SIDECARS]


@contextmanager
def bench_env() -> Iterator[BenchEnv]:
    """Migrated data store and keystore with one tenant, under `PLEDGE_HOME` or a temp dir."""
    given = os.environ.get("PLEDGE_HOME")
    made_dir = False
    ours: list[Path] = []
    if given:
        home = Path(given).expanduser().resolve()
        names = (DATA_FILE, KEYS_FILE, RAW_FILE, FLOOR_DATA_FILE, FLOOR_KEYS_FILE)
        ours = [p for name in names for p in _sqlite_files(home, name)]
        clash = [str(p) for p in ours if p.exists()]
        if clash:
            raise SystemExit(f"refusing to overwrite existing files: {', '.join(clash)}")
        made_dir = not home.exists()
        home.mkdir(parents=True, exist_ok=True)
    else:
        home = Path(tempfile.mkdtemp(prefix="pledge-bench-"))
    log(f"home: {home}{' (temporary)' if not given else ''}")
    try:
        # Explicit URLs and key: PLEDGE_DATABASE_URL etc. in the environment are ignored.
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / DATA_FILE}",
            keystore_url=f"sqlite:///{home / KEYS_FILE}",
            master_key=base64.b64encode(os.urandom(KEY_BYTES)).decode(),
        )
        data_engine = make_engine(settings.data_url)
        keys_engine = make_keystore_engine(settings.keys_url)
        try:
            upgrade("datastore", data_engine)
            upgrade("keystore", keys_engine)
        finally:
            data_engine.dispose()
            keys_engine.dispose()
        runtime = Runtime.open(settings)
        try:
            with transaction(runtime.sessions) as session:
                create_tenant(session, runtime.keystore, slug=SLUG, name="Bench Ltd")
            yield BenchEnv(home, runtime, SLUG, home / RAW_FILE)
        finally:
            runtime.close()
    finally:
        if given:
            for path in ours:
                path.unlink(missing_ok=True)
            if made_dir:
                try:
                    home.rmdir()
                except OSError:
                    log(f"left {home} in place: not empty")
        else:
            shutil.rmtree(home, ignore_errors=True)
        log("cleaned up")


# ---------------------------------------------------------------------------------------------
# Ingest: Pledge's real import path, and the plaintext baseline


def field_inputs(person: Person) -> list[service.FieldInput]:
    """One CSV row as `importer.plan_import` turns it into field inputs."""
    return [
        service.FieldInput(name, value.strip(), category, DataSource.DIRECT.value, STANDARD_CLASS)
        for (name, category), value in zip(COLUMNS, person, strict=True)
        if value.strip()
    ]


def ingest_pledge(
    runtime: Runtime, slug: str, people: Sequence[Person], *, batch_size: int = BATCH_SIZE
) -> float:
    """Import `people` as the CSV importer does; returns the seconds it took.

    Per batch, one transaction: validate and normalise every field, compute the blind
    indexes, reject duplicate identities within the file (`plan_import`), then
    `importer.import_batch` (known-identity check, data keys in the keystore, sealed records,
    identity rows, audit entries) and commit.
    """
    progress = Progress("pledge ingest", len(people))
    first_row_of: dict[tuple[str, bytes], int] = {}
    start = time.perf_counter()
    for number, begin in enumerate(range(0, len(people), batch_size), start=1):
        with runtime.tenant_context(slug) as ctx:
            indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
            now = utcnow()
            prepared: list[service.PreparedSubject] = []
            for row, person in enumerate(people[begin : begin + batch_size], start=begin):
                subject = service.prepare_subject(ctx, field_inputs(person), indexer, now)
                for kind, bidx in subject.identities:
                    if (kind.value, bidx) in first_row_of:
                        raise RuntimeError(f"row {row}: same {kind.value} as an earlier row")
                    first_row_of[(kind.value, bidx)] = row
                prepared.append(subject)
            created, present = importer.import_batch(ctx, prepared, number)
        if created != len(prepared) or present:
            raise RuntimeError(f"batch {number}: {created} created, {present} already present")
        progress.advance(len(prepared))
    return time.perf_counter() - start


# The rows Pledge's import writes for each subject, in the schema's column order.
_FLOOR_TABLES = ("subjects", "subject_identities", "subject_records")


# The parts of the floor that `ingest_floor` can leave out, to see what each costs.
FLOOR_PARTS = ("keys", "identities", "records", "audit")


def ingest_floor(home: Path, leave_out: Collection[str] = ()) -> float:
    """Pledge's storage floor: the rows its import wrote under `home` (data store and
    keystore), written again by bare `executemany` into empty, migrated copies of both
    schemas — same indexes, pragmas, batches and commits, no Python work on the values.
    Returns the seconds it took. Run after `ingest_pledge`; the rows are read before timing.

    Per batch, as the import: the keystore's data keys and its commit; then subjects,
    identities, sealed records, the audit entries (one per subject, one for the batch), the
    tenant's audit head moved on, and the commit. `leave_out` names parts (`FLOOR_PARTS`)
    not written — the keystore's commit goes with its keys, the head with the entries."""
    unknown = set(leave_out) - set(FLOOR_PARTS)
    if unknown:
        raise ValueError(f"no such part of the floor: {', '.join(sorted(unknown))}")
    floor_data, floor_keys = home / FLOOR_DATA_FILE, home / FLOOR_KEYS_FILE
    for path in (*_sqlite_files(home, FLOOR_DATA_FILE), *_sqlite_files(home, FLOOR_KEYS_FILE)):
        path.unlink(missing_ok=True)  # a run before this one, with other parts left out
    for path, make, store in (
        (floor_data, make_engine, "datastore"),
        (floor_keys, make_keystore_engine, "keystore"),
    ):
        engine = make(f"sqlite:///{path}")
        try:
            upgrade(store, engine)
        finally:
            engine.dispose()
    source = sqlite3.connect(home / DATA_FILE)
    source_keys = sqlite3.connect(home / KEYS_FILE)
    data = _floor_connection(floor_data, data_store=True)
    keys = _floor_connection(floor_keys, data_store=False)
    try:
        data.execute("ATTACH DATABASE ? AS pledge", (str(home / DATA_FILE),))
        data.execute("INSERT INTO tenants SELECT * FROM pledge.tenants")
        data.execute("INSERT INTO audit_heads SELECT * FROM pledge.audit_heads")
        data.commit()
        data.execute("DETACH DATABASE pledge")
        batches = _floor_batches(source, source_keys)
    finally:
        source.close()
        source_keys.close()
    try:
        progress = Progress("storage floor", sum(len(b.subjects) for b in batches))
        start = time.perf_counter()
        for batch in batches:
            if "keys" not in leave_out:
                keys.executemany(_insert_sql("subject_keys", batch.keys[0]), batch.keys)
                keys.commit()
            for table, rows, part in (
                ("subjects", batch.subjects, None),
                ("subject_identities", batch.identities, "identities"),
                ("subject_records", batch.records, "records"),
            ):
                if part not in leave_out:
                    data.executemany(_insert_sql(table, rows[0]), rows)
            if "audit" not in leave_out:
                data.executemany(_insert_sql("audit_entries", batch.entries[0]), batch.entries)
                last = batch.entries[-1]
                data.execute(
                    "UPDATE audit_heads SET seq = ?, mac = ? WHERE tenant_id = ?",
                    (last[1], last[-1], last[0]),
                )
            data.commit()
            progress.advance(len(batch.subjects))
        elapsed = time.perf_counter() - start
        written = data.execute("SELECT count(*) FROM subjects").fetchone()[0]
        if written != progress.total or not progress.total:
            raise RuntimeError(f"storage floor: {written} subjects written of {progress.total}")
        return elapsed
    finally:
        data.close()
        keys.close()


@dataclass
class _FloorBatch:
    keys: list[tuple[Any, ...]]
    subjects: list[tuple[Any, ...]]
    identities: list[tuple[Any, ...]]
    records: list[tuple[Any, ...]]
    entries: list[tuple[Any, ...]]


def _floor_connection(path: Path, *, data_store: bool) -> sqlite3.Connection:
    """A bare driver connection with the pragmas Pledge's engines set on that store."""
    conn = sqlite3.connect(path)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "cache_size=-65536",
        "mmap_size=268435456",
        f"wal_autocheckpoint={10000 if data_store else 1000}",
        *(() if data_store else ("secure_delete=ON",)),
    ):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _insert_sql(table: str, row: tuple[Any, ...]) -> str:
    return f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})"


def _floor_batches(data: sqlite3.Connection, keys: sqlite3.Connection) -> list[_FloorBatch]:
    """Pledge's import rows grouped as it wrote them: the audit log gives the batches (each
    subject's `subject.created` entry, then the batch's `subjects.imported`)."""
    by_subject: dict[str, dict[bytes, list[tuple[Any, ...]]]] = {}
    for table in _FLOOR_TABLES:
        rows: dict[bytes, list[tuple[Any, ...]]] = {}
        subject_column = "id" if table == "subjects" else "subject_id"
        for row in data.execute(f"SELECT {subject_column}, * FROM {table}"):
            rows.setdefault(row[0], []).append(row[1:])
        by_subject[table] = rows
    key_rows: dict[bytes, list[tuple[Any, ...]]] = {}
    for row in keys.execute("SELECT subject_id, * FROM subject_keys"):
        key_rows.setdefault(row[0], []).append(row[1:])
    batches: list[_FloorBatch] = []
    current = _FloorBatch([], [], [], [], [])
    for entry in data.execute(
        "SELECT * FROM audit_entries WHERE event IN ('subject.created', 'subjects.imported') "
        "ORDER BY seq"
    ):
        current.entries.append(entry)
        if entry[3] == "subjects.imported":
            batches.append(current)
            current = _FloorBatch([], [], [], [], [])
            continue
        subject = entry[6]
        current.keys.extend(key_rows[subject])
        current.subjects.extend(by_subject["subjects"][subject])
        current.identities.extend(by_subject["subject_identities"][subject])
        current.records.extend(by_subject["subject_records"][subject])
    return batches


@contextmanager
def raw_db(path: Path) -> Iterator[sqlite3.Connection]:
    """A bare SQLite database with the data store's pragmas and one plaintext table."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(RAW_SCHEMA)
        conn.commit()
        yield conn
    finally:
        conn.close()


def ingest_raw(
    conn: sqlite3.Connection, people: Sequence[Person], *, batch_size: int = BATCH_SIZE
) -> float:
    """Insert `people` in plaintext, `executemany` per batch, one commit per batch; the row
    of `people[i]` gets id `i + 1`. Returns the seconds it took."""
    progress = Progress("raw ingest", len(people))
    start = time.perf_counter()
    for begin in range(0, len(people), batch_size):
        rows = [
            (row + 1, *person)
            for row, person in enumerate(people[begin : begin + batch_size], start=begin)
        ]
        conn.executemany(RAW_INSERT, rows)
        conn.commit()
        progress.advance(len(rows))
    return time.perf_counter() - start


def ingest_both(env: BenchEnv, conn: sqlite3.Connection, people: Sequence[Person]) -> None:
    """Untimed set-up for the look-up and erasure benchmarks."""
    seconds = ingest_pledge(env.runtime, env.slug, people)
    log(f"pledge ingest: {len(people)} subjects in {seconds:.1f} s")
    seconds = ingest_raw(conn, people)
    log(f"raw ingest: {len(people)} rows in {seconds:.1f} s")


def settle_heap() -> None:
    """After the set-up, before timing: move what the set-up left in memory (the synthetic
    people, their ids) out of the garbage collector's sight, as `pledge serve` does with its
    start-up objects. A server does not hold a benchmark's set-up data; left in the heap, every
    full collection during a timed part would scan it."""
    gc.collect()
    gc.freeze()
