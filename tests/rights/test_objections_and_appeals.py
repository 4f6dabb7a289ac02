"""Intake and the state machine, as the review found them: a direct-marketing objection stops
marketing on receipt; an objection to legitimate interests needs the person to confirm by
e-mail; a Colorado appeal can be extended once, with a letter — on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.consent import intake
from pledge.consent import service as consent
from pledge.core.clock import frozen
from pledge.core.errors import Conflict, InvalidInput
from pledge.gate import audience as gate_audience
from pledge.mail import reading as mail_reading
from pledge.mail.models import OutboxMessage
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.rights import fulfilment, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput
from tests.rights.test_pages import staff_client
from tests.rights.test_requests import EMAIL, PHONE, _submit, _verify, letter_text, person

__all__ = ["person"]

SUBSCRIBER = "sam.subscriber@example.com"
MARKETING = "Information on our products and services"  # product-marketing, by its name


def _mail(runtime: Runtime, tenant: str, request_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """(to, subject line, text) of the request's letters in the outbox, oldest first."""
    with runtime.tenant_context(tenant) as ctx:
        rows = ctx.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.request_id == request_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        ).all()
        out = []
        for row in rows:
            letter = mail_reading.read_message(ctx, row.id).letter
            assert letter is not None
            out.append((letter.to, letter.subject_line, letter.text))
        return out


def _object(runtime: Runtime, tenant: str, *slugs: str, email: str = EMAIL) -> uuid.UUID:
    with runtime.tenant_context(tenant) as ctx:
        details = {"purposes": list(slugs)} if slugs else {}
        made = workflow.receive(
            ctx, RequestInput("objection", Requester(email, "Rita"), "EU", details=details)
        ).request
        return made.id


def _in_audience(runtime: Runtime, tenant: str, purpose: str) -> bool:
    with runtime.tenant_context(tenant) as ctx:
        subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        return subject_id in gate_audience.audience(ctx, purpose, "email").allowed


@pytest.fixture
def subscriber(runtime: Runtime, person: str) -> str:
    """The person, also on product marketing and the service status e-mails."""
    with runtime.tenant_context(person) as ctx:
        intake.collect(ctx, "product-interest", [FieldInput("email", EMAIL)])
        intake.collect(ctx, "status-page", [FieldInput("email", EMAIL)])
    assert _in_audience(runtime, person, "product-marketing")
    assert _in_audience(runtime, person, "status-updates")
    return person


# ---------------------------------------------------------------------------------------------
# C1: direct marketing stops on receipt


def test_a_direct_marketing_objection_stops_marketing_at_once(
    runtime: Runtime, subscriber: str
) -> None:
    """Issue 4 §5 / seed 004: direct marketing stops at once, no questions — the next
    audience run leaves the person out, before any staff member acts."""
    request_id = _object(runtime, subscriber, "product-marketing")
    assert not _in_audience(runtime, subscriber, "product-marketing")
    assert _in_audience(runtime, subscriber, "status-updates")  # only what was objected to
    with runtime.tenant_context(subscriber) as ctx:
        request = rights.get_request(ctx, request_id)
        assert (request.state, request.verification_level) == ("completed", "none")
    # One letter, saying it is done: no acknowledgement promising an answer later.
    sent = _mail(runtime, subscriber, request_id)
    assert [(to, subject.split(" (")[0]) for to, subject, _ in sent] == [
        (EMAIL, "Your request is complete")
    ]
    assert f"We stopped: {MARKETING}" in sent[0][2]


