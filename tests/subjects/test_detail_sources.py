"""The subject page says, field by field, what kind of data each value is and where it came
from — the seeds tell a value the person gave from one a partner passed on (1CRM §2.1–2.5)."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient

from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app
from tests.conftest import login, make_user

STAFF = "staff@acme.example"


def _field_rows(page: str) -> dict[str, list[str]]:
    """Field name → its row's cells as text (value, category, source, retention, updated)."""
    section = page.split('<h2 id="fields-h">', 1)[1].split("</section>", 1)[0]
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, re.S):
        name = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        if name is None:
            continue  # the header row
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        rows[unescape(name.group(1))] = [
            " ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells
        ]
    return rows


def test_each_field_row_shows_its_own_category_and_source(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = subjects.create_subject(
            ctx,
            [
                FieldInput("email", "wren.alder@example.com"),  # direct, by default
                FieldInput(
                    "company", "Smith & Daughters", "user.contact.organization", "third_party"
                ),
                FieldInput("signed_in_with", "Google", "user.account", "integrated_service"),
                FieldInput("browser", "Firefox 126", "user.device", "automatic"),
            ],
        )
    make_user(runtime, tenant, STAFF)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    login(client, tenant, STAFF)
    page = client.get(f"/subjects/{sid}")
    assert page.status_code == 200
    rows = _field_rows(page.text)
    shown = {name: (cells[0], cells[1], cells[2]) for name, cells in rows.items()}
    assert shown == {
        "email": ("wren.alder@example.com", "E-mail address user.contact.email", "direct"),
        "company": ("Smith & Daughters", "Organisation user.contact.organization", "third party"),
        "signed_in_with": ("Google", "Account information user.account", "integrated service"),
        "browser": ("Firefox 126", "Device data user.device", "automatic"),
    }
