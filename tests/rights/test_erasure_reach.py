"""What an erasure reaches among a person's rights requests — the letters and files stored
before a request was matched to the person (an uploaded proof, the acknowledgement, the
verification letter) and their copies in the mail outbox — and what the 24-month purge
deletes, the outbox copies included. On both databases."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from pledge import worker
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake
from pledge.core.clock import frozen
from pledge.mail import reading as mail_reading
from pledge.mail.models import OutboxMessage
from pledge.presets import clik
from pledge.rights import fulfilment, letters, routing, verification, workflow
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.models import RightsRequest
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import erasure
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.conftest import make_tenant
from tests.rights.test_pages import (
    EMAIL,
    PDF,
    STRANGER,
    Visitor,
    link_in,
    reference_in,
    staff_client,
    verification_mail,
)

PHONE = {"phone": "+447700900123"}
KEPT = "tax law requires us to keep billing records for 7 years"
ERASED = "We erased your personal data"


@pytest.fixture
def person(runtime: Runtime, tenant: str) -> str:
    """A customer on file (name, phone) with an invoice the tenant keeps on erasure."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        ctx.tenant.retention_classes = {
            "billing": {"description": "Billing records, 7 years", "exempt_on_erasure": KEPT}
        }
        intake.collect(
            ctx,
            "purchase",
            [
                FieldInput("email", EMAIL),
                FieldInput("first_name", "Paula", "user.name.first"),
                FieldInput("phone", "+447700900123"),
                FieldInput("invoice_ref", "INV-77", "user.financial", "direct", "billing"),
            ],
        )
    return tenant


def readable_letters(runtime: Runtime, tenant: str, address: str) -> list[str]:
    """The texts in the mail outbox (as staff open them) to `address`, oldest first."""
    with runtime.tenant_context(tenant) as ctx:
        views = [
            mail_reading.read_message(ctx, m.id) for m in mail_reading.list_messages(ctx, limit=500)
        ]
    return [v.letter.text for v in reversed(views) if v.letter and v.letter.to == address]


def ask_with_proof(runtime: Runtime) -> str:
    """A rectification sent from the privacy center with a photo of an ID; its reference."""
    r = Visitor(runtime).ask(
        "rectification",
        files={"proof": ("id.pdf", PDF, "application/pdf")},
        field=["first_name", ""],
        value=["Paulette", ""],
    )
    assert r.status_code == 200, r.text
    return reference_in(r.text)


def ask_and_verify(runtime: Runtime, tenant: str, rtype: str) -> uuid.UUID:
    """A request received (acknowledged, verification sent), verified with the code mailed
    and a data point on file."""
    with runtime.tenant_context(tenant) as ctx:
        request_id = workflow.receive(
            ctx, RequestInput(rtype, Requester(EMAIL, "Paula"), "EU")
        ).request.id
    code, _link = verification_mail(runtime, tenant, EMAIL)
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        assert verification.confirm(ctx, request, code=code, data_points=PHONE).verified
    return request_id


def files_of(client: TestClient, runtime: Runtime, tenant: str, request_id: uuid.UUID) -> list[int]:
    """The console's answers for each of the request's letters and files (200: it opens)."""
    with runtime.tenant_context(tenant) as ctx:
        items = letters.list_artifacts(ctx, rights.get_request(ctx, request_id))
    return [client.get(f"/requests/{request_id}/artifacts/{a.id}").status_code for a in items]