def test_an_objection_naming_no_purpose_stops_marketing_and_tells_nothing(
    runtime: Runtime, tenant: str
) -> None:
    """No purpose named: the objection covers every use of the person's data. Their direct
    marketing stops on receipt; the rest waits for the e-mail code — for a known and an
    unknown address alike (the privacy center's answer must not tell them apart)."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        subject_id = intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", SUBSCRIBER)],
            [intake.ConsentChoice("newsletter", True)],
        ).subject_id
        assert subject_id in gate_audience.audience(ctx, "newsletter", "email").allowed
    known = _object(runtime, tenant, email=SUBSCRIBER)
    unknown = _object(runtime, tenant, email="nobody.known@example.com")
    with runtime.tenant_context(tenant) as ctx:
        assert subject_id not in gate_audience.audience(ctx, "newsletter", "email").allowed
        states = {rights.get_request(ctx, r).state for r in (known, unknown)}
    assert states == {"awaiting_verification"}


def test_a_mixed_objection_stops_marketing_now_and_the_rest_after_staff_decide(
    runtime: Runtime, subscriber: str
) -> None:
    """The marketing part takes effect on receipt; the legitimate-interest part waits for
    the person's confirmation and staff (who may record compelling grounds)."""
    request_id = _object(runtime, subscriber, "status-updates", "product-marketing")
    assert not _in_audience(runtime, subscriber, "product-marketing")
    assert _in_audience(runtime, subscriber, "status-updates")
    with runtime.tenant_context(subscriber) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "awaiting_verification"
        kinds = [e.kind for e in rights.timeline(ctx, request)]
        assert "marketing_stopped" in kinds  # the console shows what was done already
    subjects = [s.split(" (")[0] for _, s, _ in _mail(runtime, subscriber, request_id)]
    assert subjects == ["We received your request", "Confirm your request"]
    handle = f"{request_id}|{_code_sent(runtime, subscriber, request_id)}"
    _verify(runtime, subscriber, handle)
    # Grounds staff record for the marketing do not start it again (GDPR Art. 21(3)).
    grounds = StaffInput(compelling_grounds={"product-marketing": "our offers suit this client"})
    with runtime.tenant_context(subscriber) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, request_id), grounds)
    assert result.state == "completed"
    assert not _in_audience(runtime, subscriber, "status-updates")
    assert not _in_audience(runtime, subscriber, "product-marketing")
    assert result.outcome == f"We stopped: Service status e-mails, {MARKETING}"


def _code_sent(runtime: Runtime, tenant: str, request_id: uuid.UUID) -> str:
    text = [t for _, s, t in _mail(runtime, tenant, request_id) if s.startswith("Confirm")][-1]
    return text.split("enter this code: ")[1][:6]


# ---------------------------------------------------------------------------------------------
# C2: objections beyond marketing are confirmed by e-mail


def test_a_stranger_cannot_object_to_someone_elses_legitimate_interest_processing(
    runtime: Runtime, subscriber: str
) -> None:
    """Anyone may type Rita's address: the objection to a legitimate-interest purpose does
    nothing until the code sent to that address comes back."""
    request_id = _object(runtime, subscriber, "status-updates")
    with runtime.tenant_context(subscriber) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "awaiting_verification"
        assert request.subject_id is None  # not matched on a say-so
        subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert subject_id is not None
        purpose = purposes.get_purpose(ctx, "status-updates")
        assert consent.objection_for(ctx, subject_id, purpose.id) is None
        with pytest.raises(Conflict):  # staff cannot act on it before it is confirmed
            fulfilment.fulfil(ctx, request)
    assert _in_audience(runtime, subscriber, "status-updates")
    to = [t for t, s, _ in _mail(runtime, subscriber, request_id) if s.startswith("Confirm")]
    assert to == [EMAIL]  # the code goes to the address on file: only Rita can confirm
    code = _code_sent(runtime, subscriber, request_id)
    with runtime.tenant_context(subscriber) as ctx:
        assert verification.confirm(ctx, rights.get_request(ctx, request_id), code=code).verified
        assert rights.get_request(ctx, request_id).subject_id == subject_id
        # Still as easy as giving it: withdrawing consent (GDPR Art. 7(3)); and an opt-out or
        # a "limit" request is never verified (CCPA 11 CCR 7026, 7027).
        withdrawal = workflow.receive(
            ctx,
            RequestInput(
                "withdraw_consent", Requester(EMAIL), "EU", details={"purposes": ["newsletter"]}
            ),
        ).request
        assert (withdrawal.state, withdrawal.verification_level) == ("verified", "none")
        for kind in ("opt_out_sale", "limit_sensitive"):
            made = workflow.receive(ctx, RequestInput(kind, Requester(EMAIL), "US-CA")).request
            assert made.state == "completed", kind


# ---------------------------------------------------------------------------------------------
# C3: the Colorado appeal extension


T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _appealed(runtime: Runtime, tenant: str, jurisdiction: str) -> str:
    """An access request answered, then appealed on 1 March 2026 (in `jurisdiction`)."""
    with frozen(T0):
        handle = _submit(runtime, tenant, "access", jurisdiction)
        _verify(runtime, tenant, handle, data_points=PHONE)
        request_id = handle.split("|")[0]
        with runtime.tenant_context(tenant) as ctx:
            fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
    with frozen(datetime(2026, 3, 1, 9, tzinfo=UTC)), runtime.tenant_context(tenant) as ctx:
        transitions.appeal(ctx, rights.get_request(ctx, request_id))
    return request_id


