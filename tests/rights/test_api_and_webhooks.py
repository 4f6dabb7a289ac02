"""Rights requests through the API; signed webhooks to a real local receiver; routing."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import select

from pledge.consent import intake
from pledge.core.clock import utcnow
from pledge.core.config import reset_settings_cache
from pledge.mail import reading as mail_reading
from pledge.presets import clik
from pledge.rights import routing
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import make_tenant

EMAIL = "wanda.webhook@example.com"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent and answers `status`;
    during the first POST it runs `beside` once (e.g. a second worker, while the first
    one's transaction is still open)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.beside: Callable[[], None] = lambda: None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append({"headers": dict(self.headers), "body": body})
                if len(outer.received) == 1:
                    outer.beside()
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@pytest.fixture
def receiver(private_targets: None) -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def clik_with_wanda(runtime: Runtime, tenant: str, email: str) -> str:
    """The tenant as Clik, with Wanda (`email`) a customer: collected at a purchase."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        intake.collect(
            ctx,
            "purchase",
            [FieldInput("email", email), FieldInput("first_name", "Wanda", "user.name.first")],
        )
    return tenant


@pytest.fixture
def with_person(runtime: Runtime, tenant: str) -> str:
    return clik_with_wanda(runtime, tenant, EMAIL)


def _code(runtime: Runtime, tenant: str) -> str:
    """The code from the verification e-mail in the outbox (as the requester reads it)."""
    with runtime.tenant_context(tenant) as ctx:
        for message in mail_reading.list_messages(ctx):
            view = mail_reading.read_message(ctx, message.id)
            if view.letter is not None and "enter this code" in view.letter.text:
                return view.letter.text.split("enter this code: ")[1][:6]
    raise AssertionError("no verification e-mail")


def test_erasure_via_api_notifies_recipients_by_signed_webhook(
    runtime: Runtime, with_person: str, client: TestClient, receiver: Receiver
) -> None:
    r = client.post(
        "/api/v1/recipients",
        json={
            "slug": "crm",
            "name": "Hosted CRM",
            "kind": "sub_processor",
            "country": "US",
            "webhook_url": receiver.url,
        },
    )
    assert r.status_code == 201
    secret = r.json()["secret"]
    r = client.post(
        "/api/v1/requests",
        json={"type": "erasure", "requester": {"email": EMAIL}, "jurisdiction": "UK"},
    )
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["state"] == "awaiting_verification" and request["deadlines"]["due"]
    r = client.post(
        f"/api/v1/requests/{request['id']}/verify",
        json={"code": _code(runtime, with_person), "data_points": {"first_name": "WANDA"}},
    )
    assert r.json()["state"] == "verified", r.text
    r = client.post(f"/api/v1/requests/{request['id']}/fulfil", json={})
    assert r.json()["state"] == "completed"
    # The recipient heard about it, signed, naming the person to erase.
    assert len(receiver.received) == 1
    hit = receiver.received[0]
    assert hit["headers"]["Pledge-Event"] == "subject.erasure_requested"
    assert webhooks.verify_signature(
        secret, hit["headers"]["Pledge-Signature"], hit["body"], now=int(utcnow().timestamp())
    )
    assert not webhooks.verify_signature(
        "whsec_wrong",
        hit["headers"]["Pledge-Signature"],
        hit["body"],
        now=int(utcnow().timestamp()),
    )
    assert json.loads(hit["body"])["data"]["subject"]["email"] == EMAIL
    with runtime.tenant_context(with_person) as ctx:
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL) is None
    detail = client.get(f"/api/v1/requests/{request['id']}").json()
    assert [e["kind"] for e in detail["timeline"]] == [
        "received",
        "verification_sent",
        "verified",
        "started",
        "completed",
    ]


def test_a_failing_receiver_is_retried_and_nothing_leaves_before_commit(
    runtime: Runtime, with_person: str, receiver: Receiver
) -> None:
    with pytest.raises(RuntimeError), runtime.tenant_context(with_person) as ctx:
        webhooks.add_endpoint(ctx, receiver.url, ["*"])
        webhooks.emit(ctx, "request.state_changed", {"x": 1})
        raise RuntimeError("rolled back")
    assert receiver.received == []  # invariant 4: side effects only after commit
    with runtime.tenant_context(with_person) as ctx:
        webhooks.add_endpoint(ctx, "http://127.0.0.1:9/closed", ["request.state_changed"])
        webhooks.emit(ctx, "request.state_changed", {"x": 2})
    with runtime.tenant_context(with_person) as ctx:
        from sqlalchemy import select

        from pledge.webhooks.models import WebhookDelivery

        delivery = ctx.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_error
        assert delivery.next_attempt_at > utcnow()


