"""Choices saved in the preference center while the person's privacy state is changed
through the API (PostgreSQL: SQLite's writers take turns).

The lock order is the tenant row, then request rows, then the person's row, then the audit
chain's head (decision 0005). A change of the privacy state locks the person, then audits
itself. A save audited its first change (a marketing opt-out lifted) and then wrote the
person's row (the opt-out of sale). Interleaved, each waited for the other and PostgreSQL
aborted one (a deadlock): the person's save or the API's call failed. The person is now held
before the first entry: one waits for the other's end, and both are done."""

from __future__ import annotations

from pledge.access.context import TenantContext
from pledge.consent import privacy_state
from pledge.preferences import service as preferences
from pledge.preferences.models import ALL_MARKETING
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from tests.lock_order import at_once, chain_holds, postgresql_only, restricts
from tests.messaging.conftest import subscribe


def test_preferences_saved_while_the_api_restricts_the_person(
    runtime: Runtime, clik_tenant: str
) -> None:
    # Ann had stopped all marketing by e-mail. In the preference center she turns that
    # switch off, keeps the newsletter and ticks "Do not sell or share", as a connected
    # system restricts her.
    postgresql_only(runtime)
    ann = subscribe(runtime, clik_tenant, "ann@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        preferences.opt_out(ctx, ann, "email", ALL_MARKETING, "unsubscribe")
        newsletter = {
            (s.channel, s.topic)
            for s in preferences.preference_view(ctx, ann).topics
            if s.purpose == "newsletter"
        }
    choices = preferences.Choices(frozenset(newsletter), all_marketing_off=False, sale_opt_out=True)

    def saves(ctx: TenantContext) -> object:
        return preferences.apply_choices(ctx, ann, choices, source="preference_center")

    saved, restricting = at_once(runtime, clik_tenant, saves, restricts(ann))
    assert isinstance(saved, list)
    assert saved[0] == "marketing no longer stopped as a whole"
    assert saved[-1] == "opted out of sale and sharing"
    assert restricting == "restricted"
    with runtime.tenant_context(clik_tenant) as ctx:
        view = preferences.preference_view(ctx, ann)
        assert not any(view.marketing_off.values())
        assert view.sale_opt_out and view.sale_opt_out_source == "preference_center"
        grounds = subjects.get_subject_row(ctx, ann).restriction_grounds
        assert grounds == [privacy_state.API_GROUND]
    assert chain_holds(runtime, clik_tenant)