def test_an_erasure_leaves_no_proof_or_letter_of_the_person_readable(
    runtime: Runtime, person: str
) -> None:
    reference = ask_with_proof(runtime)
    with runtime.tenant_context(person) as ctx:
        rect_id = rights.get_by_reference(ctx, reference).id
    code, _link = verification_mail(runtime, person, EMAIL)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, rect_id)
        assert verification.confirm(ctx, request, code=code, data_points=PHONE).verified
        fulfilment.fulfil(ctx, request, StaffInput(approve=True))
    client, _ = staff_client(runtime, person)
    # Staff open the proof and the letters: acknowledgement, verification, completion.
    assert files_of(client, runtime, person, rect_id) == [200, 200, 200, 200]

    erasure_id = ask_and_verify(runtime, person, "erasure")
    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, erasure_id))
        assert result.state == "completed" and result.outcome.startswith(ERASED)

    # Neither the ID nor any letter of the rectification opens any more: they are erased.
    assert files_of(client, runtime, person, rect_id) == [404, 404, 404, 404]
    # The erasure's own earlier letters neither; its answer does, for the requester.
    assert files_of(client, runtime, person, erasure_id) == [404, 404, 200]
    # The mail outbox: of the six letters sent to the person, only the erasure's answer.
    [answer] = readable_letters(runtime, person, EMAIL)
    assert ERASED in answer and KEPT in answer
    # The requester's status page shows that answer, and the acknowledgement as erased.
    page = Visitor(runtime).get(link_in(answer, "Your request and our letters about it:"))
    assert page.status_code == 200 and ERASED in page.text
    assert page.text.count("This letter was erased with your data.") == 1
    # The records stay: the requests, what happened to them, when.
    with runtime.tenant_context(person) as ctx:
        rectification = rights.get_request(ctx, rect_id)
        assert rectification.state == "completed"
        assert [e.kind for e in rights.timeline(ctx, rectification)][-1] == "completed"


def test_requests_never_verified_from_the_address_are_reached_a_strangers_are_not(
    runtime: Runtime, person: str
) -> None:
    reference = ask_with_proof(runtime)  # never verified: not matched to anyone
    with runtime.tenant_context(person) as ctx:
        # Withdrawing consent needs no verification: matched by the address, after its
        # acknowledgement was written.
        withdrawal = workflow.receive(
            ctx, RequestInput("withdraw_consent", Requester(EMAIL, "Paula"), "EU")
        ).request
        assert withdrawal.subject_id is not None
        workflow.receive(ctx, RequestInput("access", Requester(STRANGER, "Sam"), "EU"))
        subject_id = withdrawal.subject_id
    assert len(readable_letters(runtime, person, EMAIL)) == 3
    strangers = readable_letters(runtime, person, STRANGER)
    assert len(strangers) == 2

    with runtime.tenant_context(person) as ctx:  # staff erase the person (console, API, CLI)
        erasure.erase_subject(ctx, subject_id)
        entries = audit.list_entries(ctx, subject_id=subject_id, limit=1000)

    assert readable_letters(runtime, person, EMAIL) == []
    # The audit trail counts what the erasure reached there: the unverified request's ID,
    # acknowledgement and verification letter, and 2 mails, deleted; the withdrawal's
    # acknowledgement (and its mail), sealed under the person's key that was destroyed.
    reached = [e for e in entries if e.event == AuditEvent.RIGHTS_PURGED.value]
    assert [e.details for e in reached] == [
        {
            "by": "erasure",
            "requests": 2,
            "files_deleted": 3,
            "mails_deleted": 2,
            "files_sealed_for_erasure": 1,
            "mails_sealed_for_erasure": 1,
        }
    ]
    assert entries.index(reached[0]) < [e.event for e in entries].index("subject.erased")
    assert readable_letters(runtime, person, STRANGER) == strangers
    with runtime.tenant_context(person) as ctx:
        unverified = rights.get_by_reference(ctx, reference)
        assert unverified.state == "awaiting_verification"  # the record of the request stays
        assert letters.list_artifacts(ctx, unverified) == []  # its ID and letters do not
        matched = rights.get_request(ctx, withdrawal.id)
        assert [
            letters.open_artifact(ctx, matched, a) for a in letters.list_artifacts(ctx, matched)
        ] == [None]


