"""Fulfilment, as a review found it wanting: two staff answering one request at once, the
free request a stranger's unverified one used up, portability refused to a US consumer on
GDPR grounds, a corrected e-mail address the recipients could not match — on both
databases (the race on PostgreSQL only)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.consent import intake
from pledge.core.clock import frozen, utcnow
from pledge.core.errors import Conflict
from pledge.mail import reading as mail_reading
from pledge.mail.models import OutboxMessage
from pledge.presets import clik
from pledge.rights import fulfilment, letters, recipients, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.models import DownloadLink
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import Second
from tests.rights.test_requests import EMAIL, PHONE, _submit, _verify, letter_text, person

__all__ = ["person"]  # the fixture, shared


def _subject_lines(runtime: Runtime, tenant: str, request_id: str) -> list[str]:
    """The subject lines of the letters queued for the request."""
    with runtime.tenant_context(tenant) as ctx:
        rows = ctx.session.scalars(
            select(OutboxMessage).where(OutboxMessage.request_id == uuid.UUID(request_id))
        ).all()
        found = [mail_reading.read_message(ctx, row.id).letter for row in rows]
    return [letter.subject_line for letter in found if letter is not None]


def _links(runtime: Runtime, tenant: str, request_id: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        return len(
            ctx.session.scalars(
                select(DownloadLink).where(DownloadLink.request_id == uuid.UUID(request_id))
            ).all()
        )


# ---------------------------------------------------------------------------------------------
# Two staff fulfil one request at once


def _in_progress_access(runtime: Runtime, tenant: str) -> str:
    handle = _submit(runtime, tenant, "access")
    _verify(runtime, tenant, handle, data_points=PHONE)
    request_id = handle.split("|")[0]
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, request_id))
    return request_id


def _fulfils(request_id: str) -> Callable[[TenantContext], int]:
    """A colleague's fulfilment of the request, as a second worker's step."""

    def step(ctx: TenantContext) -> int:
        fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
        return 1

    return step


def test_a_request_fulfilled_by_two_staff_at_once_is_answered_once(
    runtime: Runtime, person: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    request_id = _in_progress_access(runtime, person)

    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
        assert result.state == "completed"
        # A second member of staff clicks "fulfil" before the first's answer is committed.
        second = Second(runtime, utcnow(), person, _fulfils(request_id))
    with pytest.raises(Conflict, match="completed"):
        second.result()
    assert _links(runtime, person, request_id) == 1
    done = [s for s in _subject_lines(runtime, person, request_id) if s.startswith("Your request")]
    assert len(done) == 1, done


def test_a_request_answered_since_the_page_was_read_is_not_answered_again(
    runtime: Runtime, person: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    request_id = _in_progress_access(runtime, person)

    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)  # in progress, as the page showed it
        # Meanwhile a colleague answers it, committed.
        assert Second(runtime, utcnow(), person, _fulfils(request_id)).result() == 1
        with pytest.raises(Conflict, match="completed"):
            fulfilment.fulfil(ctx, request)
    assert _links(runtime, person, request_id) == 1


# ---------------------------------------------------------------------------------------------
# The free request per 12 months


def test_an_unverified_request_does_not_use_up_the_free_one(runtime: Runtime, person: str) -> None:
    """Colorado: the first request in 12 months is free. One never verified (closed by the
    job, or typed by a stranger with the person's address) was never answered."""
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with frozen(t0), runtime.tenant_context(person) as ctx:
        first = rights.submit(ctx, RequestInput("access", Requester(EMAIL), "US-CO"))
        verification.begin(ctx, first)
    with frozen(t0 + timedelta(days=40)), runtime.tenant_context(person) as ctx:
        assert workflow.close_unverified(ctx) == 1
    with frozen(t0 + timedelta(days=41)), runtime.tenant_context(person) as ctx:
        second = rights.submit(ctx, RequestInput("access", Requester(EMAIL), "US-CO"))
        assert not second.repetitive
        with pytest.raises(Conflict, match="allows no fee"):
            transitions.record_fee(ctx, second, 5000, "second request in twelve months")


def test_a_strangers_pending_request_does_not_use_up_the_free_one(
    runtime: Runtime, person: str
) -> None:
    """A stranger types the person's address (never verified); the person's own request,
    made meanwhile, is free once the person verifies it."""
    with runtime.tenant_context(person) as ctx:
        verification.begin(
            ctx, rights.submit(ctx, RequestInput("access", Requester(EMAIL), "US-CO"))
        )
    handle = _submit(runtime, person, "access", "US-CO")
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, handle.split("|")[0]).repetitive  # not known yet
    _verify(runtime, person, handle, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, handle.split("|")[0])
        assert not request.repetitive
        with pytest.raises(Conflict, match="allows no fee"):
            transitions.record_fee(ctx, request, 5000, "second request in twelve months")


