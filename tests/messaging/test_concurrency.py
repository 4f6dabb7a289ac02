"""Two workers at once: `pledge worker` beside a second one started by mistake, or a cron
`pledge worker --once` overlapping it. Nothing is sent, announced, closed or purged twice, and
a message whose sender died mid-send is not stuck for ever.

On SQLite every writer begins IMMEDIATE and waits for the other: the races that need two
transactions open at once run on PostgreSQL only. The ones where the first worker's
transaction has committed and its send is still under way run on both."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select

from pledge.access.context import OPERATOR, TenantContext
from pledge.access.permissions import ALL_SCOPES
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen, utcnow
from pledge.mail import backends
from pledge.mail import service as mail
from pledge.mail.backends import MemoryBackend
from pledge.mail.models import OutboxMessage
from pledge.notices import announcements
from pledge.notices import service as notices
from pledge.rights import service as rights
from pledge.rights import workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import Second
from tests.messaging.conftest import subscribe
from tests.rights.test_api_and_webhooks import Receiver

TO = "olive.overlap@example.com"


def _statuses(runtime: Runtime) -> list[tuple[str, int]]:
    with runtime.sessions() as s:
        return [(r.status, r.attempts) for r in s.scalars(select(OutboxMessage))]


class BesideBackend:
    """Delivers to `memory`; during its first send — the first worker's, its transaction
    committed — runs `beside` once: the second worker, overlapping it."""

    name = "beside"
    delivers = True

    def __init__(self, memory: MemoryBackend, beside: Callable[[], None]) -> None:
        self.memory, self.beside = memory, beside
        self.overlapped = False

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        if not self.overlapped:
            self.overlapped = True
            self.beside()
        return self.memory.send(messages)

    def paused(self) -> bool:
        return False


def test_a_retry_being_sent_is_not_sent_again_by_a_second_worker(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    mailbox.fail_with = ConnectionRefusedError()
    with runtime.tenant_context(tenant) as ctx:
        mail.queue(ctx, to=TO, subject_line="Your receipt", text="Thank you.")
    assert _statuses(runtime) == [("failed", 1)]
    mailbox.fail_with = None
    second: list[mail.DeliveryReport] = []

    def second_worker() -> None:
        with runtime.tenant_context(tenant) as ctx:
            second.append(mail.deliver_pending(ctx))

    beside = BesideBackend(mailbox, second_worker)
    with backends.override(beside), runtime.tenant_context(tenant) as ctx:
        first = mail.deliver_pending(ctx)
    assert [m["To"] for m in mailbox.sent] == [TO]  # once
    assert (first.sent, second[0].scheduled) == (1, 0)
    assert _statuses(runtime) == [("sent", 2)]


def test_a_fresh_message_still_being_sent_a_minute_on_is_not_sent_again(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    # A campaign's letters leave after its commit; a slow relay can take minutes, and a
    # worker's cycle meanwhile finds them older than a minute.
    second: list[mail.DeliveryReport] = []

    def second_worker() -> None:
        with frozen(utcnow() + timedelta(minutes=5)), runtime.tenant_context(tenant) as ctx:
            second.append(mail.deliver_pending(ctx))

    beside = BesideBackend(mailbox, second_worker)
    with backends.override(beside), runtime.tenant_context(tenant) as ctx:
        mail.queue(ctx, to=TO, subject_line="Our news", text="Spring is here.")
    assert [m["To"] for m in mailbox.sent] == [TO]
    assert second[0].scheduled == 0
    assert _statuses(runtime) == [("sent", 1)]


def _tenant_id(runtime: Runtime, slug: str) -> uuid.UUID:
    with runtime.tenant_context(slug) as ctx:
        return ctx.tenant_id


class Killed(BaseException):
    """The process dies (a SIGKILL, the machine restarts) while the relay has the message."""


class DyingBackend:
    name = "dying"
    delivers = True

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        raise Killed

    def paused(self) -> bool:
        return False


def test_a_message_whose_sender_died_mid_send_is_sent_once_later(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    start = utcnow()
    tenant_id = _tenant_id(runtime, tenant)
    with frozen(start), backends.override(DyingBackend()), runtime.sessions() as session:
        ctx = TenantContext.lazy(session, runtime.keystore, tenant_id, OPERATOR, ALL_SCOPES)
        mail.queue(ctx, to=TO, subject_line="Your code", text="It is 123456.")
        with pytest.raises(Killed):
            session.commit()  # the message is stored; its sender dies on the way out
    # Another worker cannot tell a dead sender from a slow one for a while: it waits…
    with frozen(start + timedelta(minutes=10)), runtime.tenant_context(tenant) as ctx:
        assert mail.deliver_pending(ctx).scheduled == 0
    assert mailbox.sent == []
    # …then the message is tried again, counted as a second attempt, and sent once.
    with frozen(start + mail.STALE + timedelta(minutes=1)):
        with runtime.tenant_context(tenant) as ctx:
            report = mail.deliver_pending(ctx)
        with runtime.tenant_context(tenant) as ctx:
            again = mail.deliver_pending(ctx)
    assert (report.sent, again.scheduled) == (1, 0)
    assert [m["To"] for m in mailbox.sent] == [TO]
    assert _statuses(runtime) == [("sent", 2)]


# ---------------------------------------------------------------------------------------------
# Two transactions open at once (PostgreSQL)


def _needs_postgresql(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")


def _count(runtime: Runtime, event: AuditEvent) -> int:
    with runtime.sessions() as s:
        return int(
            s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.event == event))
            or 0
        )


def test_an_announcement_is_sent_once_by_two_workers(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    _needs_postgresql(runtime)
    subscribe(runtime, clik_tenant, "reader@example.com", "Rita")
    with runtime.tenant_context(clik_tenant) as ctx:
        notices.publish_version(
            ctx,
            "privacy",
            text="We now keep call recordings for 90 days.",
            effective_at=utcnow() + timedelta(days=30),
            summary="Call recordings are kept longer.",
            material=True,
        )
    mailbox.sent.clear()
    now = utcnow()

    def announce(ctx: TenantContext) -> int:
        return len(announcements.send_due(ctx))

    with frozen(now), runtime.tenant_context(clik_tenant) as ctx:
        first = announce(ctx)
        second = Second(runtime, now, clik_tenant, announce)
    assert (first, second.result()) == (1, 0)
    assert [m["To"] for m in mailbox.sent] == ["reader@example.com"]
    assert _count(runtime, AuditEvent.NOTICE_ANNOUNCED) == 1


def _request(runtime: Runtime, tenant: str) -> uuid.UUID:
    """An access request waiting for verification: its acknowledgement and code are sent."""
    with runtime.tenant_context(tenant) as ctx:
        received = workflow.receive(ctx, RequestInput("access", Requester(TO), "EU"))
        return received.request.id


def test_an_unverified_request_is_closed_once_by_two_workers(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    _needs_postgresql(runtime)
    request_id = _request(runtime, clik_tenant)
    mailbox.sent.clear()
    later = utcnow() + timedelta(days=60)

    with frozen(later), runtime.tenant_context(clik_tenant) as ctx:
        first = workflow.close_unverified(ctx)
        second = Second(runtime, later, clik_tenant, workflow.close_unverified)
    assert (first, second.result()) == (1, 0)
    assert len(mailbox.sent) == 1  # one letter saying why it was closed
    with runtime.tenant_context(clik_tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "closed_unverified"
        closings = [e for e in rights.timeline(ctx, request) if e.kind == "closed_unverified"]
    assert len(closings) == 1


def test_an_expired_request_is_purged_once_by_two_workers(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    _needs_postgresql(runtime)
    request_id = _request(runtime, clik_tenant)
    with runtime.tenant_context(clik_tenant) as ctx:
        rights.get_request(ctx, request_id).purge_after = utcnow() - timedelta(days=1)
    now = utcnow()

    with frozen(now), runtime.tenant_context(clik_tenant) as ctx:
        first = workflow.purge_expired(ctx)
        second = Second(runtime, now, clik_tenant, workflow.purge_expired)
    assert (first, second.result()) == (1, 0)
    # The audit chain says once that the request's record was purged, not twice.
    assert _count(runtime, AuditEvent.RIGHTS_PURGED) == 1


@pytest.fixture
def hook_receiver(private_targets: None) -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _retries_waiting(
    runtime: Runtime, tenant: str, receiver: Receiver, *payloads: dict[str, Any]
) -> str:
    """An endpoint for `receiver` whose first posts of `payloads` (one transaction) failed —
    each waits for its retry, a minute on — then the receiver up again, its record cleared.
    The endpoint's signing secret."""
    receiver.status = 503
    with runtime.tenant_context(tenant) as ctx:
        _endpoint, secret = webhooks.add_endpoint(ctx, receiver.url, ["*"])
        for payload in payloads:
            webhooks.emit(ctx, "request.state_changed", payload)
    receiver.received.clear()
    receiver.status = 200
    return secret