def test_finishing_a_partial_erasure_keeps_the_erasure_answer_readable(
    runtime: Runtime, person: str
) -> None:
    erasure_id = ask_and_verify(runtime, person, "erasure")
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, erasure_id)
        assert fulfilment.fulfil(ctx, request).kept == [f"billing: {KEPT}"]
        subject_id = request.subject_id
        assert subject_id is not None
    # Seven years on, the invoices go too (a retention sweep, or staff).
    with runtime.tenant_context(person) as ctx:
        assert erasure.erase_subject(ctx, subject_id, erase_exempt=True).status == "erased"
    [answer] = readable_letters(runtime, person, EMAIL)
    assert ERASED in answer
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, erasure_id)
        texts = [t for _item, t in letters.letters_for_requester(ctx, request)]
        assert texts[0] is None and texts[-1] == answer


def test_the_purge_takes_the_letters_out_of_the_outbox_and_keeps_the_audit_entries(
    runtime: Runtime, person: str
) -> None:
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with frozen(t0), runtime.tenant_context(person) as ctx:
        gone = workflow.receive(
            ctx, RequestInput("access", Requester(STRANGER, "Sam Stranger"), "EU")
        ).request.id
        # Answered at once through the batch path (one letter, the completion).
        opted = workflow.receive(
            ctx, RequestInput("opt_out_sale", Requester(STRANGER, "Sam Stranger"), "US-CA")
        ).request.id
    with frozen(t0 + timedelta(days=40)), runtime.tenant_context(person) as ctx:
        assert workflow.close_unverified(ctx) == 1
    # The person's own request, matched and answered: its letters are under their key.
    with frozen(t0 + timedelta(days=41)):
        own = ask_and_verify(runtime, person, "access")
        with runtime.tenant_context(person) as ctx:
            fulfilment.fulfil(ctx, rights.get_request(ctx, own))
    with frozen(t0 + timedelta(days=700)), runtime.tenant_context(person) as ctx:
        later = workflow.receive(
            ctx, RequestInput("access", Requester("later@example.org", "Lee"), "EU")
        ).request.id
    assert len(readable_letters(runtime, person, STRANGER)) == 4
    assert len(readable_letters(runtime, person, EMAIL)) == 3
    with runtime.tenant_context(person) as ctx:
        sent = {m.id for m in mail_reading.list_messages(ctx, limit=500)}

    with frozen(t0 + timedelta(days=41 + 731)), runtime.tenant_context(person) as ctx:
        assert workflow.purge_expired(ctx) == 3
    with frozen(t0 + timedelta(days=41 + 732)), runtime.tenant_context(person) as ctx:
        assert ctx.session.get(RightsRequest, (ctx.tenant_id, gone)) is None
        assert ctx.session.get(RightsRequest, (ctx.tenant_id, opted)) is None
        assert ctx.session.get(RightsRequest, (ctx.tenant_id, own)) is None
        assert rights.get_request(ctx, later).state == "awaiting_verification"
        left = {m.id for m in mail_reading.list_messages(ctx, limit=500)}
        queued = {
            uuid.UUID(e.details["message_id"])
            for e in audit.list_entries(ctx, limit=1000)
            if e.event == AuditEvent.MAIL_QUEUED.value
        }
        purged = [
            e
            for e in audit.list_entries(ctx, limit=1000)
            if e.event == AuditEvent.RIGHTS_PURGED.value
        ]
    assert readable_letters(runtime, person, STRANGER) == []
    assert readable_letters(runtime, person, EMAIL) == []
    assert len(readable_letters(runtime, person, "later@example.org")) == 2
    assert len(sent - left) == 7 and sent - left <= queued  # the audit still names them
    assert purged and re.fullmatch(r"[0-9a-f-]{36}", purged[0].details["request_ids"][0])


