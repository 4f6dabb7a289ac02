"""The retention classes a tenant keeps on erasure (`exempt_on_erasure`: a legal duty) are kept
by every erasure — the CLI, the API, the console, the hygiene bulk erasure — with no staff
choice, until staff say the legal period is over. What an erasure says it kept is what still
holds data. On both databases."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from pledge.access.permissions import Role
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake
from pledge.gate import hygiene
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.rights import recipients
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading, service
from pledge.subjects.models import Interaction, SubjectRecord
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.cli.test_cli import run
from tests.conftest import api_client, login, make_api_token, make_tenant, make_user
from tests.rights.test_exempt_classes import _erasure as erasure_request
from tests.rights.test_requests import letter_text

TAX = "Tax law: invoices kept 7 years"
PAYROLL = "Labour law: payslips kept 5 years"
SHOP = "shop"


@pytest.fixture
def shop(runtime: Runtime) -> str:
    """A tenant keeping billing and payroll on erasure; claims is a class staff may hold."""
    make_tenant(
        runtime,
        SHOP,
        retention_classes={
            "billing": "Billing records",
            "payroll": "Payroll records",
            "claims": "Legal claims",
        },
        exempt_on_erasure={"billing": TAX, "payroll": PAYROLL},
    )
    return SHOP


def _customer(runtime: Runtime, email: str, *, invoices: bool = True) -> uuid.UUID:
    """A customer: a name, and (if `invoices`) an invoice field and an order in billing."""
    fields = [FieldInput("email", email), FieldInput("first_name", "Rita", "user.name.first")]
    if invoices:
        fields.append(FieldInput("invoice_ref", "INV-77", "user.financial", "direct", "billing"))
    with runtime.tenant_context(SHOP) as ctx:
        sid = service.create_subject(ctx, fields)
        if invoices:
            service.add_interaction(
                ctx,
                sid,
                kind="order",
                occurred_at=datetime.fromisoformat("2026-02-01T09:00:00+00:00"),
                category="user.behavior.purchase_history",
                payload={"invoice": "INV-77"},
                retention_class="billing",
            )
    return sid


def _left(runtime: Runtime, sid: uuid.UUID | str) -> tuple[str, list[str], int]:
    """The subject's status, the names of its fields left, and how many interactions."""
    with runtime.tenant_context(SHOP) as ctx:
        view = reading.read_subject(ctx, sid, interactions=10, audited=False)
        return view.status, [f.name for f in view.fields], len(view.interactions)


KEPT: tuple[str, list[str], int] = ("partially_erased", ["invoice_ref"], 1)
GONE: tuple[str, list[str], int] = ("erased", [], 0)


def _erased_details(runtime: Runtime, sid: uuid.UUID | str) -> list[dict[str, Any]]:
    with runtime.tenant_context(SHOP) as ctx:
        return [
            dict(e.details)
            for e in audit.list_entries(ctx, subject_id=uuid.UUID(str(sid)), limit=100)
            if e.event == AuditEvent.SUBJECT_ERASED.value
        ]


def test_an_erasure_keeps_the_exempt_class_unless_its_period_is_over(
    runtime: Runtime, shop: str
) -> None:
    kept, taken = _customer(runtime, "rita@example.com"), _customer(runtime, "sam@example.com")
    no_invoices = _customer(runtime, "ola@example.com", invoices=False)
    with runtime.tenant_context(shop) as ctx:
        assert erasure.exempt_classes(ctx) == {"billing": TAX, "payroll": PAYROLL}
        first = erasure.erase_subject(ctx, kept)
        second = erasure.erase_subject(ctx, taken, erase_exempt=True)
        third = erasure.erase_subject(ctx, no_invoices)
    # Billing holds data, payroll none: only billing is said to be kept.
    assert (first.status, first.kept_classes) == ("partially_erased", ["billing"])
    assert (second.status, second.kept_classes) == ("erased", [])
    # Nothing of hers in a class the law keeps: she is fully erased, nothing said kept.
    assert (third.status, third.kept_classes) == ("erased", [])
    assert _left(runtime, kept) == KEPT
    assert _left(runtime, taken) == GONE
    assert _left(runtime, no_invoices) == GONE
    # The audit says what is kept, as the result does.
    assert _erased_details(runtime, kept) == [
        {
            "status": "partially_erased",
            "shredded_classes": ["standard"],
            "kept_classes": ["billing"],
            "records_deleted": 1,  # one record per class: the standard one
            "interactions_deleted": 0,
        }
    ]
    assert _erased_details(runtime, taken)[0]["kept_classes"] == []
    assert _erased_details(runtime, no_invoices)[0]["kept_classes"] == []