def test_a_verified_request_still_uses_up_the_free_one(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "access", "US-CO")
    _verify(runtime, person, handle, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, handle.split("|")[0]))
    with runtime.tenant_context(person) as ctx:
        second = rights.submit(ctx, RequestInput("access", Requester(EMAIL), "US-CO"))
        assert second.repetitive
        transitions.record_fee(ctx, second, 5000, "second request in twelve months")
        assert second.fee_cents == 5000


# ---------------------------------------------------------------------------------------------
# Portability per jurisdiction


def _contact_only(runtime: Runtime, tenant: str) -> None:
    """Someone who only contacted Clik: held on legitimate interests (record keeping)."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        intake.collect(
            ctx,
            "contact-email",
            [FieldInput("email", EMAIL), FieldInput("first_name", "Rita", "user.name.first")],
        )


def _portability(
    runtime: Runtime, tenant: str, jurisdiction: str
) -> tuple[str, fulfilment.Result, bytes]:
    """A portability request, verified and fulfilled: its id, result and file."""
    handle = _submit(runtime, tenant, "portability", jurisdiction)
    _verify(runtime, tenant, handle, data_points={"first_name": "Rita"})
    request_id = handle.split("|")[0]
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        result = fulfilment.fulfil(ctx, request)
        files = [
            letters.open_artifact(ctx, request, a)
            for a in letters.list_artifacts(ctx, request, kinds=("bundle",))
        ]
    return request_id, result, b"".join(f for f in files if f)


def test_colorado_portability_is_not_refused_on_gdpr_grounds(runtime: Runtime, tenant: str) -> None:
    """Colorado (CPA 6-1-1306(1)(e)): a portable copy of the personal data, whatever the
    lawful basis it is held on; GDPR Art. 20(1)(a) is not the law of a Colorado consumer."""
    _contact_only(runtime, tenant)
    _, result, content = _portability(runtime, tenant, "US-CO")
    assert result.state == "completed" and "GDPR" not in result.outcome
    # The whole of what is held, and said so (not only "what you provided").
    assert "The data we hold about you is in the file" in result.outcome
    portable = json.loads(content)
    assert {f["name"]: f["value"] for f in portable["fields"]} == {
        "email": EMAIL,
        "first_name": "Rita",
    }


def test_swiss_portability_refusal_quotes_the_swiss_law(runtime: Runtime, tenant: str) -> None:
    _contact_only(runtime, tenant)
    request_id, result, _ = _portability(runtime, tenant, "CH")
    assert result.state == "denied"
    assert "nFADP Art. 28" in result.outcome and "GDPR" not in result.outcome
    assert "nFADP Art. 28" in letter_text(runtime, tenant, request_id, "denied")


# ---------------------------------------------------------------------------------------------
# A corrected e-mail address, told to recipients


def test_recipients_of_a_corrected_email_can_find_the_person(
    runtime: Runtime, person: str, private_targets: None
) -> None:
    """GDPR Art. 19: recipients are told of a rectification. A recipient holding the old
    address finds whom it is about, and learns the new one."""
    with runtime.tenant_context(person) as ctx:
        recipients.add_recipient(
            ctx,
            slug="crm",
            name="CRM",
            kind="recipient",
            country="DE",
            webhook_url="http://127.0.0.1:9/hook",
        )
    new = "rita.new@example.com"
    handle = _submit(runtime, person, "rectification", proposed={"email": new})
    _verify(runtime, person, handle, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, handle.split("|")[0]), StaffInput())
    with runtime.tenant_context(person) as ctx:
        rows = ctx.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event == "subject.rectified")
        ).all()
        assert len(rows) == 1
        data = json.loads(webhooks.payload(runtime.keystore, rows[0]))["data"]
    assert data["subject"]["email"] == EMAIL  # as the recipient holds it
    assert data["subject"]["phone"] == PHONE["phone"]
    assert data["corrected_identities"] == {"email": new}
    assert data["fields"] == ["email"]
