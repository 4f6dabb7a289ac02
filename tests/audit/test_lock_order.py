"""An audited act of a tenant and a change of the tenant's settings at once (PostgreSQL).

An append locked the chain's head, then wrote its entries, whose row refers to the tenant
(the tenant row FOR KEY SHARE); a settings change locks the tenant row FOR UPDATE, then
audits the change (the head). Interleaved, each waited for the other and PostgreSQL aborted
one (a deadlock): the operator's command or the act — a verification from the console, a
gate check — failed. The tenant row is taken first by both: one waits for the other's end,
and both are done."""

from __future__ import annotations

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.models import AuditEntry
from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.gate import service as gate
from pledge.presets import clik
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from tests.lock_order import at_once, chain_holds, postgresql_only


def _events(runtime: Runtime, slug: str) -> list[str]:
    with runtime.tenant_context(slug) as ctx:
        return list(
            ctx.session.scalars(
                select(AuditEntry.event)
                .where(AuditEntry.tenant_id == ctx.tenant_id)
                .order_by(AuditEntry.seq)
            )
        )


def test_the_chain_verified_from_the_console_while_the_privacy_contact_is_changed(
    runtime: Runtime, tenant: str
) -> None:
    postgresql_only(runtime)

    def verifies(ctx: TenantContext) -> bool:
        return audit.verify_and_record(ctx).verified.ok

    def sets_contact(ctx: TenantContext) -> bool:
        return tenants.set_privacy_contact(ctx, "privacy@acme.example")

    verified, changed = at_once(runtime, tenant, verifies, sets_contact)
    assert verified is True and changed is True
    with runtime.tenant_context(tenant) as ctx:
        assert ctx.tenant.privacy_contact == "privacy@acme.example"
    # Both audited, the change after the verification it waited for; the chain holds.
    assert _events(runtime, tenant)[-2:] == ["audit.verified", "tenant.contact_set"]
    assert chain_holds(runtime, tenant)


def test_a_gate_check_while_the_childrens_rules_are_changed(runtime: Runtime, tenant: str) -> None:
    # The app asks whether it may send the newsletter to a subscriber as the operator raises
    # the age under which a person is a child.
    postgresql_only(runtime)
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        subject_id = intake.collect(
            ctx,
            "newsletter",
            [
                FieldInput("email", "sam@example.com"),
                FieldInput("first_name", "Sam", "user.name.first"),
            ],
            [ConsentChoice("newsletter", True)],
        ).subject_id

    def checks(ctx: TenantContext) -> bool:
        return gate.may(ctx, subject_id, "newsletter", "email").allowed

    def raises_age(ctx: TenantContext) -> list[str]:
        return tenants.set_children_rules(ctx, child_age=18)

    allowed, changed = at_once(runtime, tenant, checks, raises_age)
    assert allowed is True and changed == ["child_age"]
    assert _events(runtime, tenant)[-2:] == ["gate.checked", "tenant.children_rules_set"]
    assert chain_holds(runtime, tenant)
