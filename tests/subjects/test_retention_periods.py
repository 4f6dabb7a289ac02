"""Retention periods that end (decision 0014): what an erasure keeps under a legal duty is
erased when the class's period is over, its key shredded (seed 001 §12: billing, 7 years);
interactions are deleted a period after they occurred by the tenant's rule (seed 004: call
recordings, 12 months). Both by the worker, batched, idempotent, audited; the erasure letter
and the access answer say the periods. On both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake, privacy_state
from pledge.core.clock import frozen
from pledge.core.errors import InvalidInput
from pledge.crypto.keystore import KeyShredded
from pledge.presets import clik
from pledge.rights import bundle
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading, retention
from pledge.subjects import service as subjects
from pledge.subjects.models import SubjectStatus
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from pledge.worker import run_once
from tests.cli.test_cli import run
from tests.conftest import Backend, backup_data_store, make_tenant
from tests.rights.test_exempt_classes import _customer, _erasure
from tests.rights.test_requests import letter_text

TAX = "Tax law: billing information kept 7 years"
START = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)
SEVEN_YEARS_ON = datetime(2027, 1, 6, 9, 0, tzinfo=UTC)
CALL_CATEGORY = "user.content.private"


def _onecrm(runtime: Runtime, **classes: str) -> None:
    """1CRM: billing exempt from erasure under tax law, kept 7 years (seed 001 §12)."""
    make_tenant(
        runtime,
        "onecrm",
        jurisdictions=["EU"],
        retention_classes={"billing": "Billing information", **classes},
        exempt_on_erasure={"billing": TAX}
        | {c: "Contract law: kept while a claim may come" for c in classes},
    )
    with runtime.tenant_context("onecrm") as ctx:
        tenants.set_retention_class(ctx, "billing", keep_for="7 years")


def _closed_account(runtime: Runtime, email: str = "user@example.com") -> uuid.UUID:
    """A customer whose account is closed and erased at START: the billing record stays."""
    with frozen(START), runtime.tenant_context("onecrm") as ctx:
        sid = subjects.create_subject(
            ctx,
            [
                FieldInput("email", email),
                FieldInput("card_ref", "VISA-4242", "user.financial", "direct", "billing"),
            ],
        )
        kept = erasure.erase_subject(ctx, sid)
        assert kept.kept_classes == ["billing"]
    return sid


def _status(runtime: Runtime, slug: str, sid: uuid.UUID) -> str:
    with runtime.tenant_context(slug) as ctx:
        return subjects.get_subject_row(ctx, sid).status


def test_billing_kept_seven_years_is_gone_after_seven_years(runtime: Runtime) -> None:
    """Seed 001 §12: "billing information is retained for a period of 7 years"."""
    _onecrm(runtime)
    sid = _closed_account(runtime)
    with frozen(START + timedelta(days=7 * 366 + 1)):
        report = run_once(runtime)
    assert report.retention_erased == 1
    assert "kept data erased at the end of its period 1" in report.summary()
    assert _status(runtime, "onecrm", sid) == SubjectStatus.ERASED.value
    with runtime.tenant_context("onecrm") as ctx:
        erased = [
            e.details
            for e in audit.list_entries(ctx, subject_id=sid, limit=100)
            if e.event == AuditEvent.SUBJECT_ERASED.value
        ]
    assert erased[-1] is not None
    assert erased[-1]["reason"] == "retention period over"
    assert erased[-1]["shredded_classes"] == ["billing"]


def test_nothing_is_erased_a_day_before_the_period_ends_and_a_second_run_does_nothing(
    runtime: Runtime,
) -> None:
    _onecrm(runtime)
    sid = _closed_account(runtime)
    with frozen(SEVEN_YEARS_ON - timedelta(days=1)):
        assert run_once(runtime).retention_erased == 0
    assert _status(runtime, "onecrm", sid) == SubjectStatus.PARTIALLY_ERASED.value
    with runtime.tenant_context("onecrm") as ctx:
        view = reading.read_subject(ctx, sid, audited=False)
        assert view.value("card_ref") == "VISA-4242"
    with frozen(SEVEN_YEARS_ON):
        assert run_once(runtime).retention_erased == 1
    with frozen(SEVEN_YEARS_ON + timedelta(days=1)):
        assert run_once(runtime).retention_erased == 0
    with runtime.tenant_context("onecrm") as ctx:
        events = [e.event for e in audit.list_entries(ctx, subject_id=sid, limit=100)]
    assert events.count(AuditEvent.SUBJECT_ERASED.value) == 2  # the closing, the period's end


def test_a_second_erasure_does_not_lengthen_the_period(runtime: Runtime) -> None:
    _onecrm(runtime)
    sid = _closed_account(runtime)
    with frozen(START + timedelta(days=400)), runtime.tenant_context("onecrm") as ctx:
        erasure.erase_subject(ctx, sid)  # staff erase again: the billing record is still kept
    with frozen(SEVEN_YEARS_ON):
        run_once(runtime)
    assert _status(runtime, "onecrm", sid) == SubjectStatus.ERASED.value


def test_the_kept_key_is_shredded_so_a_backup_cannot_be_read_for_it(
    runtime: Runtime, backend: Backend
) -> None:
    """A backup taken while the billing record was lawfully kept: once the period is over,
    the copy in the backup is unreadable too (its class key is gone)."""
    _onecrm(runtime)
    sid = _closed_account(runtime)
    backup_url = backup_data_store(backend, "backup_retention")
    with frozen(SEVEN_YEARS_ON):
        run_once(runtime)
    copy = Runtime.open(runtime.settings.model_copy(update={"database_url": backup_url}))
    try:
        with copy.tenant_context("onecrm") as ctx:
            stale = reading.read_subject(ctx, sid, audited=False)
            assert stale.fields == []
            assert stale.unreadable_classes == ["billing"]
            with pytest.raises(KeyShredded):
                copy.keystore.subject_key(ctx.tenant_id, sid, "billing")
    finally:
        copy.close()


def test_a_class_whose_period_runs_on_stays_when_another_ends(runtime: Runtime) -> None:
    """Contracts kept with no period, billing for 7 years: after 7 years the billing record
    goes and the contract stays."""
    _onecrm(runtime, contracts="Signed contracts")
    with frozen(START), runtime.tenant_context("onecrm") as ctx:
        sid = subjects.create_subject(
            ctx,
            [
                FieldInput("email", "user@example.com"),
                FieldInput("card_ref", "VISA-4242", "user.financial", "direct", "billing"),
                FieldInput("contract", "C-17", "user.financial", "direct", "contracts"),
            ],
        )
        assert erasure.erase_subject(ctx, sid).kept_classes == ["billing", "contracts"]
    with frozen(SEVEN_YEARS_ON):
        run_once(runtime)
    with runtime.tenant_context("onecrm") as ctx:
        view = reading.read_subject(ctx, sid, audited=False)
        assert [f.name for f in view.fields] == ["contract"]
        assert view.status == SubjectStatus.PARTIALLY_ERASED.value


def test_the_batch_limit_leaves_the_rest_for_the_next_cycle(runtime: Runtime) -> None:
    _onecrm(runtime)
    people = [_closed_account(runtime, f"user{n}@example.com") for n in range(3)]
    with frozen(SEVEN_YEARS_ON), runtime.tenant_context("onecrm") as ctx:
        assert retention.end_kept_periods(ctx, limit=2) == 2
    assert sorted(_status(runtime, "onecrm", s) for s in people) == [
        "erased",
        "erased",
        "partially_erased",
    ]
    with frozen(SEVEN_YEARS_ON), runtime.tenant_context("onecrm") as ctx:
        assert retention.end_kept_periods(ctx, limit=2) == 1
        assert retention.end_kept_periods(ctx, limit=2) == 0
    assert {_status(runtime, "onecrm", s) for s in people} == {"erased"}


def test_the_erasure_letter_and_the_access_answer_say_the_periods(runtime: Runtime) -> None:
    make_tenant(
        runtime,
        "shop",
        jurisdictions=["EU"],
        retention_classes={"billing": "Billing records"},
        exempt_on_erasure={"billing": TAX},
        keep_for={"billing": "7 years"},
    )
    with runtime.tenant_context("shop") as ctx:
        tenants.set_interaction_retention(ctx, CALL_CATEGORY, "call", "12 months")
        sid = subjects.create_subject(ctx, [FieldInput("email", "ann@example.com")])
        info = bundle.art15_information(ctx, sid, {"fields": [], "interactions": []}, "EU")
    assert info["retention"]["billing"] == (
        f"Billing records; kept after an erasure: {TAX}; erased 7 years after an erasure "
        "that keeps it"
    )
    assert (
        info["retention"][f"interactions of category {CALL_CATEGORY} (call)"]
        == "deleted 12 months after they occurred"
    )
    _customer(runtime, "shop", "rita@example.com")
    with frozen(START):
        request_id, kept, _left = _erasure(runtime, "shop", "rita@example.com")
    line = f"billing: {TAX} (kept for 7 years, then erased on 06 January 2027)"
    assert kept == [line]
    assert f"  - {line}" in letter_text(runtime, "shop", request_id, "completed")


def test_periods_are_validated(runtime: Runtime) -> None:
    make_tenant(runtime, "onecrm")
    with runtime.tenant_context("onecrm") as ctx:
        for bad in ("7 weeks", "0 days", "101 years", "seven years", ""):
            with pytest.raises(InvalidInput):
                tenants.set_retention_class(ctx, "billing", keep_for=bad)
        with pytest.raises(InvalidInput, match="standard class"):
            tenants.set_retention_class(ctx, "standard", keep_for="1 year")
        assert tenants.set_retention_class(ctx, "billing", keep_for=" 1 Year ") == "changed"
        assert ctx.tenant.retention_classes["billing"]["keep_for"] == "1 year"
        tenants.set_retention_class(ctx, "billing", keep_for=None)
        assert "keep_for" not in ctx.tenant.retention_classes["billing"]
        with pytest.raises(InvalidInput, match="category"):
            tenants.set_interaction_retention(ctx, "content", None, "12 months")
        with pytest.raises(InvalidInput, match="kind"):
            tenants.set_interaction_retention(ctx, CALL_CATEGORY, "recording", "12 months")
        with pytest.raises(InvalidInput, match="no interaction rule"):
            tenants.set_interaction_retention(ctx, CALL_CATEGORY, None, None)


def test_the_end_of_a_period_does_not_shred_data_the_person_had_restricted(
    runtime: Runtime,
) -> None:
    """GDPR Art. 18(1)(c): the person may have the controller keep data it no longer needs,
    for their legal claims; restricted data is only stored (Art. 18(2)). The worker leaves
    the kept record while the restriction holds, and ends it the cycle after it is lifted."""
    _onecrm(runtime)
    sid = _closed_account(runtime)
    with frozen(START), runtime.tenant_context("onecrm") as ctx:
        privacy_state.add_restriction_ground(ctx, sid, privacy_state.API_GROUND, "legal claims")
    with frozen(SEVEN_YEARS_ON + timedelta(days=1)):
        assert run_once(runtime).retention_erased == 0
    assert _status(runtime, "onecrm", sid) == SubjectStatus.PARTIALLY_ERASED.value
    with runtime.tenant_context("onecrm") as ctx:
        kept = reading.read_subject(ctx, sid, audited=False).fields
        assert [(f.name, f.value) for f in kept] == [("card_ref", "VISA-4242")]
    with frozen(SEVEN_YEARS_ON + timedelta(days=2)), runtime.tenant_context("onecrm") as ctx:
        privacy_state.remove_restriction_ground(ctx, sid, privacy_state.API_GROUND, "api")
    with frozen(SEVEN_YEARS_ON + timedelta(days=2)):
        assert run_once(runtime).retention_erased == 1
    assert _status(runtime, "onecrm", sid) == SubjectStatus.ERASED.value


# ---------------------------------------------------------------------------------------------
# Interactions by age


def _clik_caller(runtime: Runtime, start: datetime) -> uuid.UUID:
    """Clik's caller, with a call recorded at `start` and a chat of the same category."""
    make_tenant(runtime, "clik")
    with frozen(start), runtime.tenant_context("clik") as ctx:
        clik(ctx)  # its rule: call recordings deleted 12 months after the call
        caller = intake.collect(
            ctx,
            "contact-phone",
            [FieldInput("email", "caller@example.com"), FieldInput("phone", "+441179022012")],
        ).subject_id
        for kind in ("call", "chat"):
            subjects.add_interaction(
                ctx,
                caller,
                kind=kind,
                occurred_at=start,
                category=CALL_CATEGORY,
                payload={"recording": "call-0001.wav", "note": "asked about Clik Jobs"},
            )
    return caller