def test_the_erasure_answer_and_its_audit_entry_count_the_letters_erased_with_the_person(
    runtime: Runtime, person: str
) -> None:
    ask_with_proof(runtime)  # never verified: its ID and two letters are the person's
    erasure_id = ask_and_verify(runtime, person, "erasure")
    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, erasure_id))
        entries = audit.list_entries(ctx, limit=1000)
    line = "This includes 3 letters and files kept with your requests"
    assert line in result.outcome
    [answer] = readable_letters(runtime, person, EMAIL)
    assert line in answer and KEPT in answer
    fulfilled = [e for e in entries if e.event == AuditEvent.RIGHTS_FULFILLED.value]
    assert fulfilled[-1].details["request_letters_erased"] == 3
    [reached] = [e for e in entries if e.event == AuditEvent.RIGHTS_PURGED.value]
    assert reached.details["files_deleted"] == 3 and reached.details["mails_deleted"] == 2
    # Nothing of the person's requests reached: nothing said, nothing counted.
    with runtime.tenant_context(person) as ctx:
        other = intake.collect(ctx, "purchase", [FieldInput("email", "other@example.org")])
        assert erasure.erase_subject(ctx, other.subject_id).status == "erased"
        after = audit.list_entries(ctx, limit=1000)
    assert [e.event for e in after].count(AuditEvent.RIGHTS_PURGED.value) == 1


def test_letters_linked_to_no_request_leave_the_outbox_after_the_records_period(
    runtime: Runtime,
) -> None:
    """The routing letter (in the operator's outbox: no request of its own there) and the
    letters queued before migration 0008 linked outbox rows to requests are reached by
    neither the purge of a request nor an erasure: the worker takes them out of the outbox
    24 months after they were written."""
    make_tenant(runtime, "operator")
    make_tenant(runtime, "client-one")
    with runtime.tenant_context("client-one") as ctx:
        subjects.create_subject(ctx, [FieldInput("email", EMAIL)])
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with frozen(t0):
        routing.route(
            runtime, RequestInput("access", Requester(EMAIL, "Wanda"), "EU"), send_via="operator"
        )
        with runtime.tenant_context("operator") as ctx:
            old = workflow.receive(ctx, RequestInput("access", Requester(STRANGER, "Sam"), "EU"))
            # As written before migration 0008: its letters in the outbox name no request.
            ctx.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.request_id == old.request.id)
                .values(request_id=None)
            )
    with frozen(t0 + timedelta(days=700)):
        routing.route(
            runtime, RequestInput("access", Requester(EMAIL, "Wanda"), "EU"), send_via="operator"
        )
    assert len(readable_letters(runtime, "operator", EMAIL)) == 2
    assert len(readable_letters(runtime, "operator", STRANGER)) == 2

    with frozen(t0 + timedelta(days=729)):
        worker.run_once(runtime)
    assert len(readable_letters(runtime, "operator", EMAIL)) == 2
    with frozen(t0 + timedelta(days=731)):
        report = worker.run_once(runtime)
    assert report.errors == []
    # The routing letter written 700 days in stays its 24 months. Of the old request's
    # letters, only the one linked to it (its closing, by the first run) stays, with it.
    [left] = readable_letters(runtime, "operator", EMAIL)
    assert "Client-One" in left
    [closing] = readable_letters(runtime, "operator", STRANGER)
    assert "closed" in closing
    with runtime.tenant_context("operator") as ctx:
        entries = audit.list_entries(ctx, limit=1000)
    [purged] = [e for e in entries if e.event == AuditEvent.RIGHTS_PURGED.value]
    assert purged.details == {"requests": 0, "request_ids": [], "unlinked_letters": 3}


def test_a_second_erasure_request_leaves_the_first_answer_readable(
    runtime: Runtime, person: str
) -> None:
    """Two erasure requests verified before either is answered: the second finds the person
    partly erased (the invoices kept) and must not take the first one's answer away."""
    first = ask_and_verify(runtime, person, "erasure")
    second = ask_and_verify(runtime, person, "erasure")
    with runtime.tenant_context(person) as ctx:
        assert fulfilment.fulfil(ctx, rights.get_request(ctx, first)).kept
    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, second))
        assert result.state == "completed" and "This includes" not in result.outcome
    answers = readable_letters(runtime, person, EMAIL)
    assert len(answers) == 2 and all(ERASED in a for a in answers)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, first)
        assert [t for _item, t in letters.letters_for_requester(ctx, request)][-1] == answers[0]
