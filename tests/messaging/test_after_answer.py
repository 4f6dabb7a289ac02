"""The e-mails and webhooks a request sets off leave after its answer: over real HTTP (uvicorn),
the answer arrives while the relay and the receiver are still hung, and both are reached —
and their outcomes recorded — afterwards."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable

import httpx2 as httpx
import pytest
from sqlalchemy import select

from pledge.mail import backends
from pledge.mail.backends import SmtpBackend
from pledge.mail.models import OutboxMessage
from pledge.runtime import Runtime
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import make_api_token
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
            answer = httpx.post(
                f"{live_server}/api/v1/requests",
                json={
                    "type": "opt_out_sale",
                    "requester": {"email": EMAIL},
                    "jurisdiction": "US-CA",
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=PATIENCE,
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["state"] == "completed"
            # Committed before the answer: the letter queued, the webhook pending.
            mail, hooks = _statuses(runtime)
            assert mail == ["queued"] and hooks and set(hooks) == {"pending"}

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