def test_a_class_staff_name_is_kept_only_if_it_holds_data(runtime: Runtime, shop: str) -> None:
    sid = _customer(runtime, "rita@example.com", invoices=False)
    with runtime.tenant_context(shop) as ctx:
        result = erasure.erase_subject(ctx, sid, keep_classes=["claims", "standard"])
    # "standard" held her name and e-mail: kept. Claims held nothing: not said to be kept.
    assert (result.status, result.kept_classes) == ("partially_erased", ["standard"])
    with runtime.tenant_context(shop) as ctx:
        result = erasure.erase_subject(ctx, sid, keep_classes=["claims"])
    assert (result.status, result.kept_classes) == ("erased", [])
    assert _erased_details(runtime, sid)[-1]["kept_classes"] == []


def test_a_class_without_data_loses_its_key_too(runtime: Runtime, shop: str) -> None:
    """Billing is kept by law, but this person's billing record is gone (no rows left): the
    erasure keeps nothing of billing — not even its key — and says so."""
    sid = _customer(runtime, "rita@example.com")
    with runtime.tenant_context(shop) as ctx:
        ctx.session.execute(
            delete(SubjectRecord).where(
                SubjectRecord.subject_id == sid, SubjectRecord.key_class == "billing"
            )
        )
        ctx.session.execute(delete(Interaction).where(Interaction.subject_id == sid))
        assert "billing" in ctx.keystore.key_classes(ctx.tenant_id, sid)
    with runtime.tenant_context(shop) as ctx:
        result = erasure.erase_subject(ctx, sid)
        assert (result.status, result.kept_classes) == ("erased", [])
        assert ctx.keystore.key_classes(ctx.tenant_id, sid) == []


def test_recipients_are_told_what_the_law_keeps_even_where_this_vault_holds_none(
    runtime: Runtime, shop: str, private_targets: None
) -> None:
    """A payment provider may hold the invoices of a person who has none here: the notice
    to erase names the classes kept by law, not only those that held data in Pledge."""
    with runtime.tenant_context(shop) as ctx:
        recipients.add_recipient(
            ctx,
            slug="payments",
            name="Payments Ltd",
            kind="recipient",
            country="GB",
            webhook_url="http://127.0.0.1:9/in",  # nobody there: the notice waits, sealed
        )
    _rights_erasure(runtime, "sam@example.com", invoices=False)
    with runtime.tenant_context(shop) as ctx:
        (delivery,) = ctx.session.scalars(select(WebhookDelivery))
        body = json.loads(webhooks.payload(ctx.keystore, delivery))
    assert body["event"] == "subject.erasure_requested"
    assert body["data"]["kept_classes"] == ["billing", "payroll"]


def _rights_erasure(runtime: Runtime, email: str, *, invoices: bool) -> tuple[str, list[str]]:
    """An erasure request from a customer, fulfilled with no staff hold: its id and what the
    answer says is kept."""
    with runtime.tenant_context(SHOP) as ctx:
        if purposes.find_purpose(ctx, "newsletter") is None:
            clik(ctx)
        fields = [FieldInput("email", email), FieldInput("first_name", "Rita", "user.name.first")]
        if invoices:
            fields.append(
                FieldInput("invoice_ref", "INV-77", "user.financial", "direct", "billing")
            )
        intake.collect(ctx, "purchase", fields)
    request_id, kept, _fields_left = erasure_request(runtime, SHOP, email)
    return request_id, kept


def test_an_erasure_letter_names_only_the_classes_that_hold_the_persons_data(
    runtime: Runtime, shop: str
) -> None:
    request_id, kept = _rights_erasure(runtime, "rita@example.com", invoices=True)
    assert kept == [f"billing: {TAX}"]
    text = letter_text(runtime, shop, request_id, "completed")
    assert f"billing: {TAX}" in text and "payroll" not in text

    request_id, kept = _rights_erasure(runtime, "sam@example.com", invoices=False)
    assert kept == []
    text = letter_text(runtime, shop, request_id, "completed")
    assert "We erased your personal data." in text
    assert "is kept, and why" not in text and "billing" not in text and "payroll" not in text


