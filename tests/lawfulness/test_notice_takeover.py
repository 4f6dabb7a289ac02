"""A new privacy notice dated later is on the public page before it takes effect even while
another privacy notice of the tenant is in force (seed 002 "Material Change": "a notice on
this Site prior to the change becoming effective"). The page shows the notice named "privacy",
else the first by slug in force: a tenant whose notice in force is "privacy-2024" creates
"privacy" and publishes its first version for next month — the page announces it until then,
and shows it on the day."""

from __future__ import annotations

from datetime import timedelta

from pledge.core.clock import frozen
from pledge.notices import service as notices
from pledge.runtime import Runtime
from tests.lawfulness.test_upcoming_notice import START, page, publish


def test_a_new_privacy_notice_dated_later_is_announced_while_an_older_one_is_in_force(
    runtime: Runtime, tenant: str
) -> None:
    with frozen(START), runtime.tenant_context(tenant) as ctx:
        notices.create_notice(
            ctx, slug="privacy-2024", kind="privacy_notice", title="Privacy (2024)"
        )
        notices.publish_version(ctx, "privacy-2024", text="Our notice of 2024.")
    effective = START + timedelta(days=30)
    publish(runtime, tenant, "Our new notice, from April.", effective_at=effective)

    on_the_day = page(runtime, tenant, effective)
    assert "Our new notice, from April." in on_the_day  # what applies from 1 April
    assert "Our notice of 2024." not in on_the_day

    before = page(runtime, tenant, START + timedelta(days=1))
    assert "Our notice of 2024." in before  # in force until then
    # Announced, with its text, before it replaces the notice in force.
    assert "01 April 2026" in before and "Our new notice, from April." in before
