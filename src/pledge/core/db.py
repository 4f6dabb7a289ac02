"""Database plumbing shared by every domain: declarative base, portable column types, engines
for SQLite and PostgreSQL, and the unit of work (one transaction, side effects after commit).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator, TypeEngine

from pledge.core.errors import InvalidInput, PledgeError
from pledge.core.ids import uuid_from_bytes

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of the data store's tables (not the keystore's: see `pledge.crypto.keystore`)."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_datetime  # one call instead of this decorator's and SQLite's
        return super().bind_processor(dialect)


class ID(TypeDecorator[uuid.UUID]):
    """UUIDs: native `uuid` on PostgreSQL, 16 raw bytes on SQLite (SQLAlchemy's default there
    is 32 characters of hex: twice the size in every row and index)."""

    impl = LargeBinary(16)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PG_UUID(as_uuid=True))
        return dialect.type_descriptor(LargeBinary(16))

    def process_bind_param(self, value: uuid.UUID | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return value.bytes

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(bytes=bytes(value))

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_id  # the 16 bytes sqlite3 returns, straight into a UUID
        return super().result_processor(dialect, coltype)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_id_bytes
        return super().bind_processor(dialect)


# On SQLite, each value of a bulk insert went through two processors (the decorator's, then
# the dialect's): a tenth of an opt-out batch. One function each does the same; a property
# test holds them equal to the two chained.


def _sqlite_id(value: bytes | None) -> uuid.UUID | None:
    return None if value is None else uuid_from_bytes(value)


def _sqlite_id_bytes(value: uuid.UUID | None) -> bytes | None:
    return None if value is None else value.bytes


def _sqlite_datetime(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite storage format of the UTC moment: "YYYY-MM-DD HH:MM:SS.ffffff"."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _holds_nul(value: Any) -> bool:
    if type(value) is str:
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


class JSONType(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL; a NUL anywhere in it is refused like one in a
    text column (`_refuse_nul` sees the serialised or wrapped value, not its strings):
    PostgreSQL's jsonb rejects it with an error quoting the value, SQLite stores it."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and _holds_nul(value):
            raise InvalidInput(_NUL_REFUSED)
        return value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control from pysqlite so that "begin" below is ours.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # SQLite's default page cache is 2 MB: a vault of 100,000 subjects has indexes (blind
    # indexes, the audit chain by subject) far larger, and writes to random places in them
    # then read pages from the OS at each statement. 64 MB per connection, and reads through
    # a memory map of up to 256 MB (no copy into the cache).
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA mmap_size=268435456")
    # The WAL is copied back into the database every 10,000 pages (~40 MB), not SQLite's
    # 1,000: the pages every transaction writes (the audit chain's head and the ends of its
    # tables and indexes) are then copied back once per 10,000 pages instead of ten times —
    # an access request end to end about 8 % faster (docs/performance.md). What it holds is
    # what the database holds: sealed data and keyed digests (the keystore keeps SQLite's
    # interval, `make_keystore_engine`: a shredded key's page leaves its WAL soon).
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the lock at BEGIN: no deadlock when a read turns into a write (the audit
    # chain head is read, then written, in almost every transaction). A `read_transaction`
    # takes none: writers go on while it reads its snapshot.
    if conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_NUL_REFUSED = "text must not contain the NUL character (U+0000)"


def _refuse_nul(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, executemany: bool
) -> None:
    """No text with a NUL reaches the database (docs/decisions/0013-control-characters.md).

    PostgreSQL cannot store one in text (a DataError: a 500) and SQLite stores it: both refuse
    it alike, as invalid input, whatever way it came (the CLI, a job, a service call the web's
    own check never sees). Raised as it is to the caller (SQLAlchemy wraps only DBAPI errors).
    Bytes (sealed data) are skipped by the exact type test, which also keeps this cheap."""
    for row in parameters if executemany else (parameters,):
        for value in row.values() if isinstance(row, Mapping) else row or ():
            if type(value) is str and "\x00" in value:
                raise InvalidInput(_NUL_REFUSED)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        # hide_parameters: bound values never reach logs or exception messages.
        engine = create_engine(
            url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=10
        )
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    event.listen(engine, "handle_error", _domain_error_as_raised)
    return engine


def _domain_error_as_raised(context: ExceptionContext) -> BaseException | None:
    """A domain error raised while a statement's values were bound (`JSONType`'s NUL check)
    reaches the caller as itself — invalid input, a 422 — not wrapped as a database error."""
    if isinstance(context.original_exception, PledgeError):
        return context.original_exception
    return None


def insert_new(session: Session, model: type[DeclarativeBase], **values: Any) -> Any:
    """An INSERT of one row that does nothing when a row with its key is there already (ON
    CONFLICT DO NOTHING, in the session's dialect): two transactions adding the same row at
    once both go on, where a check then an insert failed the second on the primary key. Add
    `.returning(...)` to learn whether it inserted (an insert's rowcount is -1 on psycopg)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).values(**values).on_conflict_do_nothing()


M = TypeVar("M")


_BY_PRIMARY_KEY: dict[type[Any], Select[Any]] = {}


def _by_primary_key(model: type[Any]) -> Select[Any]:
    stmt = _BY_PRIMARY_KEY.get(model)
    if stmt is None:
        keys = inspect(model).primary_key
        stmt = select(model).where(*(c == bindparam(f"pk_{i}") for i, c in enumerate(keys)))
        _BY_PRIMARY_KEY[model] = stmt
    return stmt


def get_row(session: Session, model: type[M], key: tuple[Any, ...]) -> M | None:
    """`session.get(model, key)`, at half its cost when the row is not loaded yet (a query
    built once per model; `get` builds its own each time). A row the session holds already
    is `get`'s to return, as it is or loaded again if expired."""
    if session.identity_key(model, key) in session.identity_map:
        return session.get(model, key)
    found: M | None = session.scalars(
        _by_primary_key(model), {f"pk_{i}": value for i, value in enumerate(key)}
    ).one_or_none()
    return found


def flush_changes_to(session: Session, *models: type[DeclarativeBase]) -> None:
    """Flush when the session holds a change to a row of one of `models` (new, changed or
    deleted): before a Core statement reads their tables, which, unlike an ORM query, does
    not autoflush. Other pending changes wait for the next flush."""
    if session.autoflush and any(
        isinstance(obj, models) for obj in (*session.new, *session.dirty, *session.deleted)
    ):
        session.flush()


def keep_loaded_in_step(
    session: Session, model: type[DeclarativeBase], key: tuple[Any, ...], values: dict[str, Any]
) -> None:
    """After a Core UPDATE of the row of `model` with primary key `key`: the object the session
    has loaded for it, if any, holds `values` as it would after an ORM flush (nothing more to
    write, nothing stale to read in this transaction)."""
    loaded = session.identity_map.get((model, key, None))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


def bulk_insert(session: Session, model: type[DeclarativeBase], rows: list[dict[str, Any]]) -> None:
    """Insert many rows with one `executemany` on the session's connection, in its
    transaction. Every row has the keys of the first (as Core's executemany requires).

    The ORM's bulk path costs several times more per row and we need none of what it adds
    (no identity map for rows nobody reads back). On SQLite, even Core's executemany spent
    more per row building parameters than SQLite spent inserting them: there the rows go to
    the driver as tuples, each value through its column's own bind processor — the values
    Core would send (a test holds the two equal)."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    connection = session.connection()
    plan = _sqlite_insert_plan(table, tuple(rows[0]), connection.dialect)
    if plan is None:
        connection.execute(table.insert(), rows)
        return
    if plan.defaults:
        rows = [{**plan.defaults, **r} for r in rows]
    connection.exec_driver_sql(plan.sql, _driver_rows(plan.columns, rows))


def _driver_rows(
    columns: list[tuple[str, Callable[[Any], Any] | None]], rows: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """The rows as the driver's tuples, built column by column. A column whose rows all hold
    the same object (the tenant's id, the batch's `now`) is processed once: converting a
    UUID or a timestamp for SQLite costs more than inserting it."""
    built: list[Iterable[Any]] = []
    for key, process in columns:
        first = rows[0][key]
        if all(r[key] is first for r in rows):
            built.append(repeat(first if process is None else process(first), len(rows)))
        elif process is None:
            built.append([r[key] for r in rows])
        else:
            built.append([process(r[key]) for r in rows])
    return list(zip(*built, strict=True))


@dataclass(frozen=True)
class _InsertPlan:
    sql: str
    columns: list[tuple[str, Callable[[Any], Any] | None]]  # per placeholder: key, processor
    defaults: dict[str, Any]  # constant Python defaults of the columns the rows leave out


_PLANS: dict[tuple[Table, tuple[str, ...]], _InsertPlan | None] = {}


def _sqlite_insert_plan(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> _InsertPlan | None:
    """How to insert rows with these keys through the driver; None — use Core — off SQLite,
    or when a column the rows leave out has a default computed per row (e.g. a new id)."""
    if dialect.name != "sqlite":
        return None
    if (table, keys) in _PLANS:
        return _PLANS[(table, keys)]
    defaults: dict[str, Any] = {}
    plan: _InsertPlan | None = None
    for column in table.columns:
        if column.key in keys or column.default is None:
            continue
        if not column.default.is_scalar:
            break
        defaults[column.key] = cast(Any, column.default).arg
    else:
        compiled = table.insert().compile(dialect=dialect, column_keys=[*keys, *defaults])
        plan = _InsertPlan(
            str(compiled),
            [
                (key, _driver_processor(table.columns[key], dialect))
                for key in compiled.positiontup or ()
            ],
            defaults,
        )
    _PLANS[(table, keys)] = plan
    return plan


def _driver_processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column's bind processor, but none for plain bytes: SQLAlchemy wraps each in the
    driver's `Binary` (a memoryview, for `sqlite3`), which stores the same BLOB as the bytes."""
    if type(column.type) is LargeBinary:
        return None
    return column.type.dialect_impl(dialect).bind_processor(dialect)


# ---------------------------------------------------------------------------------------------
# Unit of work: side effects leave only after commit (DESIGN.md §4 invariant 4).

_AFTER_COMMIT = "pledge_after_commit"
_AFTER_ANSWER = "pledge_after_answer"
_SAVEPOINTS = "pledge_savepoints"  # open savepoint → how many actions were queued before it


def after_commit(session: Session, action: Callable[[], None], *, lane: str | None = None) -> None:
    """Run `action` once the session's transaction has committed; drop it on rollback.

    A `lane` ("mail", "webhooks") marks a call out to a relay or a receiver whose outcome
    the answer to the person who acted does not show: where someone is waiting for that
    answer (a web request, `hand_over_network_actions`), it runs once the answer has left,
    after the earlier actions of its lane (a receiver hears of a request's changes in the
    order they happened), beside the other lanes. Elsewhere (CLI, worker) it runs at once."""
    session.info.setdefault(_AFTER_COMMIT, []).append((action, lane))


def hand_over_network_actions(session: Session, later: dict[str, list[Callable[[], None]]]) -> None:
    """When this session commits, put its actions that have a lane in `later` (by lane, in
    order) instead of running them: its caller runs them after answering."""
    session.info[_AFTER_ANSWER] = later


def run_guarded(actions: Iterable[Callable[[], None]]) -> None:
    """Run each action; one that fails is logged and does not stop the others (a failed
    e-mail must not undo a committed erasure, nor keep its webhook from leaving)."""
    for action in actions:
        try:
            action()
        except Exception:
            log.exception("after-commit action failed")


def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released (SQLAlchemy calls it a commit): nothing has committed
    actions: list[tuple[Callable[[], None], str | None]] = session.info.pop(_AFTER_COMMIT, [])
    later: dict[str, list[Callable[[], None]]] | None = session.info.get(_AFTER_ANSWER)
    now: list[Callable[[], None]] = []
    for action, lane in actions:
        if later is not None and lane is not None:
            later.setdefault(lane, []).append(action)
        else:
            now.append(action)
    run_guarded(now)


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    """A savepoint begins: remember how many actions were queued before it."""
    if transaction.nested:
        queued = len(session.info.get(_AFTER_COMMIT, ()))
        session.info.setdefault(_SAVEPOINTS, {})[transaction] = queued


def _drop_after_rollback(session: Session, previous: SessionTransaction) -> None:
    """A rollback drops the actions it undoes: a savepoint's, those queued since it began
    (a form step refused inside one must not send its e-mail, nor cancel the transaction's
    others); the whole transaction's, all of them."""
    marks: dict[SessionTransaction, int] = session.info.get(_SAVEPOINTS, {})
    # A flush runs in a sub-transaction of its own: its failing undoes what the nearest
    # savepoint (or the whole transaction) holds, and that is what its rollback drops.
    while previous.parent is not None and not previous.nested:
        previous = previous.parent
    if previous.nested:
        queued = session.info.get(_AFTER_COMMIT)
        since = marks.pop(previous, None)
        if queued is not None and since is not None:
            del queued[since:]
        return
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_SAVEPOINTS, None)


def _forget_savepoints(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended: no savepoint is open
        session.info.pop(_SAVEPOINTS, None)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_transaction_create", _mark_savepoint)
    event.listen(factory, "after_soft_rollback", _drop_after_rollback)
    event.listen(factory, "after_transaction_end", _forget_savepoints)
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def serialise_on(session: Session, *parts: bytes) -> None:
    """Make the transactions that call this with the same `parts` take turns, to the end of
    the transaction: a check-then-insert ("at most N a day") is otherwise raced by two at
    once, each counting before the other's insert. A transaction-level advisory lock on
    PostgreSQL; nothing on SQLite, whose writers take turns already (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(b"\x00".join(parts), digest_size=8).digest()
    session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, signed=True))))


_READ_ONLY = "pledge_read_only"


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that only reads the data store, from one consistent snapshot, and takes
    no write lock: a long read (an audit chain's walk) neither stops writers on SQLite, where
    every other transaction begins IMMEDIATE, nor sees on PostgreSQL rows committed while it
    runs (REPEATABLE READ, READ ONLY). For reads only: PostgreSQL refuses a write in it, and
    on SQLite a write would take the lock late, where it may find the snapshot stale."""
    session = factory()
    options: dict[str, Any] = {_READ_ONLY: True}
    if session.get_bind().dialect.name == "postgresql":
        options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    try:
        session.connection(execution_options=options)
        yield session
    finally:
        session.rollback()  # nothing to keep: it only read
        session.close()


def read_connection(engine: Engine) -> Connection:
    """A connection whose transaction only reads one statement's worth (a data key, a public
    key): a plain BEGIN on SQLite, no write lock taken and none waited for. Use it with
    `with`; it rolls back when it closes."""
    return engine.connect().execution_options(**{_READ_ONLY: True})


def is_read_only(session: Session) -> bool:
    """Whether the session's transaction is a `read_transaction`."""
    return bool(session.connection().get_execution_options().get(_READ_ONLY))


# ---------------------------------------------------------------------------------------------
# A memo for one transaction

_MEMO = "pledge.transaction_memo"


def transaction_memo(session: Session) -> dict[Any, Any]:
    """Values read several times in one transaction (a request's pauses, a data key, a
    tenant's webhook endpoints), for the code that also writes them to keep current. Dropped
    when the transaction or a savepoint ends, committed or rolled back — not at the
    subtransaction every flush opens and closes — so nothing outlives what it describes.
    Keys name their owner and carry the tenant or a server-made id."""
    txn = session.get_transaction()
    if txn is None:
        return {}
    held: tuple[SessionTransaction, dict[Any, Any]] | None = session.info.get(_MEMO)
    if held is None or held[0] is not txn:
        held = (txn, {})
        session.info[_MEMO] = held
    return held[1]


@event.listens_for(Session, "after_transaction_end")
def _drop_transaction_memo(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None or transaction.nested:
        session.info.pop(_MEMO, None)
