"""The access bundle of a subject with many interactions: each payload, exactly as given, in
the JSON document, the CSV and the page, in one zip whose large files are deflated on a worker
thread; a retention class whose key is gone shows as erased — on both databases."""

from __future__ import annotations

import csv
import html
import io
import json
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
        ctx.keystore.shred_subject(ctx.tenant_id, sid, keep=["billing"])
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


@given(_ROWS)
@example([[""], ["a", ""], ['say "hi"', "x,y", "two\nlines", "\r"]])
def test_the_bundle_csv_is_what_the_csv_module_writes(rows: list[list[str]]) -> None:
    expected = io.StringIO()
    csv.writer(expected).writerows(rows)
    assert bundle._csv(rows) == expected.getvalue().encode("utf-8")


@given(st.lists(st.tuples(_TEXT, _TEXT, _TEXT), max_size=8))
@example([("2026-01-01", "chat", "<b>&</b>")])
def test_the_page_rows_escape_every_cell(rows: list[tuple[str, str, str]]) -> None:
    expected = "".join(
        f"<tr><td>{html.escape(a, quote=False)}</td><td>{html.escape(b, quote=False)}</td>"
        f"<td>{html.escape(c, quote=False)}</td></tr>\n"
        for a, b, c in rows
    )
    assert str(bundle._table_rows(rows)) == expected