def _kinds(runtime: Runtime, sid: uuid.UUID) -> list[str]:
    with runtime.tenant_context("clik") as ctx:
        return sorted(i.kind for i in reading.list_interactions(ctx, sid))


def test_clik_call_recordings_are_deleted_after_twelve_months(runtime: Runtime) -> None:
    """Seed 004: "All call recordings are … deleted after 12 months." The person stays, and
    so does the chat (the rule is for calls)."""
    start = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
    caller = _clik_caller(runtime, start)
    with frozen(datetime(2026, 1, 5, 10, 0, tzinfo=UTC)):  # a day before the 12 months end
        assert run_once(runtime).interactions_expired == 0
    assert _kinds(runtime, caller) == ["call", "chat"]
    with frozen(datetime(2026, 1, 6, 10, 0, tzinfo=UTC)):
        report = run_once(runtime)
    assert report.interactions_expired == 1
    assert "interactions deleted by age 1" in report.summary()
    assert _kinds(runtime, caller) == ["chat"]
    assert _status(runtime, "clik", caller) == SubjectStatus.ACTIVE.value
    with frozen(start + timedelta(days=396)):
        assert run_once(runtime).interactions_expired == 0
    with runtime.tenant_context("clik") as ctx:
        told = [
            e.details
            for e in audit.list_entries(ctx, subject_id=caller, limit=100)
            if e.event == AuditEvent.INTERACTIONS_EXPIRED.value
        ]
    assert told == [
        {
            "deleted": 1,
            "category": CALL_CATEGORY,
            "kind": "call",
            "keep": "12 months",
            "reason": "retention period over",
        }
    ]


