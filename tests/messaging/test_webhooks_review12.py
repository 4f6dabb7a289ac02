"""Outbound webhooks and transfers (review 12): what a finished delivery keeps, how long a
post may last, where it may go, on which connection, and who learns that it failed."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.consent import intake
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.mail import reading as mail_reading
from pledge.presets import clik
from pledge.rights import service as rights
from pledge.rights import workflow
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks
from pledge.webhooks import targets
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import api_client, login, make_user
from tests.rights.test_api_and_webhooks import clik_with_wanda

EMAIL = "wanda.review@example.com"
STAFF = "staff.review@example.com"


class Receiver:
    """A real HTTP server on 127.0.0.1. `drip_first`: the first POST's answer is sent one
    byte at a time (each well inside TIMEOUT_S) until the connection is closed or `stop`."""

    def __init__(self, drip_first: bool = False) -> None:
        self.received: list[dict[str, Any]] = []
        self.first_arrived = threading.Event()
        self.stop = threading.Event()
        self.first_cut_short = threading.Event()  # Pledge hung up during the drip
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(200)
                if len(outer.received) == 1 and drip_first:
                    self.send_header("content-length", "1000")
                    self.end_headers()
                    outer.first_arrived.set()
                    try:
                        # Never idle for TIMEOUT_S: no per-read timeout ever fires.
                        for _ in range(1000):
                            if outer.stop.wait(0.1):
                                return
                            self.wfile.write(b" ")
                            self.wfile.flush()
                    except OSError:
                        outer.first_cut_short.set()
                    return
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(private_targets: None) -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def with_person(runtime: Runtime, tenant: str) -> str:
    return clik_with_wanda(runtime, tenant, EMAIL)


def _letters(runtime: Runtime, tenant: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        return [
            view.letter.text
            for message in mail_reading.list_messages(ctx)
            if (view := mail_reading.read_message(ctx, message.id)).letter is not None
        ]


def _codes(runtime: Runtime, tenant: str) -> set[str]:
    return {
        text.split("enter this code: ")[1][:6]
        for text in _letters(runtime, tenant)
        if "enter this code" in text
    }


def _verified(
    runtime: Runtime, tenant: str, client: TestClient, kind: str, email: str = EMAIL
) -> str:
    """A request of the person's (`email`; Wanda), verified through the API (not answered
    yet); its id."""
    before = _codes(runtime, tenant)
    r = client.post(
        "/api/v1/requests",
        json={"type": kind, "requester": {"email": email}, "jurisdiction": "UK"},
    )
    assert r.status_code == 201, r.text
    request_id: str = r.json()["id"]
    (code,) = _codes(runtime, tenant) - before
    r = client.post(
        f"/api/v1/requests/{request_id}/verify",
        json={"code": code, "data_points": {"first_name": "Wanda"}},
    )
    assert r.json()["state"] == "verified", r.text
    return request_id


def _fulfilled(
    runtime: Runtime,
    tenant: str,
    client: TestClient,
    kind: str,
    fulfil: dict[str, Any],
    email: str = EMAIL,
) -> str:
    """A request of the person's (`email`; Wanda), verified and fulfilled through the API;
    its id."""
    request_id = _verified(runtime, tenant, client, kind, email)
    r = client.post(f"/api/v1/requests/{request_id}/fulfil", json=fulfil)
    assert r.status_code == 200 and r.json()["state"] == "completed", r.text
    return request_id


def _deliveries(runtime: Runtime, tenant: str) -> list[WebhookDelivery]:
    with runtime.tenant_context(tenant) as ctx:
        return list(ctx.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.event)))


# ---------------------------------------------------------------------------------------------
# 1. A finished delivery keeps what, when and how it went; not the person's data


def test_a_sent_transfer_and_erasure_notice_keep_their_record_but_not_the_person_s_data(
    runtime: Runtime, with_person: str, client: TestClient, receiver: Receiver
) -> None:
    """The person took their data elsewhere (a direct transfer), then asked to be erased:
    once sent, neither the transfer nor the erasure notice to a recipient keeps a copy of
    them (sealed with the tenant's key, not the person's, it would outlive the erasure)."""
    r = client.post(
        "/api/v1/recipients",
        json={
            "slug": "crm",
            "name": "CRM",
            "kind": "recipient",
            "country": "US",
            "webhook_url": receiver.url,
        },
    )
    assert r.status_code == 201, r.text
    _fulfilled(runtime, with_person, client, "portability", {"transfer_url": receiver.url})
    _fulfilled(runtime, with_person, client, "erasure", {})
    # Both were sent, naming the person as they must.
    events = {hit["headers"]["Pledge-Event"]: hit["body"] for hit in receiver.received}
    assert sorted(events) == ["portability.transfer", "subject.erasure_requested"]
    assert EMAIL.encode() in events["subject.erasure_requested"]
    kept = _deliveries(runtime, with_person)
    assert [(d.event, d.status, d.delivered_at is not None) for d in kept] == [
        ("portability.transfer", "delivered", True),
        ("subject.erasure_requested", "delivered", True),
    ]
    assert [d.payload_sealed for d in kept] == [None, None]


def test_the_24_month_purge_takes_the_request_s_deliveries_with_it(
    runtime: Runtime, with_person: str, client: TestClient, receiver: Receiver
) -> None:
    request_id = _fulfilled(
        runtime, with_person, client, "portability", {"transfer_url": receiver.url}
    )
    assert [d.event for d in _deliveries(runtime, with_person)] == ["portability.transfer"]
    with runtime.tenant_context(with_person) as ctx:
        request = rights.get_request(ctx, request_id)
        request.purge_after = utcnow() - timedelta(days=1)  # its 24 months are over
    with runtime.tenant_context(with_person) as ctx:
        assert workflow.purge_expired(ctx) == 1
    assert _deliveries(runtime, with_person) == []


def test_an_opt_out_s_state_changes_go_with_it_at_the_purge(
    runtime: Runtime, with_person: str, client: TestClient, receiver: Receiver
) -> None:
    """An opt-out is answered at once (its own path): the state changes it sent to the
    tenant's endpoint are the request's too, and are purged with it."""
    with runtime.tenant_context(with_person) as ctx:
        webhooks.add_endpoint(ctx, receiver.url, ["request.state_changed"])
    r = client.post(
        "/api/v1/requests",
        json={"type": "opt_out_sale", "requester": {"email": EMAIL}, "jurisdiction": "US-CA"},
    )
    assert r.status_code == 201 and r.json()["state"] == "completed", r.text
    assert len(_deliveries(runtime, with_person)) == 3  # verified, in progress, completed
    with runtime.tenant_context(with_person) as ctx:
        rights.get_request(ctx, r.json()["id"]).purge_after = utcnow() - timedelta(days=1)
    with runtime.tenant_context(with_person) as ctx:
        assert workflow.purge_expired(ctx) == 1
    assert _deliveries(runtime, with_person) == []


def test_a_tenant_endpoint_down_for_a_day_does_not_put_failures_on_every_request(
    runtime: Runtime, tenant: str, client: TestClient
) -> None:
    """State changes carry their request's id (purged with it), but the tenant's own
    integration failing is not the request's business: only a transfer or a recipient's
    notice failing for good is written on its timeline, for staff to act on."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        intake.collect(ctx, "purchase", [FieldInput("email", "wanda@example.com")])
        # The tenant's own integration, which stays unreachable (never resolves).
        webhooks.add_endpoint(ctx, "https://hooks.other.invalid/in", ["request.state_changed"])
    r = client.post(
        "/api/v1/requests",
        json={
            "type": "opt_out_sale",
            "requester": {"email": "wanda@example.com"},
            "jurisdiction": "US-CA",
        },
    )
    assert r.status_code == 201 and r.json()["state"] == "completed", r.text
    for day in range(1, 10):
        webhooks.deliver(runtime.sessions, runtime.keystore, now=utcnow() + timedelta(days=day))
    timeline = client.get(f"/api/v1/requests/{r.json()['id']}").json()["timeline"]
    failed = [e["details"]["event"] for e in timeline if e["kind"] == "delivery_failed"]
    assert failed == [], failed