def test_opt_out_by_api_is_immediate(
    runtime: Runtime, with_person: str, client: TestClient
) -> None:
    r = client.post(
        "/api/v1/requests",
        json={"type": "opt_out_sale", "requester": {"email": EMAIL}, "jurisdiction": "US-CA"},
    )
    assert r.json()["state"] == "completed" and r.json()["verification_level"] == "none"
    with runtime.tenant_context(with_person) as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert subjects.get_subject_row(ctx, sid).sale_opt_out_at is not None  # type: ignore[arg-type]
        # One letter, saying it is done: no acknowledgement of a request already answered.
        letters = [m for m in mail_reading.list_messages(ctx) if m.kind == "rights_letter"]
        assert len(letters) == 1
        letter = mail_reading.read_message(ctx, letters[0].id).letter
        assert letter is not None and letter.to == EMAIL
        assert letter.subject_line.startswith("Your request is complete")
    # It carries the way back to the request (its status, letters and appeal form).
    link = re.search(r"/p/[^/\s]+/requests/status/\S+", letter.text)
    assert link is not None, letter.text
    page = client.get(link.group(0))
    assert page.status_code == 200 and r.json()["reference"] in page.text


def test_sla_counts_open_and_overdue(
    runtime: Runtime, with_person: str, client: TestClient
) -> None:
    client.post("/api/v1/requests", json={"type": "access", "requester": {"email": EMAIL}})
    sla = client.get("/api/v1/requests/sla").json()
    assert sla["open_by_state"] == {"awaiting_verification": 1} and sla["overdue"] == 0


def test_processor_routing_finds_the_controller_and_tells_the_requester(runtime: Runtime) -> None:
    make_tenant(runtime, "operator")
    make_tenant(runtime, "client-one", privacy_contact="privacy@client-one.example")
    make_tenant(runtime, "client-two")
    with runtime.tenant_context("client-one") as ctx:
        subjects.create_subject(ctx, [FieldInput("email", EMAIL)])
    routed = routing.route(
        runtime, RequestInput("access", Requester(EMAIL, "Wanda"), "EU"), send_via="operator"
    )
    assert routed.controllers == ["client-one"]
    assert "Client-One Ltd" in routed.letter and "privacy@client-one.example" in routed.letter
    assert "controller" in routed.letter
    with runtime.tenant_context("client-one") as ctx:
        from pledge.rights import service as rights

        [request] = rights.queue(ctx)
        assert request.channel == "forwarded" and request.state == "awaiting_verification"
    with runtime.tenant_context("client-two") as ctx:
        from pledge.rights import service as rights

        assert rights.queue(ctx) == []