def test_a_webhook_is_delivered_once_by_two_workers(
    runtime: Runtime, tenant: str, hook_receiver: Receiver
) -> None:
    outcomes: list[tuple[int, int]] = []

    def second_worker() -> None:  # `pledge worker`'s cycle, while the first one posts
        outcomes.append(webhooks.deliver(runtime.sessions, runtime.keystore))

    hook_receiver.beside = second_worker
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(ctx, hook_receiver.url, ["*"])
        webhooks.emit(ctx, "request.state_changed", {"x": 1})
    # The first worker here is the delivery right after the commit.
    assert len(hook_receiver.received) == 1
    assert outcomes == [(0, 0)]
    with runtime.sessions() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_one_unreadable_delivery_does_not_undo_the_posts_of_its_batch(
    runtime: Runtime, tenant: str, hook_receiver: Receiver
) -> None:
    hook_receiver.status = 503  # both wait for a retry
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(ctx, hook_receiver.url, ["*"])
    for n in (1, 2):
        with runtime.tenant_context(tenant) as ctx:
            webhooks.emit(ctx, "request.state_changed", {"n": n})
    with runtime.sessions() as s, s.begin():
        first, second = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
        second.payload_sealed = b"\x00" * len(second.payload_sealed or b"")  # damaged at rest
        good_id = str(first.id)
    hook_receiver.received.clear()
    hook_receiver.status = 200

    later = utcnow() + timedelta(minutes=2)
    for _ in range(2):  # two worker cycles
        webhooks.deliver(runtime.sessions, runtime.keystore, now=later)
    posted = [r["headers"]["Pledge-Delivery"] for r in hook_receiver.received]
    assert posted == [good_id]  # posted once, and its outcome kept
    with runtime.sessions() as s:
        rows = {str(d.id): d for d in s.scalars(select(WebhookDelivery))}
    assert rows[good_id].status == "delivered"
    (broken,) = (d for i, d in rows.items() if i != good_id)
    assert (broken.status, broken.last_error) == ("failed", "unreadable: DecryptionFailed")