def test_a_category_rule_takes_every_kind_without_its_own_and_the_limit_holds(
    runtime: Runtime,
) -> None:
    start = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
    caller = _clik_caller(runtime, start)
    with frozen(start), runtime.tenant_context("clik") as ctx:
        # Calls 24 months, everything else of the category 6 months.
        tenants.set_interaction_retention(ctx, CALL_CATEGORY, "call", "24 months")
        tenants.set_interaction_retention(ctx, CALL_CATEGORY, None, "6 months")
        for n in range(2):
            subjects.add_interaction(
                ctx,
                caller,
                kind="note",
                occurred_at=start + timedelta(minutes=n),
                category=CALL_CATEGORY,
                payload={"n": n},
            )
    with frozen(datetime(2025, 7, 6, 11, 0, tzinfo=UTC)), runtime.tenant_context("clik") as ctx:
        assert retention.delete_expired_interactions(ctx, limit=2) == 2
    assert _kinds(runtime, caller) == ["call", "note"]  # the chat and the first note went
    with frozen(datetime(2025, 7, 6, 11, 0, tzinfo=UTC)), runtime.tenant_context("clik") as ctx:
        assert retention.delete_expired_interactions(ctx, limit=2) == 1
        assert retention.delete_expired_interactions(ctx, limit=2) == 0
    assert _kinds(runtime, caller) == ["call"]
    with frozen(datetime(2027, 1, 6, 10, 0, tzinfo=UTC)):
        run_once(runtime)
    assert _kinds(runtime, caller) == []