APPEALED_ON = datetime(2026, 3, 1, 9, tzinfo=UTC)
REASON = "the appeal covers many years of records"


def test_a_colorado_appeal_is_extended_once_with_a_letter(runtime: Runtime, person: str) -> None:
    """CPA 6-1-1306(3): 45 days to decide an appeal, +60 where needed — the person told,
    with the reasons, inside the first 45 days."""
    request_id = _appealed(runtime, person, "US-CO")
    with frozen(APPEALED_ON + timedelta(days=30)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert rights.deadlines(ctx, request).appeal_due.isoformat() == "2026-04-15"  # type: ignore[union-attr]
        workflow.extend_appeal(ctx, request, REASON)
        assert request.due_on is not None and request.due_on.isoformat() == "2026-06-14"
        assert "appeal_extended" in [e.kind for e in rights.timeline(ctx, request)]
    text = letter_text(runtime, person, request_id, "appeal_extended")
    assert REASON in text and "14 June 2026" in text and "60 days" in text
    lines = [s for _, s, _ in _mail(runtime, person, uuid.UUID(request_id))]
    assert any(s.startswith("We need more time to decide your appeal") for s in lines), lines
    with (
        frozen(APPEALED_ON + timedelta(days=31)),
        runtime.tenant_context(person) as ctx,
        pytest.raises(Conflict, match="already"),
    ):
        workflow.extend_appeal(ctx, rights.get_request(ctx, request_id), REASON)


def test_the_appeal_extension_only_where_and_when_the_law_allows_it(
    runtime: Runtime, person: str
) -> None:
    late = _appealed(runtime, person, "US-CO")
    with frozen(APPEALED_ON + timedelta(days=46)), runtime.tenant_context(person) as ctx:
        with pytest.raises(Conflict, match="appeal period"):  # after the 45 days: too late
            workflow.extend_appeal(ctx, rights.get_request(ctx, late), REASON)
        with pytest.raises(InvalidInput, match="reasons"):
            workflow.extend_appeal(ctx, rights.get_request(ctx, late), "busy")
    virginia = _appealed(runtime, person, "US-VA")  # 60 days, no extension
    with (
        frozen(APPEALED_ON + timedelta(days=1)),
        runtime.tenant_context(person) as ctx,
        pytest.raises(InvalidInput, match="no extension"),
    ):
        workflow.extend_appeal(ctx, rights.get_request(ctx, virginia), REASON)
    with frozen(T0):  # not appealed
        handle = _submit(runtime, person, "access", "US-CO")
    with (
        frozen(T0),
        runtime.tenant_context(person) as ctx,
        pytest.raises(Conflict, match="appealed"),
    ):
        workflow.extend_appeal(ctx, rights.get_request(ctx, handle.split("|")[0]), REASON)
    for request_id in (late, virginia):
        with runtime.tenant_context(person) as ctx:
            assert not rights.get_request(ctx, request_id).appeal_extended


def test_the_appeal_is_extended_from_the_api_and_the_request_page(
    runtime: Runtime, person: str, client: TestClient
) -> None:
    by_api = _appealed(runtime, person, "US-CO")
    with frozen(APPEALED_ON + timedelta(days=2)):
        r = client.post(f"/api/v1/requests/{by_api}/extend-appeal", json={"reason": REASON})
    assert r.status_code == 200, r.text
    assert r.json()["deadlines"]["appeal_due"] == "2026-06-14"
    assert r.json()["deadlines"]["appeal_extended"] is True

    by_page = _appealed(runtime, person, "US-CO")
    page, csrf = staff_client(runtime, person)
    with frozen(APPEALED_ON + timedelta(days=2)):
        shown = page.get(f"/requests/{by_page}").text
        assert f"/requests/{by_page}/extend-appeal" in shown and "Extend the appeal" in shown
        r = page.post(
            f"/requests/{by_page}/extend-appeal",
            data={"csrf_token": csrf, "reason": REASON},
            follow_redirects=True,
        )
    assert r.status_code == 200 and "The time to decide the appeal is extended" in r.text
    assert "2026-06-14" in r.text
    assert f"/requests/{by_page}/extend-appeal" not in r.text  # once only
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, by_page).appeal_extended
