"""CSV import of contacts.

The whole file is validated before anything is written: if any row is bad, every bad row is
reported with its line number and the reason, and nothing is imported (DESIGN.md §4
invariant 5). The import then runs in batches, each one transaction (keys first, then
rows and audit entries), so a killed import leaves whole subjects or none; running it again
skips the rows already imported, matched by their identities' blind indexes (a row only partly
matching a subject already in the vault is a problem of the file, not skipped).

Columns `email`, `phone`, `first_name`, `last_name`, `external_id` are understood (and their
usual other spellings: `E-mail Address`, `Phone Number`, `Surname`…, see SPELLINGS); any other
column is a custom field and needs a category, given with `--category column=category` or in
a TOML mapping file:

    [columns.company]
    category = "user.contact.organization"
    source = "third_party"          # optional, default from the command line
    retention_class = "standard"    # optional
    field = "company_name"          # optional, default: the column name

A mapping's `field` may also name a known column: `[columns."work mail"]` with
`field = "email"` makes that column the subjects' e-mail identity (no category needed).
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.subjects import service
from pledge.subjects.categories import check_category
from pledge.subjects.identity import InvalidIdentity, normalise_email
from pledge.subjects.models import STANDARD_CLASS, DataSource
from pledge.subjects.vault import IdentityIndexer

KNOWN_COLUMNS: dict[str, str | None] = {
    "email": None,  # identity fields: category implied
    "phone": None,
    "external_id": None,
    "first_name": "user.name.first",
    "last_name": "user.name.last",
}
IDENTITY_COLUMNS = frozenset(k for k, category in KNOWN_COLUMNS.items() if category is None)
# Headers of contact lists exported from other tools ("E-mail Address", "Phone Number",
# "Surname"), as field names, and the known column each one is.
SPELLINGS = {
    "e_mail": "email",
    "email_address": "email",
    "e_mail_address": "email",
    "phone_number": "phone",
    "telephone": "phone",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
}
MAX_ERRORS_SHOWN = 200
PROGRESS_EVERY = 1000  # rows checked between two progress reports
NO_IDENTITY_COLUMN = "the file needs an email, phone or external_id column"
_SOURCES = sorted(s.value for s in DataSource)


@dataclass(frozen=True)
class ColumnSpec:
    column: str
    field: str
    category: str | None
    source: str
    retention_class: str


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


class ImportInvalid(InvalidInput):
    """A file with bad rows. Its message (for a page or an API answer) shows the first
    MAX_ERRORS_SHOWN of them; the CLI lists every one from `errors`, then `summary`."""

    def __init__(self, errors: list[RowError], *, done: str = "imported") -> None:
        errors = sorted(errors, key=lambda e: e.line)
        self.summary = f"{len(errors)} problem(s), nothing was {done}"
        shown = "\n".join(str(e) for e in errors[:MAX_ERRORS_SHOWN])
        more = len(errors) - MAX_ERRORS_SHOWN
        if more > 0:
            shown += f"\n… and {more} more"
        super().__init__(f"{self.summary}:\n{shown}")
        self.errors = errors


@dataclass
class ImportPlan:
    rows: list[tuple[int, service.PreparedSubject]]
    columns: list[ColumnSpec]


@dataclass
class ImportResult:
    created: int = 0
    already_present: int = 0
    batches: int = 0


def parse_category_options(options: list[str]) -> dict[str, str]:
    """`column=category` pairs from the command line."""
    out: dict[str, str] = {}
    for option in options:
        column, sep, category = option.partition("=")
        if not sep or not column.strip() or not category.strip():
            raise InvalidInput(f"--category takes column=category, not {option[:80]!r}")
        out[column.strip().lower()] = category.strip()
    return out


def read_mapping(path: Path) -> dict[str, dict[str, str]]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read mapping file {path.name}: {exc}") from None
    columns = doc.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, dict) for v in columns.values()):
        raise InvalidInput("a mapping file has [columns.<name>] tables")
    return {str(k).lower(): {str(a): str(b) for a, b in v.items()} for k, v in columns.items()}


def _column_specs(
    header: list[str],
    categories: dict[str, str],
    mapping: dict[str, dict[str, str]],
    source: str,
    retention_class: str,
    classes: set[str],
) -> tuple[list[ColumnSpec], list[RowError]]:
    errors: list[RowError] = []
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    column_of_field: dict[str, str] = {}
    columns = [raw.strip().lower() for raw in header]
    as_named = {_as_field_name(c) for c in columns}
    fields = {_field_of(c, mapping, categories, as_named) for c in columns}
    if any(_is_contact_detail(raw) for raw in header) and not IDENTITY_COLUMNS & fields:
        # The file has no header: its first contact would be echoed back as column names.
        return [], [
            RowError(
                1,
                "contact details where the column names should be: the file needs a header "
                "row (email, phone, first_name, last_name, …)",
            )
        ]
    if not KNOWN_COLUMNS.keys() & fields:
        # Not one column Pledge knows: most likely no header, the first line a person (a
        # customer number, names) whose cells must not be echoed back as column names.
        return [], [RowError(1, f"{NO_IDENTITY_COLUMN} (is the header row missing?)")]
    for raw in header:
        column = raw.strip().lower()
        if column in seen:
            errors.append(RowError(1, f"column {column!r} appears twice"))
            continue
        seen.add(column)
        conf = mapping.get(column, {})
        name = _field_of(column, mapping, categories, as_named)
        if not service.FIELD_NAME.match(name):
            errors.append(RowError(1, f"column {raw[:64]!r} cannot be a field name"))
            continue
        category = categories.get(column) or conf.get("category") or KNOWN_COLUMNS.get(name)
        if category is None and name not in KNOWN_COLUMNS:
            errors.append(
                RowError(1, f"column {column!r} needs a category: --category {column}=user.…")
            )
            continue
        if category is not None and (problem := check_category(category)):
            errors.append(RowError(1, f"column {column!r}: category {category[:80]!r} {problem}"))
            continue
        # A setting wrong for the whole column is one problem of the header, not one per row.
        if (other := column_of_field.setdefault(name, column)) != column:
            errors.append(RowError(1, f"columns {other!r} and {column!r} both fill field {name!r}"))
            continue
        spec = ColumnSpec(
            column=raw,
            field=name,
            category=category,
            source=conf.get("source", source),
            retention_class=conf.get("retention_class", retention_class),
        )
        if spec.source not in _SOURCES:
            errors.append(
                RowError(1, f"column {column!r}: source must be one of: {', '.join(_SOURCES)}")
            )
        if spec.retention_class not in classes:
            errors.append(
                RowError(
                    1,
                    f"column {column!r}: unknown retention class {spec.retention_class[:40]!r}",
                )
            )
        specs.append(spec)
    if not IDENTITY_COLUMNS & {spec.field for spec in specs}:
        errors.append(RowError(1, NO_IDENTITY_COLUMN))
    return specs, errors


def _field_of(
    column: str,
    mapping: dict[str, dict[str, str]],
    categories: dict[str, str],
    as_named: set[str],
) -> str:
    """The field a column (lower-case) fills: the mapping's `field`, else the column's name
    as a field name (`_as_field_name`). A usual other spelling of a known column (SPELLINGS)
    is that column — unless the column was given a category (it is a custom field: a
    "telephone" note is not the phone identity) or the header has the known column itself."""
    conf = mapping.get(column, {})
    if "field" in conf:
        return conf["field"]
    name = _as_field_name(column)
    known = SPELLINGS.get(name)
    if known is None or column in categories or "category" in conf or known in as_named:
        return name
    return known


def _as_field_name(column: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", column).strip("_")


_PHONE_LIKE = re.compile(r"\+?[\d\s().-]{7,}")


def _is_contact_detail(text: str) -> bool:
    """An e-mail address or phone number: a value, never a column name."""
    if _PHONE_LIKE.fullmatch(text.strip()) and sum(c.isdigit() for c in text) >= 7:
        return True
    try:
        normalise_email(text)
    except InvalidIdentity:
        return False
    return True


def read_text(path: Path, *, done: str = "imported") -> str:
    """The file as text (UTF-8, a BOM allowed); a clear error when it cannot be read
    (`done`: what did not happen to the file's rows, for the message)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc.strerror}") from None
    return decode_text(data, done=done)


def decode_text(data: bytes, *, done: str = "imported") -> str:
    """An uploaded or read file as text: UTF-8, a BOM allowed, else the line that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportInvalid(
            [RowError(line, "not UTF-8 text (save the file as UTF-8 CSV)")], done=done
        ) from None


def plan_import(
    ctx: TenantContext,
    path: Path,
    *,
    categories: dict[str, str] | None = None,
    mapping: dict[str, dict[str, str]] | None = None,
    source: str = DataSource.DIRECT.value,
    retention_class: str = STANDARD_CLASS,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportPlan:
    """Validate the whole file; raise `ImportInvalid` listing every bad row, or return the plan.
    It writes nothing: `ctx` may be a read-only transaction. `on_progress(lines read, lines
    in the file)` is called every PROGRESS_EVERY rows and at the end."""
    text = read_text(path)
    # Lines as the reader counts them: ended by \n or \r\n, or by \r alone (old Macs).
    ends = max(text.count("\n"), text.count("\r"))
    total_lines = ends + (0 if text.endswith(("\n", "\r")) else 1)
    # Strict: a quote left open is an error, not the rest of the file read as one value.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportInvalid([RowError(0, "the file is empty")]) from None
    except csv.Error as exc:
        raise ImportInvalid([RowError(1, f"not a CSV header: {exc}")]) from None
    specs, errors = _column_specs(
        header,
        categories or {},
        mapping or {},
        source,
        retention_class,
        service.retention_classes(ctx),
    )
    if errors:
        raise ImportInvalid(errors)
    indexer = IdentityIndexer(ctx.keystore, ctx.tenant_id)
    now = utcnow()
    rows: list[tuple[int, service.PreparedSubject]] = []
    first_line_of: dict[tuple[str, bytes], int] = {}
    line = reader.line_num
    while True:
        if on_progress is not None and reader.line_num % PROGRESS_EVERY == 0:
            on_progress(reader.line_num, total_lines)
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader goes on at the next line: every bad row is still listed.
            line, start_line = reader.line_num, line + 1
            errors.append(RowError(start_line, f"not valid CSV: {exc}"))
            continue
        line, start_line = reader.line_num, line + 1
        if not any(v.strip() for v in values):
            continue  # blank lines are not rows
        if len(values) != len(header):
            errors.append(
                RowError(start_line, f"has {len(values)} values, the header has {len(header)}")
            )
            continue
        items = [
            service.FieldInput(s.field, v.strip(), s.category, s.source, s.retention_class)
            for s, v in zip(specs, values, strict=True)
            if v.strip()
        ]
        try:
            prepared = service.prepare_subject(ctx, items, indexer, now)
        except InvalidInput as exc:
            errors.append(RowError(start_line, exc.detail))
            continue
        duplicate = next(
            (
                first_line_of[(k.value, b)]
                for k, b in prepared.identities
                if (k.value, b) in first_line_of
            ),
            None,
        )
        if duplicate is not None:
            errors.append(RowError(start_line, f"same identity as line {duplicate}"))
            continue
        for k, b in prepared.identities:
            first_line_of[(k.value, b)] = start_line
        rows.append((start_line, prepared))
    if on_progress is not None:
        on_progress(total_lines, total_lines)
    errors.extend(_vault_clashes(ctx, rows))
    if errors:
        raise ImportInvalid(errors)
    return ImportPlan(rows, specs)


def _vault_clashes(
    ctx: TenantContext, rows: list[tuple[int, service.PreparedSubject]]
) -> list[RowError]:
    """Rows that only partly match subjects already in the vault. A row whose identities are
    all one subject's was imported before (a re-run) and is skipped later; any other match
    would be skipped too, and a new person's data lost without a word."""
    known = service.existing_identities(ctx, [i for _line, p in rows for i in p.identities])
    if not known:
        return []
    errors: list[RowError] = []
    for line, prepared in rows:
        owners = {
            k.value: known[(k.value, b)] for k, b in prepared.identities if (k.value, b) in known
        }
        if not owners:
            continue
        if len(set(owners.values())) > 1:
            kinds = " and ".join(owners)
            errors.append(RowError(line, f"its {kinds} belong to different subjects already here"))
        elif len(owners) < len(prepared.identities):
            held = " and ".join(owners)
            new = [k.value for k, _b in prepared.identities if k.value not in owners]
            verb = "belong" if len(owners) > 1 else "belongs"
            errors.append(
                RowError(
                    line,
                    f"its {held} {verb} to a subject already here, "
                    f"its {' and '.join(new)} {'do' if len(new) > 1 else 'does'} not",
                )
            )
    return errors


def batches(plan: ImportPlan, size: int) -> Iterator[list[service.PreparedSubject]]:
    for start in range(0, len(plan.rows), size):
        yield [p for _line, p in plan.rows[start : start + size]]


def import_batch(
    ctx: TenantContext, batch: list[service.PreparedSubject], number: int
) -> tuple[int, int]:
    """Store one batch in the caller's transaction; rows whose identity is already known (an
    earlier, interrupted run) are skipped. Returns (created, already present)."""
    known = service.existing_identities(ctx, [i for p in batch for i in p.identities])
    fresh = [p for p in batch if not any((k.value, b) in known for k, b in p.identities)]
    service.store_subjects(ctx, fresh, event=AuditEvent.SUBJECT_CREATED, via="import")
    audit.record(
        ctx,
        AuditEvent.SUBJECTS_IMPORTED,
        details={
            "batch": number,
            "created": len(fresh),
            "already_present": len(batch) - len(fresh),
        },
    )
    return len(fresh), len(batch) - len(fresh)


def run_import(
    open_context: Callable[[], AbstractContextManager[TenantContext]],
    plan: ImportPlan,
    *,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Run the plan batch by batch; `open_context()` gives a context whose transaction commits
    when its block ends: one transaction per batch."""
    result = ImportResult()
    for number, batch in enumerate(batches(plan, batch_size), start=1):
        with open_context() as ctx:
            created, present = import_batch(ctx, batch, number)
        result.created += created
        result.already_present += present
        result.batches += 1
        if on_progress:
            on_progress(len(batch))
    return result