def test_the_cli_keeps_the_exempt_class_and_erase_exempt_takes_it(
    runtime: Runtime, shop: str, cli_env: dict[str, str]
) -> None:
    kept, taken = _customer(runtime, "rita@example.com"), _customer(runtime, "sam@example.com")
    code, out = run("subjects", "erase", "-t", shop, "--email", "rita@example.com", "--yes")
    assert code == 0 and "partially erased" in out and "kept: billing." in out, out
    code, out = run(
        "subjects", "erase", "-t", shop, "--email", "sam@example.com", "--erase-exempt", "--yes"
    )
    assert code == 0 and f"Subject {taken} erased" in out and "kept" not in out, out
    assert _left(runtime, kept) == KEPT
    assert _left(runtime, taken) == GONE


def test_the_api_keeps_the_exempt_class_and_erase_exempt_takes_it(
    runtime: Runtime, shop: str
) -> None:
    client = api_client(runtime, make_api_token(runtime, shop))
    deleted, posted, taken = (
        _customer(runtime, f"{who}@example.com") for who in ("rita", "ola", "sam")
    )
    r = client.delete(f"/api/v1/subjects/{deleted}")
    assert r.status_code == 200 and r.json()["kept_classes"] == ["billing"], r.text
    r = client.post(f"/api/v1/subjects/{posted}/erase", json={})
    assert r.status_code == 200 and r.json()["kept_classes"] == ["billing"], r.text
    r = client.post(f"/api/v1/subjects/{taken}/erase", json={"erase_exempt": True})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["kept_classes"]) == ("erased", [])
    assert _left(runtime, deleted) == KEPT and _left(runtime, posted) == KEPT
    assert _left(runtime, taken) == GONE
    # The option is part of the documented contract.
    spec = client.get("/openapi.json").json()
    described = spec["components"]["schemas"]["ErasureIn"]["properties"]["erase_exempt"]
    assert "period is over" in described["description"]


def test_the_console_form_shows_what_the_law_keeps_and_its_box_takes_it(
    runtime: Runtime, shop: str
) -> None:
    make_user(runtime, shop, "officer@shop.example", Role.PRIVACY_OFFICER)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.headers["accept"] = "text/html"
    csrf = login(client, shop, "officer@shop.example")
    kept, taken = _customer(runtime, "rita@example.com"), _customer(runtime, "sam@example.com")

    r = client.get(f"/subjects/{kept}/erase")
    assert r.status_code == 200, r.text
    page = " ".join(r.text.split())
    assert "Kept by law" in page
    assert f"<strong>billing</strong>: {TAX}" in page
    assert f"<strong>payroll</strong>: {PAYROLL}" in page
    assert "Also erase what the law kept (its period is over)" in page
    # Only the class that is not exempt is left for staff to choose.
    assert 'name="keep" value="claims"' in page and 'name="keep" value="billing"' not in page

    for sid, box in ((kept, {}), (taken, {"erase_exempt": "yes"})):
        r = client.post(
            f"/subjects/{sid}/erase",
            data={"csrf_token": csrf, "confirm": "erase", **box},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    assert _left(runtime, kept) == KEPT
    assert _left(runtime, taken) == GONE


def test_the_hygiene_bulk_erasure_keeps_the_exempt_class(runtime: Runtime, shop: str) -> None:
    kept, gone = (
        _customer(runtime, "rita@example.com"),
        _customer(runtime, "sam@example.com", invoices=False),
    )
    with runtime.tenant_context(shop) as ctx:
        done = hygiene.erase_without_basis(ctx, [kept, gone], confirm=True)
    assert sorted(done.erased) == sorted([kept, gone])
    assert _left(runtime, kept) == KEPT
    assert _left(runtime, gone) == GONE
    with runtime.tenant_context(shop) as ctx:
        (summary,) = [
            e.details
            for e in audit.list_entries(ctx, limit=100)
            if e.event == AuditEvent.HYGIENE_ERASED.value
        ]
    assert summary["kept_classes"] == ["billing"]