def test_a_restricted_person_s_interactions_are_not_deleted_by_age(runtime: Runtime) -> None:
    """Art. 18(2): restricted data is only stored — deleting a call recording the person
    restricted for their claim would destroy it. Another caller's expired call goes; the
    restricted one's goes the cycle after the restriction is lifted."""
    start = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
    caller = _clik_caller(runtime, start)
    with frozen(start), runtime.tenant_context("clik") as ctx:
        other = intake.collect(
            ctx, "contact-phone", [FieldInput("email", "other@example.com")]
        ).subject_id
        subjects.add_interaction(
            ctx, other, kind="call", occurred_at=start, category=CALL_CATEGORY, payload={}
        )
        privacy_state.add_restriction_ground(ctx, caller, privacy_state.API_GROUND, "a claim")
    year_on = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    with frozen(year_on):
        assert run_once(runtime).interactions_expired == 1
    assert _kinds(runtime, caller) == ["call", "chat"]
    with runtime.tenant_context("clik") as ctx:
        assert reading.list_interactions(ctx, other) == []
    with frozen(year_on), runtime.tenant_context("clik") as ctx:
        privacy_state.remove_restriction_ground(ctx, caller, privacy_state.API_GROUND, "api")
    with frozen(year_on):
        assert run_once(runtime).interactions_expired == 1
    assert _kinds(runtime, caller) == ["chat"]


def test_what_happens_between_the_search_and_the_deletion_is_respected(
    runtime: Runtime,
) -> None:
    """The worker searches in a read snapshot and deletes in a transaction of its own: a
    restriction, or an erasure, that lands in between is honoured — nothing of the
    restricted person goes, and an interaction already gone is not counted."""
    start = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
    caller = _clik_caller(runtime, start)
    year_on = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    with frozen(year_on), runtime.tenant_context("clik", read_only=True) as ctx:
        found = retention.find_expired_interactions(ctx, limit=10)
    assert [(e.subject_id, e.kind) for e in found] == [(caller, "call")]
    with frozen(year_on), runtime.tenant_context("clik") as ctx:
        privacy_state.add_restriction_ground(ctx, caller, privacy_state.API_GROUND, "a claim")
    with frozen(year_on), runtime.tenant_context("clik") as ctx:
        assert retention.delete_interactions(ctx, found) == 0
    assert _kinds(runtime, caller) == ["call", "chat"]
    with frozen(year_on), runtime.tenant_context("clik") as ctx:
        privacy_state.remove_restriction_ground(ctx, caller, privacy_state.API_GROUND, "api")
        erasure.erase_subject(ctx, caller)
    with frozen(year_on), runtime.tenant_context("clik") as ctx:
        assert retention.delete_interactions(ctx, found) == 0
        told = [
            e
            for e in audit.list_entries(ctx, subject_id=caller, limit=100)
            if e.event == AuditEvent.INTERACTIONS_EXPIRED.value
        ]
    assert told == []