def test_the_data_store_takes_writes_while_a_webhook_is_being_posted(
    runtime: Runtime, tenant: str, hook_receiver: Receiver
) -> None:
    """A receiver may take TIMEOUT_S to answer, and a cycle posts thousands: no transaction
    is open meanwhile (on SQLite it would stop every writer: sign-ins, requests, consent)."""
    written: list[str] = []

    def staff_meanwhile() -> None:  # someone using Pledge while the worker posts
        with runtime.tenant_context(tenant) as ctx:
            endpoint, _secret = webhooks.add_endpoint(ctx, "https://example.com/other", ["x"])
        written.append(str(endpoint.id))

    _retries_waiting(runtime, tenant, hook_receiver, {"x": 1})
    hook_receiver.beside = staff_meanwhile
    ok, failing = webhooks.deliver(
        runtime.sessions, runtime.keystore, now=utcnow() + timedelta(minutes=2)
    )
    assert (ok, failing) == (1, 0)
    assert len(written) == 1  # committed during the post, not after a lock wait gave up
    with runtime.tenant_context(tenant) as ctx:
        assert len(webhooks.list_endpoints(ctx)) == 2


def test_a_delivery_whose_worker_died_mid_post_is_retried_once_its_lease_is_over(
    runtime: Runtime, tenant: str, hook_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retries_waiting(runtime, tenant, hook_receiver, {"x": 1})

    def killed(*_args: object) -> None:
        raise SystemExit("the worker was killed")

    claimed_at = utcnow() + timedelta(minutes=2)  # the retry after the first 503 is due
    with monkeypatch.context() as patch:
        patch.setattr(webhooks, "_attempt", killed)
        with pytest.raises(SystemExit):
            webhooks.deliver(runtime.sessions, runtime.keystore, now=claimed_at)
    # Claimed: another worker's cycle leaves it alone while the lease runs ...
    before = claimed_at + webhooks.LEASE - timedelta(seconds=1)
    assert webhooks.deliver(runtime.sessions, runtime.keystore, now=before) == (0, 0)
    assert hook_receiver.received == []
    # ... and tries it when it is over.
    after = claimed_at + webhooks.LEASE + timedelta(seconds=1)
    assert webhooks.deliver(runtime.sessions, runtime.keystore, now=after) == (1, 0)
    assert len(hook_receiver.received) == 1
    with runtime.sessions() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)