# ---------------------------------------------------------------------------------------------
# 2. A post ends inside its lease, however slowly the receiver answers


def test_a_receiver_dripping_its_answer_is_cut_off_and_its_delivery_retried_later(
    runtime: Runtime, tenant: str, private_targets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver answering a byte at a time never lets a per-read timeout fire: without a
    deadline for the whole post, the page that emitted the event hangs, a worker's cycle
    hangs for every tenant, and once the lease is over a second worker posts the same
    delivery while the first post is still open."""
    monkeypatch.setattr(webhooks, "POST_DEADLINE_S", 1.0)  # 30 s in production
    slow = Receiver(drip_first=True)
    try:

        def staff_action() -> None:  # the page's request: the post runs after its commit
            with runtime.tenant_context(tenant) as ctx:
                webhooks.add_endpoint(ctx, slow.url, ["request.state_changed"])
                webhooks.emit(ctx, "request.state_changed", {"x": 1})

        acting = threading.Thread(target=staff_action, daemon=True)
        acting.start()
        assert slow.first_arrived.wait(30)
        acting.join(30)  # the drip alone lasts 100 s
        assert not acting.is_alive(), "the page is still waiting for the receiver"
        assert slow.first_cut_short.wait(30)  # Pledge hung up
        (delivery,) = _deliveries(runtime, tenant)
        assert delivery.status == "pending" and delivery.last_error is not None
        # Due again after the backoff, like any failed attempt (not after the lease).
        assert delivery.next_attempt_at < utcnow() + webhooks.BACKOFF[1]
    finally:
        slow.close()


def test_a_name_that_takes_too_long_to_resolve_is_tried_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resolver that never answers must not hold a post (and the worker) for ever."""
    never = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow-dns.example.com":
            never.wait(60)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    monkeypatch.setattr(targets, "RESOLVE_TIMEOUT_S", 0.5)
    try:
        with pytest.raises(targets.Unresolved):
            targets.pin("https://slow-dns.example.com/in")
    finally:
        never.set()


# ---------------------------------------------------------------------------------------------
# 3. IPv6 forms of private IPv4 addresses


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::a00:5]/in",  # NAT64 of 10.0.0.5
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
        "https://[64:ff9b:1::a00:5]/in",  # local-use NAT64 prefix (RFC 8215)
        "https://[2002:a00:5::]/in",  # 6to4 of 10.0.0.5
        "https://[::ffff:0:7f00:1]/in",  # IPv4-translated (SIIT) 127.0.0.1
        "https://[::a00:5]/in",  # IPv4-compatible 10.0.0.5
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(url: str) -> None:
    """On a network with NAT64/DNS64 (IPv6-only clusters), 64:ff9b::a00:5 *is* 10.0.0.5."""
    with pytest.raises(InvalidInput):
        targets.check_url(url, "a webhook URL")
    with pytest.raises(targets.BlockedTarget):
        targets.pin(url)


