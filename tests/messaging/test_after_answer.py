"""The e-mails and webhooks a request sets off leave after its answer: over real HTTP (uvicorn),
the answer arrives while the relay and the receiver are still hung, and both are reached —
and their outcomes recorded — afterwards."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select

from pledge.mail import backends
from pledge.mail.backends import SmtpBackend
from pledge.mail.models import OutboxMessage
from pledge.runtime import Runtime
from pledge.web.app import create_app
from pledge.web.server import AccessLog
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import make_api_token, serving
from tests.messaging.test_outbox import _SilentRelay
from tests.rights.test_api_and_webhooks import Receiver

EMAIL = "wanda@example.com"
PATIENCE = 10.0  # seconds: far below the hung peers' hold, far above a normal answer


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def _opt_out(base_url: str, token: str, email: str) -> dict[str, Any]:
    """An opt-out sent over HTTP: answered at once, with a letter and state-change webhooks."""
    answer = httpx.post(
        f"{base_url}/api/v1/requests",
        json={"type": "opt_out_sale", "requester": {"email": email}, "jurisdiction": "US-CA"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=PATIENCE,
    )
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def _statuses(runtime: Runtime) -> tuple[list[str], list[str]]:
    with runtime.sessions() as s:
        mail = list(s.scalars(select(OutboxMessage.status)))
        hooks = list(s.scalars(select(WebhookDelivery.status)))
    return mail, hooks


def test_the_answer_does_not_wait_for_a_hung_relay_or_receiver(
    runtime: Runtime, tenant: str, live_server: str, private_targets: None
) -> None:
    relay = _SilentRelay()  # takes the connection, never greets, until released
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    released = threading.Event()
    receiver = Receiver()

    def hold() -> None:  # the receiver holds its first POST until released
        released.wait(3 * PATIENCE)

    receiver.beside = hold
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(ctx, receiver.url, ["request.state_changed"])
    token = make_api_token(runtime, tenant)
    smtp = SmtpBackend("127.0.0.1", relay.server_address[1], starttls=False, timeout=30)
    try:
        with backends.override(smtp):
            # An opt-out is answered at once: a completion letter and a state-change webhook.
            # Were either sent before the answer, this would time out.
            answer = _opt_out(live_server, token, EMAIL)
            assert answer["state"] == "completed"
            # Committed before the answer: the letter queued (or being sent), the webhooks pending.
            mail, hooks = _statuses(runtime)
            assert mail in (["queued"], ["sending"])  # not sent: the relay is hung
            assert hooks and set(hooks) == {"pending"}

            # Then they leave, side by side: each peer is called on while the other hangs.
            assert relay.connections_by_now(1) == 1
            _eventually(lambda: len(receiver.received) == 1, "the receiver was posted to")
            relay.closing.set()  # the relay hangs up: the letter has failed
            released.set()  # the receiver answers: the webhooks are delivered
            _eventually(
                lambda: _statuses(runtime) == (["failed"], ["delivered"] * len(hooks)),
                "the letter's failure and the webhooks' deliveries recorded",
            )
            # In the order the request changed: one lane, one post after the other.
            changes = [json.loads(hit["body"])["data"] for hit in receiver.received]
            assert len(changes) == len(hooks) and changes[-1]["state"] == "completed"
            for before, after in itertools.pairwise(changes):
                assert after["previous_state"] == before["state"]
    finally:
        relay.closing.set()
        released.set()
        relay.shutdown()
        relay.server_close()
        receiver.close()


def test_webhooks_of_requests_one_after_the_other_arrive_in_that_order(
    runtime: Runtime, tenant: str, live_server: str, private_targets: None
) -> None:
    """A receiver hears of changes in the order they happened, across requests too: the
    second request's events wait behind the first's, held by a slow receiver."""
    released = threading.Event()
    receiver = Receiver()

    def hold() -> None:
        released.wait(3 * PATIENCE)

    receiver.beside = hold
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(ctx, receiver.url, ["request.state_changed"])
    token = make_api_token(runtime, tenant)
    try:
        references = []
        for email in ("first@example.com", "second@example.com"):
            answer = _opt_out(live_server, token, email)
            references.append(answer["reference"])
        _eventually(lambda: len(receiver.received) == 1, "the first post reached the receiver")
        released.set()
        hooks = len(_statuses(runtime)[1])
        _eventually(lambda: len(receiver.received) == hooks, "every webhook delivered")
        order = [json.loads(hit["body"])["data"]["reference"] for hit in receiver.received]
        assert order == sorted(order, key=references.index), order
    finally:
        released.set()
        receiver.close()


def test_the_access_log_line_is_written_when_the_answer_leaves(
    runtime: Runtime, tenant: str, private_targets: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Its time is the answer's, not the webhooks' that follow: the line is there while the
    receiver still holds the post."""
    released = threading.Event()
    receiver = Receiver()

    def hold() -> None:
        released.wait(3 * PATIENCE)

    receiver.beside = hold
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(ctx, receiver.url, ["request.state_changed"])
    token = make_api_token(runtime, tenant)
    caplog.set_level(logging.INFO, logger="pledge.access")
    try:
        with serving(AccessLog(create_app(runtime))) as url:
            _opt_out(url, token, EMAIL)
            _eventually(lambda: len(receiver.received) == 1, "the receiver was posted to")
            _eventually(
                lambda: any("POST /api/v1/requests 201" in r.getMessage() for r in caplog.records),
                "the access log line, while the receiver holds the post",
            )
            # Written before any post's outcome (the held one times out, eventually).
            with runtime.sessions() as s:
                outcomes = s.scalars(select(WebhookDelivery.last_error)).all()
            assert outcomes and set(outcomes) == {None}, outcomes
            released.set()
    finally:
        released.set()
        receiver.close()