def test_a_claim_taken_late_in_a_long_run_gets_a_whole_lease_and_a_fresh_signature(
    runtime: Runtime, tenant: str, hook_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run posting to slow receivers lasts as long as their posts: a batch claimed 16
    minutes in must not hold a lease dated from the run's start (over already: a second
    worker would post it too), nor be signed with that start (a receiver refuses a stamp
    more than 5 minutes old)."""
    clock = [utcnow()]
    monkeypatch.setattr(webhooks, "utcnow", lambda: clock[0])
    monkeypatch.setattr(webhooks, "CLAIM", 1)
    secret = _retries_waiting(runtime, tenant, hook_receiver, {"n": 1}, {"n": 2})
    clock[0] += timedelta(minutes=2)  # both retries are due
    second_worker: list[tuple[int, int]] = []
    posts: list[uuid.UUID] = []
    post = webhooks._attempt

    def slow_post(client: Any, claim: Any, at: datetime) -> Any:
        posts.append(claim.id)
        if len(posts) == 1:  # the first post takes 16 minutes
            clock[0] += timedelta(minutes=16)
        elif len(posts) == 2:  # the second, claimed after it: another worker's cycle meanwhile
            clock[0] += timedelta(minutes=2)
            second_worker.append(webhooks.deliver(runtime.sessions, runtime.keystore))
        return post(client, claim, at)

    monkeypatch.setattr(webhooks, "_attempt", slow_post)
    assert webhooks.deliver(runtime.sessions, runtime.keystore) == (2, 0)
    assert second_worker == [(0, 0)]
    posted = [r["headers"]["Pledge-Delivery"] for r in hook_receiver.received]
    assert len(posted) == len(set(posted)) == 2
    last = hook_receiver.received[-1]
    assert webhooks.verify_signature(
        secret, last["headers"]["Pledge-Signature"], last["body"], now=int(clock[0].timestamp())
    )


def test_a_claim_whose_lease_is_nearly_over_before_its_turn_is_left_to_the_next_claimer(
    runtime: Runtime, tenant: str, hook_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [utcnow()]
    monkeypatch.setattr(webhooks, "utcnow", lambda: clock[0])
    _retries_waiting(runtime, tenant, hook_receiver, {"n": 1}, {"n": 2})
    clock[0] += timedelta(minutes=2)  # both retries are due, and claimed together
    post = webhooks._attempt

    def first_post_takes_most_of_the_lease(client: Any, claim: Any, at: datetime) -> Any:
        clock[0] += webhooks.LEASE - timedelta(seconds=30)
        return post(client, claim, at)

    with monkeypatch.context() as patch:
        patch.setattr(webhooks, "_attempt", first_post_takes_most_of_the_lease)
        assert webhooks.deliver(runtime.sessions, runtime.keystore) == (1, 0)
    assert len(hook_receiver.received) == 1
    # Not posted, still claimed: nobody takes it until its lease is over, then it goes.
    assert webhooks.deliver(runtime.sessions, runtime.keystore) == (0, 0)
    clock[0] += timedelta(seconds=31)
    assert webhooks.deliver(runtime.sessions, runtime.keystore) == (1, 0)
    posted = [r["headers"]["Pledge-Delivery"] for r in hook_receiver.received]
    assert len(posted) == len(set(posted)) == 2


def test_an_unexpected_error_in_one_post_is_recorded_and_the_others_stand(
    runtime: Runtime, tenant: str, hook_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retries_waiting(runtime, tenant, hook_receiver, {"n": 1}, {"n": 2})
    post = webhooks._post
    broke: list[uuid.UUID] = []

    def first_one_breaks(client: Any, claim: Any, *args: Any) -> Any:
        if not broke:
            broke.append(claim.id)
            raise RuntimeError("a bug, not the receiver")
        return post(client, claim, *args)

    monkeypatch.setattr(webhooks, "_post", first_one_breaks)
    later = utcnow() + timedelta(minutes=2)
    assert webhooks.deliver(runtime.sessions, runtime.keystore, now=later) == (1, 1)
    with runtime.sessions() as s:
        rows = {d.id: d for d in s.scalars(select(WebhookDelivery))}
    broken = rows.pop(broke[0])
    (posted,) = rows.values()
    assert posted.status == "delivered"  # its post stands: not posted again
    assert (broken.status, broken.last_error) == ("pending", "RuntimeError")  # retried later
    assert broken.next_attempt_at > later


def test_a_receiver_that_is_down_does_not_hold_the_next_act_it_is_told_of(
    runtime: Runtime, tenant: str, hook_receiver: Receiver
) -> None:
    """Once a delivery to an endpoint failed, the next events for it are left to the
    worker's cycle instead of being posted while the person who acted waits; another
    endpoint still gets its event at once, and the first gets it again once it is up."""
    hook_receiver.status = 503
    with Receiver() as healthy:
        with runtime.tenant_context(tenant) as ctx:
            webhooks.add_endpoint(ctx, hook_receiver.url, ["*"])
            webhooks.add_endpoint(ctx, healthy.url, ["*"])
            webhooks.emit(ctx, "request.state_changed", {"n": 1})
        assert (len(hook_receiver.received), len(healthy.received)) == (1, 1)
        with runtime.tenant_context(tenant) as ctx:
            webhooks.emit(ctx, "request.state_changed", {"n": 2})
        # Not posted to the one that is down (no wait on it); the healthy one has it.
        assert (len(hook_receiver.received), len(healthy.received)) == (1, 2)
    hook_receiver.status = 200
    later = utcnow() + timedelta(minutes=2)  # the first one's retry is due
    assert webhooks.deliver(runtime.sessions, runtime.keystore, now=later) == (2, 0)
    bodies = [json.loads(r["body"])["data"] for r in hook_receiver.received]
    assert bodies == [{"n": 1}, {"n": 1}, {"n": 2}] or bodies == [{"n": 1}, {"n": 2}, {"n": 1}]
    # Up again, nothing waiting: the next event goes at once.
    with runtime.tenant_context(tenant) as ctx:
        webhooks.emit(ctx, "request.state_changed", {"n": 3})
    assert json.loads(hook_receiver.received[-1]["body"])["data"] == {"n": 3}


def test_a_receiver_up_again_gets_its_backlog_at_the_next_cycle_then_events_at_once(
    runtime: Runtime, tenant: str, hook_receiver: Receiver
) -> None:
    """After several failures a delivery's retry is hours away; once the receiver takes a
    post again, its waiting retries are due at once — and the events after them go right
    after their commit again."""
    hook_receiver.status = 503
    with runtime.tenant_context(tenant) as ctx:
        webhooks.add_endpoint(ctx, hook_receiver.url, ["*"])
        webhooks.emit(ctx, "request.state_changed", {"n": 1})
    with runtime.sessions() as s, s.begin():  # failed five times: its retry is 12 h away
        old = s.scalars(select(WebhookDelivery)).one()
        old.attempts, old.next_attempt_at = 5, utcnow() + timedelta(hours=12)
    with runtime.tenant_context(tenant) as ctx:
        webhooks.emit(ctx, "request.state_changed", {"n": 2})  # left to the worker
    hook_receiver.received.clear()
    hook_receiver.status = 200
    assert webhooks.deliver(runtime.sessions, runtime.keystore) == (1, 0)  # n=2: it is up
    assert webhooks.deliver(runtime.sessions, runtime.keystore) == (1, 0)  # n=1, not in 12 h
    with runtime.tenant_context(tenant) as ctx:
        webhooks.emit(ctx, "request.state_changed", {"n": 3})  # nothing waits: at once
    sent = [json.loads(r["body"])["data"]["n"] for r in hook_receiver.received]
    assert sent == [2, 1, 3]
