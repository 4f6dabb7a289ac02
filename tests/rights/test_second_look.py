"""Second look at verification, the repetitive flag, objections and appeals: the free request
is the first one, code guesses are bounded over a request's life, the person is told their
marketing stopped, and two staff (or staff and the person) acting at once take turns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pledge.access.context import TenantContext
from pledge.core.clock import frozen, utcnow
from pledge.core.errors import Conflict, InvalidInput, TooManyAttempts
from pledge.rights import service as rights
from pledge.rights import transitions, verification, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from tests.conftest import Second
from tests.rights.test_objections_and_appeals import (
    APPEALED_ON,
    REASON,
    _appealed,
    _in_audience,
    _mail,
    subscriber,
)
from tests.rights.test_requests import EMAIL, PHONE, _submit, _verify, person

__all__ = ["person", "subscriber"]

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


# B2: the repetitive flag, decided again at verification, counts only requests received before.
def test_r1_the_first_request_is_never_repetitive_whatever_order_they_are_verified(
    runtime: Runtime, person: str
) -> None:
    """Colorado: the first request in 12 months is free. Two access requests, the second
    verified first: the first stays the free one, the second is the repetitive one."""
    with frozen(T0):
        first = _submit(runtime, person, "access", "US-CO")
    with frozen(T0 + timedelta(hours=1)):
        second = _submit(runtime, person, "access", "US-CO")
        _verify(runtime, person, second, data_points=PHONE)  # its e-mail read first
    with frozen(T0 + timedelta(hours=2)):
        _verify(runtime, person, first, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        flags = {
            name: rights.get_request(ctx, handle.split("|")[0]).repetitive
            for name, handle in (("first", first), ("second", second))
        }
    assert not flags["first"], flags
    # And the second, verified first while the first waited, counts the first now: its
    # timeline says so, for staff deciding on it.
    assert flags["second"], flags
    with runtime.tenant_context(person) as ctx:
        second_request = rights.get_request(ctx, second.split("|")[0])
        events = [
            e for e in rights.timeline(ctx, second_request) if e.kind == "repetitive_reassessed"
        ]
        assert len(events) == 1


# C1: an objection's marketing part stops on receipt, and the letters say so.
def test_r2_the_person_is_told_their_marketing_was_stopped(
    runtime: Runtime, subscriber: str
) -> None:
    with runtime.tenant_context(subscriber) as ctx:
        request_id = workflow.receive(
            ctx,
            RequestInput(
                "objection",
                Requester(EMAIL, "Rita"),
                "EU",
                details={"purposes": ["status-updates", "product-marketing"]},
            ),
        ).request.id
    assert not _in_audience(runtime, subscriber, "product-marketing")  # stopped already
    texts = [text for to, _s, text in _mail(runtime, subscriber, request_id) if to == EMAIL]
    assert len(texts) == 2, texts  # the acknowledgement and the code
    # Both say it; the code's letter no longer says that ignoring it leaves all as it was.
    assert all("Direct marketing to this address has stopped already" in t for t in texts)
    assert not any("nothing will happen" in t for t in texts), texts


# A3: a new code is a second chance, not a fresh budget of guesses.
def test_r3_code_guesses_are_bounded_over_the_life_of_a_request(
    runtime: Runtime, person: str
) -> None:
    with frozen(T0):
        request_id = _submit(runtime, person, "erasure").split("|")[0]
    guesses = 0
    for day in range(3):
        at = T0 + timedelta(days=day, minutes=1)
        for n in range(verification.MAX_CHALLENGES_PER_DAY):
            with frozen(at + timedelta(minutes=n)):
                if day or n:  # the intake sent the first code
                    with runtime.tenant_context(person) as ctx:
                        try:
                            workflow.resend_verification(
                                ctx, rights.get_request(ctx, request_id), by="requester"
                            )
                        except TooManyAttempts:
                            continue
                for _ in range(verification.MAX_ATTEMPTS + 1):
                    try:
                        with runtime.tenant_context(person) as ctx:
                            outcome = verification.confirm(
                                ctx, rights.get_request(ctx, request_id), code="000000"
                            )
                    except TooManyAttempts:
                        break
                    guesses += outcome.reason == "wrong_code"
    assert guesses == verification.CODE_TRIES_PER_REQUEST, guesses


# A2/B1: confirming and verifying by other means lock the request first, then its codes.
def test_r4_other_means_and_a_confirmation_at_once_do_not_deadlock(
    runtime: Runtime, person: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL row locks")
    handle = _submit(runtime, person, "access")
    request_id, code = handle.split("|")

    def confirming(ctx: TenantContext) -> int:
        request = rights.get_request(ctx, request_id)
        return int(verification.confirm(ctx, request, code=code, data_points=PHONE).verified)

    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        # Staff pressed "verified by other means" and it has the request (its first step)
        # when the person confirms: the confirmation waits for the request — it used to
        # take the codes first, which staff then waited for: a deadlock, a 500.
        transitions.lock(ctx, request)
        person_confirms = Second(runtime, utcnow(), person, confirming)
        verification.verify_otherwise(ctx, request, "called back on the number on file")
    with pytest.raises(InvalidInput, match="not waiting"):  # it finds it verified already
        person_confirms.result()
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, request_id).verification_level == "other_means"


# C3/B1: two staff extending the appeal at once: one extension, one letter.
def test_r5_an_appeal_extended_by_two_staff_at_once_is_extended_once(
    runtime: Runtime, person: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: SQLite's writers take turns")
    request_id = _appealed(runtime, person, "US-CO")
    at = APPEALED_ON + timedelta(days=2)

    def other(ctx: TenantContext) -> int:
        workflow.extend_appeal(ctx, rights.get_request(ctx, request_id), REASON)
        return 1

    with frozen(at), runtime.tenant_context(person) as ctx:
        workflow.extend_appeal(ctx, rights.get_request(ctx, request_id), REASON)
        second = Second(runtime, at, person, other)
    with pytest.raises(Conflict):
        second.result()
    subjects = [s for _, s, _ in _mail(runtime, person, uuid.UUID(request_id))]
    assert sum(s.startswith("We need more time") for s in subjects) == 1, subjects


def test_r6_other_means_in_california_still_need_the_signed_declaration(
    runtime: Runtime, person: str
) -> None:
    """11 CCR 7062: specific pieces need a declaration under penalty of perjury, whatever
    way staff verified the person."""
    request_id = _submit(runtime, person, "access", "US-CA").split("|")[0]
    reason = "identity seen at the front desk"
    with runtime.tenant_context(person) as ctx, pytest.raises(InvalidInput, match="declaration"):
        verification.verify_otherwise(ctx, rights.get_request(ctx, request_id), reason)
    with runtime.tenant_context(person) as ctx:
        request = verification.verify_otherwise(
            ctx, rights.get_request(ctx, request_id), reason, declaration=True
        )
        assert (request.state, request.verification_level) == (
            "verified",
            "other_means+declaration",
        )