# ---------------------------------------------------------------------------------------------
# The commands


def test_the_periods_through_the_cli(runtime: Runtime, cli_env: dict[str, str]) -> None:
    code, out = run(
        "tenant",
        "create",
        "onecrm",
        "--name",
        "1CRM",
        "--retention-class",
        "billing=Billing information",
        "--exempt",
        f"billing={TAX}",
        "--keep-for",
        "billing=7 years",
    )
    assert code == 0, out
    code, out = run("tenant", "list")
    assert "onecrm: billing erased 7 years after an erasure" in out, out
    # Bad input is refused with a message, and nothing changes.
    for args, said in (
        (("--keep-for", "7 weeks"), "not a period"),
        (("--keep-for", "7 years", "--no-period"), "either --keep-for or --no-period"),
    ):
        code, out = run("tenant", "retention-class", "-t", "onecrm", "billing", *args)
        assert code != 0 and said in out, out
    code, out = run(
        "tenant", "retention-class", "-t", "onecrm", "billing", "--keep-for", "10 years"
    )
    assert code == 0 and "erased 10 years after an erasure that keeps it" in out, out
    code, out = run("tenant", "retention-class", "-t", "onecrm", "billing", "--no-period")
    assert code == 0 and "no period" in out, out
    with runtime.tenant_context("onecrm") as ctx:
        assert ctx.tenant.retention_classes["billing"] == {
            "description": "Billing information",
            "exempt_on_erasure": TAX,
        }

    for rule_args, said in (
        (("--category", CALL_CATEGORY), "either --keep PERIOD or --remove"),
        (("--category", CALL_CATEGORY, "--keep", "12 months", "--remove"), "either --keep"),
        (("--category", "recordings", "--keep", "12 months"), "category"),
        (("--category", CALL_CATEGORY, "--kind", "podcast", "--keep", "1 year"), "kind"),
        (("--category", CALL_CATEGORY, "--keep", "a year"), "not a period"),
        (("--category", CALL_CATEGORY, "--remove"), "no interaction rule"),
    ):
        code, out = run("tenant", "interaction-retention", "-t", "onecrm", *rule_args)
        assert code != 0 and said in out, (rule_args, out)
    code, out = run(
        "tenant",
        "interaction-retention",
        "-t",
        "onecrm",
        "--category",
        CALL_CATEGORY,
        "--kind",
        "call",
        "--keep",
        "12 months",
    )
    assert code == 0, out
    assert f"interactions of category {CALL_CATEGORY} (call): deleted 12 months" in out, out
    with runtime.tenant_context("onecrm") as ctx:
        assert ctx.tenant.interaction_retention == [
            {"category": CALL_CATEGORY, "kind": "call", "keep": "12 months"}
        ]
        entries = [
            e.details
            for e in audit.list_entries(ctx, limit=100)
            if e.event == AuditEvent.TENANT_INTERACTION_RETENTION_SET.value
        ]
    assert entries == [
        {"category": CALL_CATEGORY, "kind": "call", "keep": "12 months", "outcome": "added"}
    ]
    code, out = run(
        "tenant", "interaction-retention", "-t", "onecrm", "--category", CALL_CATEGORY,
        "--kind", "call", "--remove",
    )  # fmt: skip
    assert code == 0 and "Interaction rule removed" in out, out
    with runtime.tenant_context("onecrm") as ctx:
        assert ctx.tenant.interaction_retention == []


def test_a_preset_tenant_takes_a_period_for_its_class(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    code, out = run(
        "tenant", "create", "onecrm", "--name", "1CRM", "--preset", "onecrm",
        "--keep-for", "billing=7 years",
    )  # fmt: skip
    assert code == 0, out
    with runtime.tenant_context("onecrm") as ctx:
        assert ctx.tenant.retention_classes["billing"]["keep_for"] == "7 years"
    code, out = run(
        "tenant", "create", "other", "--name", "Other", "--preset", "onecrm",
        "--keep-for", "payroll=7 years",
    )  # fmt: skip
    assert code != 0 and "no retention class 'payroll'" in out, out
    code, out = run("tenant", "list")
    assert "other" not in out, out  # all or nothing