def test_the_nat64_form_of_a_public_address_is_accepted() -> None:
    """An IPv6-only cluster reaches every IPv4 receiver through NAT64: not refused."""
    assert targets.check_url("https://[64:ff9b::808:808]/in") == "https://[64:ff9b::808:808]/in"
    assert targets.pin("https://[64:ff9b::808:808]/in").server_name == "64:ff9b::808:808"


# ---------------------------------------------------------------------------------------------
# 4. Each post on a connection opened, and checked, for its own name


def _tls_files(tmp: Path) -> tuple[str, str, str]:
    """A CA, and a server certificate for both a.test and b.test (one shared host, as on a
    platform that routes by TLS server name). Returns (ca, cert, key) file paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("review ca"))
        .issuer_name(name("review ca"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("a.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("a.test"), x509.DNSName("b.test")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


def test_two_names_on_one_host_each_get_a_connection_made_for_their_own_name(
    runtime: Runtime,
    tenant: str,
    private_targets: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two receivers' names resolving to one address (a platform routing by TLS server
    name): the second post must not ride on the connection opened (SNI, certificate check)
    for the first — that host would hand it to the first name's receiver."""
    ca, cert, key = _tls_files(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    def remember_sni(sock: Any, server_name: str | None, _ctx: Any) -> None:
        sock.sni = server_name

    server_ctx.sni_callback = remember_sni
    seen: list[tuple[str | None, str]] = []  # (the connection's SNI, the request's Host)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            seen.append((getattr(self.connection, "sni", None), self.headers["host"]))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:  # both names: one shared host
        return real("127.0.0.1" if host in ("a.test", "b.test") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("SSL_CERT_FILE", ca)  # the test CA, trusted as a public one would be
    try:
        with runtime.tenant_context(tenant) as ctx:
            a, _ = webhooks.add_endpoint(ctx, f"https://a.test:{port}/in", ["e"])
            b, _ = webhooks.add_endpoint(ctx, f"https://b.test:{port}/in", ["e"])
        # Both queued (as `emit` does, without its after-commit post), a due before b, and
        # posted by one worker call.
        start = utcnow()
        with runtime.tenant_context(tenant) as ctx:
            webhooks._queue(ctx, "e", {"n": 1}, "endpoint", a.id).next_attempt_at = start
            second = webhooks._queue(ctx, "e", {"n": 2}, "endpoint", b.id)
            second.next_attempt_at = start + timedelta(seconds=1)
        ok, _failing = webhooks.deliver(
            runtime.sessions, runtime.keystore, now=start + timedelta(seconds=2)
        )
        assert ok == 2
        assert [(sni, host.split(":")[0]) for sni, host in seen] == [
            ("a.test", "a.test"),
            ("b.test", "b.test"),
        ]
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# 5. A transfer is told as being sent; its failure is on the request


def test_a_transfer_is_told_as_being_sent_and_its_final_failure_shows_on_the_request(
    runtime: Runtime, with_person: str, client: TestClient
) -> None:
    """The letter goes when the transfer is only queued: it says it is being sent. When
    every retry fails (here: the name never resolves), the request's timeline says so —
    staff see it on the request's page and in the API."""
    request_id = _fulfilled(
        runtime,
        with_person,
        client,
        "portability",
        {"transfer_url": "https://transfer.other-org.invalid/in"},
    )
    (completed,) = [t for t in _letters(runtime, with_person) if "machine-readable" in t]
    assert "We are also sending it, signed, to the organisation you named." in completed
    assert "We have also sent it" not in completed
    for day in range(1, 10):  # every retry, a day apart (the backoff ends after 24 hours)
        webhooks.deliver(runtime.sessions, runtime.keystore, now=utcnow() + timedelta(days=day))
    (transfer,) = _deliveries(runtime, with_person)
    assert transfer.status == "failed" and transfer.payload_sealed is None
    timeline = client.get(f"/api/v1/requests/{request_id}").json()["timeline"]
    failed = [e for e in timeline if e["kind"] == "delivery_failed"]
    assert [e["details"]["event"] for e in failed] == ["portability.transfer"]
    assert failed[0]["details"]["attempts"] == len(webhooks.BACKOFF) + 1
    make_user(runtime, with_person, STAFF)
    staff = api_client(runtime)
    login(staff, with_person, STAFF)
    page = staff.get(f"/requests/{request_id}").text
    assert "delivery failed" in page and "portability.transfer" in page


def test_an_erasure_notice_is_told_as_being_sent(
    runtime: Runtime, with_person: str, client: TestClient, receiver: Receiver
) -> None:
    """GDPR Art. 19: the recipients are being told (queued after the commit), not told."""
    r = client.post(
        "/api/v1/recipients",
        json={
            "slug": "crm",
            "name": "CRM",
            "kind": "recipient",
            "country": "US",
            "webhook_url": receiver.url,
        },
    )
    assert r.status_code == 201, r.text
    _fulfilled(runtime, with_person, client, "erasure", {})
    (completed,) = [t for t in _letters(runtime, with_person) if "We erased" in t]
    assert "We are telling the organisations we share your data with." in completed
