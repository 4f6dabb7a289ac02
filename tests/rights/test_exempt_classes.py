"""A tenant declares a retention class exempt from erasure (a legal duty, e.g. billing records
kept 7 years — seed 001 §12), through the CLI or the tenants service: an erasure request
keeps that class with no staff hold and the letter says why; un-exempting lets the next
erasure take it. On both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake
from pledge.core.db import transaction
from pledge.core.errors import InvalidInput
from pledge.demo import DEMO_SLUG, build_demo
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.rights import fulfilment, verification
from pledge.rights import service as rights
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from pledge.tenants.models import Tenant
from tests.cli.test_cli import run
from tests.rights.test_requests import letter_text

TAX = "Tax law: invoices kept 7 years"
KEPT_LINE = "Some of your data is kept, and why:\n  - billing: " + TAX


def _customer(runtime: Runtime, tenant: str, email: str) -> None:
    """Someone who bought: a name and an invoice reference in the billing class."""
    with runtime.tenant_context(tenant) as ctx:
        if purposes.find_purpose(ctx, "newsletter") is None:
            clik(ctx)  # Clik's purposes and collection points (a purchase among them)
        intake.collect(
            ctx,
            "purchase",
            [
                FieldInput("email", email),
                FieldInput("first_name", "Rita", "user.name.first"),
                FieldInput("invoice_ref", "INV-77", "user.financial", "direct", "billing"),
            ],
        )


def _erasure(runtime: Runtime, tenant: str, email: str) -> tuple[str, list[str], list[str]]:
    """An erasure request from `email`, verified and fulfilled with no staff hold: its id,
    what the answer says is kept, and the names of the fields left on file."""
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("erasure", Requester(email, "Rita"), "EU"))
        challenge = verification.begin(ctx, request)
        assert challenge is not None
        outcome = verification.confirm(
            ctx, request, code=challenge.code, data_points={"first_name": "rita"}
        )
        assert outcome.verified, outcome.reason
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request.id)
        result = fulfilment.fulfil(ctx, request)
        assert result.state == "completed"
        assert request.subject_id is not None
        view = reading.read_subject(ctx, request.subject_id, audited=False)
        return str(request.id), list(result.kept), [f.name for f in view.fields]


def test_a_class_declared_exempt_at_creation_is_kept_with_no_staff_hold(
    runtime: Runtime,
) -> None:
    with transaction(runtime.sessions) as session:
        tenants.create_tenant(
            session,
            runtime.keystore,
            slug="shop",
            name="Shop Ltd",
            jurisdictions=["EU"],
            retention_classes={"billing": "Billing records"},
            exempt_on_erasure={"billing": f"  {TAX} "},
        )
    _customer(runtime, "shop", "rita@example.com")
    request_id, kept, left = _erasure(runtime, "shop", "rita@example.com")
    assert kept == [f"billing: {TAX}"]
    assert left == ["invoice_ref"]
    text = letter_text(runtime, "shop", request_id, "completed")
    assert "We erased your personal data except what the law requires us to keep" in text
    assert KEPT_LINE in text


def test_exempt_and_not_exempt_through_the_cli(runtime: Runtime, cli_env: dict[str, str]) -> None:
    code, out = run(
        "tenant",
        "create",
        "shop",
        "--name",
        "Shop Ltd",
        "--jurisdiction",
        "EU",
        "--retention-class",
        "billing=Billing records",
        "--exempt",
        f"billing={TAX}",
    )
    assert code == 0, out
    code, out = run("tenant", "list")
    assert code == 0 and "shop: billing kept on erasure" in out, out
    _customer(runtime, "shop", "rita@example.com")
    request_id, kept, left = _erasure(runtime, "shop", "rita@example.com")
    assert kept == [f"billing: {TAX}"] and left == ["invoice_ref"]
    assert KEPT_LINE in letter_text(runtime, "shop", request_id, "completed")

    # The duty ends (or was declared by mistake): the next erasure takes the invoices too.
    code, out = run("tenant", "retention-class", "--tenant", "shop", "billing", "--not-exempt")
    assert code == 0 and "no longer kept on erasure" in out, out
    code, out = run("tenant", "list")
    assert "shop" in out and "kept on erasure" not in out, out
    _customer(runtime, "shop", "sam@example.com")
    request_id, kept, left = _erasure(runtime, "shop", "sam@example.com")
    assert kept == [] and left == []
    text = letter_text(runtime, "shop", request_id, "completed")
    assert "We erased your personal data." in text and "is kept, and why" not in text
    with runtime.tenant_context("shop") as ctx:
        assert ctx.tenant.retention_classes == {"billing": {"description": "Billing records"}}


def test_an_existing_tenant_adds_a_class_and_exempts_one(runtime: Runtime, tenant: str) -> None:
    # `tenant` has a billing class, not exempt: a new class, then the exemption on billing.
    with runtime.tenant_context(tenant) as ctx:
        assert tenants.set_retention_class(ctx, "payroll", "Payroll records") == "added"
        assert tenants.set_retention_class(ctx, "billing", None, TAX) == "changed"
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.tenant.retention_classes == {
            "billing": {"description": "Billing records, 7 years", "exempt_on_erasure": TAX},
            "payroll": {"description": "Payroll records"},
        }
        # The description alone changes; the exemption stays.
        tenants.set_retention_class(ctx, "billing", "Invoices and receipts")
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.tenant.retention_classes["billing"] == {
            "description": "Invoices and receipts",
            "exempt_on_erasure": TAX,
        }
    _customer(runtime, tenant, "rita@example.com")
    request_id, kept, left = _erasure(runtime, tenant, "rita@example.com")
    assert kept == [f"billing: {TAX}"] and left == ["invoice_ref"]
    assert KEPT_LINE in letter_text(runtime, tenant, request_id, "completed")


def test_each_change_is_audited_without_its_free_text(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        tenants.set_retention_class(ctx, "billing", "Invoices", TAX)
        tenants.set_retention_class(ctx, "payroll", "Payroll records")
        tenants.set_retention_class(ctx, "billing", None, None)
    with runtime.tenant_context(tenant) as ctx:
        entries = [
            e.details
            for e in audit.list_entries(ctx, limit=100)
            if e.event == AuditEvent.TENANT_RETENTION_CLASS_SET.value
        ]
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok
    assert entries == [
        {"class": "billing", "added": False, "exempt_on_erasure": True},
        {"class": "payroll", "added": True, "exempt_on_erasure": False},
        {"class": "billing", "added": False, "exempt_on_erasure": False},
    ]


def _entries(runtime: Runtime, tenant: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        return len(audit.list_entries(ctx, limit=10_000))


@pytest.mark.parametrize(
    ("name", "reason", "error"),
    [
        ("payroll", TAX, "no retention class 'payroll'"),
        ("billing", "tax law", "say why the billing data is kept"),
        ("billing", "x" * 301, "at most 300"),
        ("standard", TAX, "the standard class cannot be exempt"),
    ],
)
def test_bad_exemptions_at_creation_are_refused_and_no_tenant_is_made(
    runtime: Runtime, name: str, reason: str, error: str
) -> None:
    with pytest.raises(InvalidInput, match=error), transaction(runtime.sessions) as session:
        tenants.create_tenant(
            session,
            runtime.keystore,
            slug="shop",
            name="Shop Ltd",
            retention_classes={"billing": "Billing records"},
            exempt_on_erasure={name: reason},
        )
    with runtime.sessions() as session:
        assert session.scalar(select(func.count(Tenant.id)).where(Tenant.slug == "shop")) == 0


@pytest.mark.parametrize(
    ("name", "description", "reason", "error"),
    [
        ("Pay Roll", "Payroll", None, "lower-case letters, digits"),
        ("billing", None, "tax law", "say why the billing data is kept"),
        ("billing", None, "x" * 301, "at most 300"),
        ("billing", "x" * 201, None, "at most 200"),
        ("standard", None, TAX, "the standard class cannot be exempt"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(
    runtime: Runtime,
    tenant: str,
    name: str,
    description: str | None,
    reason: str | None,
    error: str,
) -> None:
    before = _entries(runtime, tenant)
    with pytest.raises(InvalidInput, match=error), runtime.tenant_context(tenant) as ctx:
        tenants.set_retention_class(ctx, name, description, reason)
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.tenant.retention_classes == {
            "billing": {"description": "Billing records, 7 years"}
        }
    assert _entries(runtime, tenant) == before


def test_bad_input_on_the_cli_is_a_clear_error(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    code, out = run("tenant", "create", "shop", "--name", "Shop", "--exempt", f"billing={TAX}")
    assert code == 1 and "no retention class 'billing'" in out, out
    code, out = run("tenant", "create", "shop", "--name", "Shop", "--exempt", "billing")
    assert code == 1 and "class=reason" in out, out
    code, out = run(
        "tenant", "retention-class", "-t", tenant, "billing", "--exempt-on-erasure", "law"
    )
    assert code == 1 and "say why the billing data is kept" in out, out
    code, out = run(
        "tenant",
        "retention-class",
        "-t",
        tenant,
        "billing",
        "--exempt-on-erasure",
        TAX,
        "--not-exempt",
    )
    assert code == 1 and "either" in out, out
    code, out = run("tenant", "list")
    assert "shop" not in out and "kept on erasure" not in out, out


def test_the_demo_keeps_its_billing_records_on_erasure(runtime: Runtime) -> None:
    build_demo(runtime, 0)
    with runtime.tenant_context(DEMO_SLUG) as ctx:
        billing = ctx.tenant.retention_classes["billing"]
    assert billing["exempt_on_erasure"].startswith("tax law requires us to keep invoices")
