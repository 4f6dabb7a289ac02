"""A known person signs up again through a public form, their browser sending Global Privacy
Control, while staff correct their name (PostgreSQL: SQLite's writers take turns).

The lock order is the tenant row, then request rows, then the person's row, then the audit
chain's head (decision 0005). A correction writes the person's row, then audits itself. The
form's intake audited the consent given (its record refers to the person: FOR KEY SHARE,
which lets a writer of the row by), then wrote the person's row for the opt-out of sale that
GPC means. Interleaved, each waited for the other and PostgreSQL aborted one (a deadlock): the
person's sign-up or the staff's correction failed. The person is now held before the first
entry: one waits for the other's end, and both are done."""

from __future__ import annotations

from pledge.access.context import TenantContext
from pledge.consent import intake
from pledge.consent.service import Signals
from pledge.presets import clik
from pledge.runtime import Runtime
from pledge.signals.service import GPC_OPTED_OUT
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.lock_order import at_once, chain_holds, postgresql_only
from tests.messaging.conftest import person, subscribe

EMAIL = "ann.intake@example.com"


def test_a_known_person_signs_up_with_gpc_while_staff_correct_their_name(
    runtime: Runtime, tenant: str
) -> None:
    postgresql_only(runtime)
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    ann = subscribe(runtime, tenant, EMAIL, "Ann")

    def signs_up(ctx: TenantContext) -> object:
        return intake.collect(
            ctx,
            "newsletter",
            person(EMAIL, "Ann"),
            [intake.ConsentChoice("newsletter", True)],
            Signals(gpc=True),
        ).signal_effects

    def corrects(ctx: TenantContext) -> object:
        return subjects.rectify_field(
            ctx, ann, FieldInput("first_name", "Anne", "user.name.first")
        ).value

    effects, corrected = at_once(runtime, tenant, signs_up, corrects)
    # Both done: opted out of sale by the signal, the name corrected.
    assert effects == [GPC_OPTED_OUT]
    assert corrected == "Anne"
    with runtime.tenant_context(tenant) as ctx:
        assert subjects.get_subject_row(ctx, ann).sale_opt_out_at is not None
        fields = {f.name: f.value for f in reading.read_subject(ctx, ann, audited=False).fields}
        assert fields["first_name"] == "Anne"
    assert chain_holds(runtime, tenant)