def test_a_fee_only_where_the_law_allows_it(
    runtime: Runtime, with_person: str, client: TestClient
) -> None:
    """CCPA: two access requests in 12 months are free; a third may bear a fee (or be
    refused) — a human's decision. Under GDPR a request that is not excessive bears none."""

    def ask(jurisdiction: str, email: str = EMAIL) -> str:
        r = client.post(
            "/api/v1/requests",
            json={"type": "access", "requester": {"email": email}, "jurisdiction": jurisdiction},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    gdpr = ask("EU", "someone.else@example.com")
    r = client.post(f"/api/v1/requests/{gdpr}/fee", json={"cents": 1500, "reason": "it costs us"})
    assert r.status_code == 409 and "allows no fee" in r.json()["detail"]
    california = [ask("US-CA") for _ in range(3)]
    free = client.post(
        f"/api/v1/requests/{california[1]}/fee", json={"cents": 1500, "reason": "second one"}
    )
    assert free.status_code == 409  # the second is still free
    third = f"/api/v1/requests/{california[2]}"
    assert client.get(third).json()["repetitive"] is True
    r = client.post(f"{third}/fee", json={"cents": 1500, "reason": ""})
    assert r.status_code == 422 and "say why" in r.json()["detail"]
    r = client.post(f"{third}/fee", json={"cents": 1500, "reason": "third access this year"})
    assert r.status_code == 200 and r.json()["fee_cents"] == 1500
    assert r.json()["timeline"][-1]["kind"] == "fee_recorded"
    r = client.post(f"{third}/fee", json={"cents": -1, "reason": "negative"})
    assert r.status_code == 422


def test_a_portability_transfer_arrives_signed_with_the_published_key(
    runtime: Runtime, with_person: str, client: TestClient, receiver: Receiver
) -> None:
    """Seed 003: the data goes straight to the organisation the person names, as a JWS the
    receiver checks with the tenant's published keys."""
    r = client.post(
        "/api/v1/requests",
        json={"type": "portability", "requester": {"email": EMAIL}, "jurisdiction": "UK"},
    )
    request = r.json()
    r = client.post(
        f"/api/v1/requests/{request['id']}/verify",
        json={"code": _code(runtime, with_person), "data_points": {"first_name": "Wanda"}},
    )
    assert r.json()["state"] == "verified", r.text
    r = client.post(f"/api/v1/requests/{request['id']}/fulfil", json={"transfer_url": receiver.url})
    assert r.status_code == 200 and r.json()["state"] == "completed", r.text
    (hit,) = receiver.received
    headers = {k.lower(): v for k, v in hit["headers"].items()}
    assert headers["content-type"] == "application/jose"
    assert hit["headers"]["Pledge-Event"] == "portability.transfer"
    token = hit["body"].decode()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["jku"].endswith(f"/p/{with_person}/.well-known/jwks.json")
    published = client.get(f"/p/{with_person}/.well-known/jwks.json").json()["keys"]
    (jwk,) = [k for k in published if k["kid"] == header["kid"]]
    document = jws.deserialize_compact(token, OKPKey.import_key(jwk), algorithms=[jwk["alg"]])
    sent = json.loads(document.payload)
    assert sent["reference"] == request["reference"]
    assert {f["name"]: f["value"] for f in sent["data"]["fields"]}["first_name"] == "Wanda"
    # Altered on the way, it no longer verifies.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(JoseError):
        jws.deserialize_compact(forged, OKPKey.import_key(jwk), algorithms=[jwk["alg"]])


INTERNAL = [
    "http://hooks.example.com/in",  # not https
    "https://127.0.0.1@10.0.0.5/in",  # the host is 10.0.0.5; 127.0.0.1 is a user name
    "https://user:pw@hooks.example.com/in",
    "https://10.0.0.1/in",
    "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
    "https://[::1]:8443/in",
    "https://[::ffff:127.0.0.1]/in",
    "https://localhost:8443/in",
    "https://admin.localhost/in",
    "https://100.64.0.1/in",  # shared address space
    "ftp://hooks.example.com/in",
    "https://hooks.example.com:99999/in",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_webhook_and_recipient_urls_inside_the_network_are_refused(
    client: TestClient, url: str
) -> None:
    r = client.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
    assert r.status_code == 422, (url, r.text)
    r = client.post(
        "/api/v1/recipients",
        json={
            "slug": "crm",
            "name": "CRM",
            "kind": "recipient",
            "country": "US",
            "webhook_url": url,
        },
    )
    assert r.status_code == 422, (url, r.text)
    assert client.get("/api/v1/webhooks").json() == []


def test_a_public_name_is_taken_and_checked_again_when_it_is_called(
    runtime: Runtime, with_person: str, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = client.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": ["*"]}
    )
    assert r.status_code == 201, r.text
    # Saved while private targets were allowed (or a name that now resolves inside): at
    # delivery the address is resolved and checked, and nothing is sent.
    with Receiver() as inside:
        monkeypatch.setenv("PLEDGE_WEBHOOKS_ALLOW_PRIVATE", "true")
        reset_settings_cache()
        with runtime.tenant_context(with_person) as ctx:
            named = inside.url.replace("127.0.0.1", "localhost")
            webhooks.add_endpoint(ctx, named, ["request.state_changed"])
        monkeypatch.setenv("PLEDGE_WEBHOOKS_ALLOW_PRIVATE", "false")
        reset_settings_cache()
        with runtime.tenant_context(with_person) as ctx:
            webhooks.emit(ctx, "request.state_changed", {"x": 1})
        assert inside.received == []
        with runtime.tenant_context(with_person) as ctx:
            statuses = {d.last_error for d in ctx.session.scalars(select(WebhookDelivery)).all()}
        assert "blocked: not a public address" in statuses


def test_a_call_goes_to_the_address_checked_under_its_name(
    runtime: Runtime, with_person: str, receiver: Receiver
) -> None:
    named = receiver.url.replace("127.0.0.1", "localhost")  # resolved once, then pinned
    with runtime.tenant_context(with_person) as ctx:
        webhooks.add_endpoint(ctx, named, ["request.state_changed"])
        webhooks.emit(ctx, "request.state_changed", {"x": 1})
    (hit,) = receiver.received
    headers = {k.lower(): v for k, v in hit["headers"].items()}
    assert headers["host"] == named.split("/")[2]


@pytest.mark.parametrize(
    ("details", "says"),
    [
        ({"proposed": "Wanda Smith"}, "details.proposed"),
        ({"proposed": {"first_name": 7}}, "details.proposed"),
        ({"purposes": "newsletter"}, "details.purposes"),  # was read letter by letter
        ({"purposes": [1, 2]}, "details.purposes"),
        ({"note": ["a", "list"]}, "details.note"),
    ],
)
def test_details_the_fulfilment_reads_are_checked_on_receipt(
    client: TestClient, details: dict[str, object], says: str
) -> None:
    r = client.post(
        "/api/v1/requests",
        json={"type": "rectification", "requester": {"email": EMAIL}, "details": details},
    )
    assert r.status_code == 422 and says in r.json()["detail"], r.text
    assert client.get("/api/v1/requests").json() == []
    good = {"proposed": {"first_name": "Wanda"}, "purposes": ["newsletter"], "note": "hi"}
    r = client.post(
        "/api/v1/requests",
        json={"type": "rectification", "requester": {"email": EMAIL}, "details": good},
    )
    assert r.status_code == 201, r.text
